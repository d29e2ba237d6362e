package tui

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	uv "github.com/charmbracelet/ultraviolet"
	"github.com/charmbracelet/x/ansi"
)

// Screen draws a model on its terminal itself, at once after each update
// that changes what the model shows (keys faster than a person types:
// once per drawGap), and never otherwise.
//
// bubbletea v2.1.1's own renderer writes the view only at its next frame
// tick (60 per second by default: the first screen waits up to 16 ms), and
// it ticks for every session, idle or not, rebuilding the frame each time
// before it finds nothing changed: at 1,000 idle sessions, a quarter of a
// core. A higher frame rate shows the first screen sooner but costs more
// when idle. bubbletea has no option to draw on change, so Screen runs the
// program without its renderer (tea.WithoutRenderer) at the lowest tick
// rate it allows (tea.WithFPS(1); the tick then has nothing to draw), and
// draws through the same public ultraviolet cell renderer bubbletea uses,
// from the program's own goroutine, right after Update.
//
// It handles what the wizard's views use: the alternate screen, the window
// title, a real cursor (position, shape) and bracketed paste. Close
// restores the terminal when the program is over.
type Screen struct {
	model tea.Model

	mu         sync.Mutex // Close may come from another goroutine than draw
	out        io.Writer
	buf        bytes.Buffer // one update's bytes, written to out at once
	scr        *uv.TerminalRenderer
	w, h       int
	last       *tea.View // nil: nothing drawn yet
	lastHeight int       // of the frame last drawn, in rows
	lastLines  []string  // its lines (see rows)
	lastPlain  []bool    // whether each starts in the default style
	redraw     bool      // size or colours changed: draw even an equal view
	told       bool      // a window size came since the start
	closed     bool
	profile    colorprofile.Profile
	now        func() time.Time
	drawn      time.Time // when a view was last built
	pending    bool      // a drawMsg is on its way
}

// The wizard is laid out in at most MaxWidth×MaxHeight cells, at the top
// left of a larger window: its lines stay short enough to read, and a
// session holds at most that many cells (the renderer keeps a copy of each
// cell it shows, about 115 bytes) whatever size the client claims: 0.6 MB,
// where a 500×200 window took 11.5 MB.
const (
	MaxWidth  = 100
	MaxHeight = 50
)

// clampWindow is the part of a w×h window the wizard is drawn in.
func clampWindow(w, h int) (int, int) {
	return min(max(w, 1), MaxWidth), min(max(h, 1), MaxHeight)
}

// drawGap is the least time between two views built for keys: a person
// types slower, a paste without bracketed paste (or a client streaming
// keys) comes faster, and a view per key cost about 100 µs, so that a
// few kilobytes a second of keys kept a core busy. A key within drawGap
// of the last view that starts nothing is drawn at the end of the gap,
// with whatever came meanwhile.
const drawGap = 15 * time.Millisecond

// drawMsg draws what the keys of the last drawGap changed.
type drawMsg struct{}

// NewScreen draws m on out, a terminal of width×height cells whose
// environment is env (TERM, COLORTERM: the colour profile until the
// program reports one).
func NewScreen(m tea.Model, out io.Writer, env []string, width, height int) *Screen {
	s := &Screen{model: m, out: out, profile: colorprofile.Env(env), now: time.Now}
	s.w, s.h = clampWindow(width, height)
	s.scr = uv.NewTerminalRenderer(&s.buf, env)
	s.scr.SetColorProfile(s.profile)
	s.scr.SetRelativeCursor(true)
	s.scr.SetFullscreen(false)
	s.scr.SetTabStops(-1)
	s.scr.SetMapNewline(true) // an SSH session's terminal maps \n to \r\n, as bubbletea assumes without a tty
	s.scr.SetScrollOptim(true)
	s.scr.Resize(s.w, s.h)
	return s
}

// Options are the program options Screen needs: bubbletea's renderer off,
// its frame tick at the slowest rate.
func (s *Screen) Options() []tea.ProgramOption {
	return []tea.ProgramOption{tea.WithoutRenderer(), tea.WithFPS(1)}
}

// Init tells the model the window size it will learn anyway, so that the
// first screen drawn (now, before any message) has the right size.
func (s *Screen) Init() tea.Cmd {
	cmd := s.model.Init()
	m, cmd2 := s.model.Update(tea.WindowSizeMsg{Width: s.w, Height: s.h})
	s.model = m
	s.draw()
	return tea.Batch(cmd, cmd2)
}

// Update passes msg to the model, then draws what changed.
//
// The messages bubbletea sends at the start only repeat what NewScreen was
// given (the size, the colour profile, the environment): the model gets
// them, but the view is not built again for them, as nothing it shows
// can have changed.
func (s *Screen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	changed := true
	switch m := msg.(type) {
	case drawMsg:
		s.pending = false
		s.draw()
		return s, nil
	case tea.WindowSizeMsg:
		m.Width, m.Height = clampWindow(m.Width, m.Height)
		msg = m // the model lays out in the part drawn
		changed = s.resize(m.Width, m.Height)
	case tea.ColorProfileMsg:
		changed = s.setProfile(m.Profile)
	case tea.EnvMsg:
		changed = false
	}
	m, cmd := s.model.Update(msg)
	s.model = m
	if !changed {
		return s, cmd
	}
	// A key that started something (an operation, the end) is drawn at
	// once: the program may be over before the gap is.
	if _, key := msg.(tea.KeyPressMsg); key && cmd == nil {
		if wait := drawGap - s.now().Sub(s.drawn); wait > 0 {
			if !s.pending {
				s.pending = true
				cmd = tea.Batch(cmd, tea.Tick(wait, func(time.Time) tea.Msg { return drawMsg{} }))
			}
			return s, cmd
		}
	}
	s.draw()
	return s, cmd
}

// View is empty: bubbletea's renderer is off, Screen draws.
func (s *Screen) View() tea.View { return tea.View{} }

// Model is the model drawn.
func (s *Screen) Model() tea.Model { return s.model }

// resize takes the window's size and reports whether the view may change.
func (s *Screen) resize(w, h int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	told := s.told
	s.told = true
	if !told && w == s.w && h == s.h { // bubbletea's report of the size the session started with
		return false
	}
	// A window change redraws everything, even at the same size: the
	// terminal may have reflowed or scrolled what it showed.
	s.w, s.h = w, h
	s.scr.Erase()
	s.scr.Resize(s.w, s.h)
	s.redraw = true
	return true
}

// setProfile takes the colour profile and reports whether it changed.
func (s *Screen) setProfile(p colorprofile.Profile) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == s.profile {
		return false
	}
	s.profile = p
	s.scr.SetColorProfile(p)
	s.scr.Erase()
	s.redraw = true
	return true
}

// sameView tells whether b looks like a on the terminal, as far as Screen
// draws it.
func sameView(a, b *tea.View) bool {
	if a.Content != b.Content || a.AltScreen != b.AltScreen || a.WindowTitle != b.WindowTitle ||
		(a.Cursor == nil) != (b.Cursor == nil) {
		return false
	}
	return a.Cursor == nil || (a.Cursor.Position == b.Cursor.Position && a.Cursor.Shape == b.Cursor.Shape && a.Cursor.Blink == b.Cursor.Blink)
}

// rows splits a view's content into its lines, and tells for each whether
// it starts in the default style: the style of a line's last escape
// sequence carries over to the next lines unless it is a reset (any other
// sequence counts as a change, to be safe).
func rows(content string) ([]string, []bool) {
	lines := strings.Split(content, "\n")
	plain := make([]bool, len(lines))
	def := true
	for i, l := range lines {
		plain[i] = def
		if j := strings.LastIndexByte(l, '\x1b'); j >= 0 {
			def = strings.HasPrefix(l[j:], "\x1b[m") || strings.HasPrefix(l[j:], "\x1b[0m")
		}
	}
	return lines, plain
}

func cursorStyle(c *tea.Cursor) int {
	if c == nil {
		return 0
	}
	// The DECSCUSR values: 1 blinking block, 2 steady block, 3 blinking
	// underline… (tea.CursorShape counts block, underline, bar from 0).
	st := int(c.Shape)*2 + 1
	if !c.Blink {
		st++
	}
	return st
}

// frames are the cell buffers frames are drawn into, shared by every
// session: one is in use only while a frame is drawn (the renderer keeps
// its own copy of what the terminal shows), so an idle session holds none.
var frames = sync.Pool{New: func() any { b := uv.NewScreenBuffer(0, 0); return &b }}

func (s *Screen) draw() {
	s.drawn = s.now()
	v := s.model.View()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (s.last != nil && !s.redraw && sameView(s.last, &v)) {
		return
	}
	s.redraw = false
	first := s.last == nil
	var pre bytes.Buffer // modes, before the cells
	if first || s.last.AltScreen != v.AltScreen {
		if v.AltScreen {
			s.scr.SaveCursor()
			pre.WriteString(ansi.SetModeAltScreenSaveCursor)
			s.scr.SetFullscreen(true)
			s.scr.SetRelativeCursor(false)
		} else if !first {
			s.scr.SetRelativeCursor(true)
			s.scr.SetFullscreen(false)
			pre.WriteString(ansi.ResetModeAltScreenSaveCursor)
			s.scr.RestoreCursor()
		}
		s.scr.Erase()
	}
	if first {
		pre.WriteString(ansi.SetModeBracketedPaste)
	}
	if (first && v.WindowTitle != "") || (!first && v.WindowTitle != s.last.WindowTitle) {
		pre.WriteString(ansi.SetWindowTitle(v.WindowTitle))
	}
	var was *tea.Cursor
	if !first {
		was = s.last.Cursor
	}
	if st := cursorStyle(v.Cursor); st != cursorStyle(was) && st != 0 {
		pre.WriteString(ansi.SetCursorStyle(st))
	}

	content := uv.NewStyledString(v.Content)
	fh := s.h
	if !v.AltScreen {
		fh = content.Height()
	}
	if v.Content == "" {
		fh = 0
	}
	if !first && fh != s.lastHeight {
		s.scr.Erase()
	}
	lines, plain := rows(v.Content)
	cells := frames.Get().(*uv.ScreenBuffer)
	cells.Resize(s.w, fh)
	clear(cells.Touched) // as new: the last Render left its lines marked "unchanged"
	cells.Clear()
	content.Draw(cells, cells.Bounds())
	if !first && v.AltScreen && s.last.AltScreen && fh == s.lastHeight && fh <= s.h {
		// A row drawn as the last frame drew it is not marked changed:
		// the renderer compares each cell of a changed row with what the
		// terminal shows, two thirds of the cost of a typed key when every
		// row was marked. A row is the same when its line and the style
		// it starts in are (rows beyond both frames' lines are blank).
		for y := range fh {
			switch {
			case y < len(lines) && y < len(s.lastLines):
				if lines[y] != s.lastLines[y] || !plain[y] || !s.lastPlain[y] {
					continue
				}
			case y < len(lines) || y < len(s.lastLines):
				continue
			}
			cells.Touched[y] = nil
		}
	}
	s.lastHeight, s.lastLines, s.lastPlain = fh, lines, plain
	if fh > s.h { // taller than the window: keep the bottom (and the buffer out of the pool)
		cells.Lines = cells.Lines[fh-s.h:]
	}
	s.scr.Render(cells.RenderBuffer)
	if fh <= s.h {
		frames.Put(cells)
	}
	if v.Cursor != nil {
		s.scr.MoveTo(v.Cursor.X, v.Cursor.Y)
	} else if x, y := s.scr.Position(); !v.AltScreen && x >= s.w-1 {
		s.scr.MoveTo(0, y)
	}
	_ = s.scr.Flush()

	// Hide the cursor while the cells change, show it after if wanted.
	var out bytes.Buffer
	out.Write(pre.Bytes())
	if s.buf.Len() > 0 || first || was != nil {
		out.WriteString(ansi.ResetModeTextCursorEnable)
	}
	out.Write(s.buf.Bytes())
	s.buf.Reset()
	if v.Cursor != nil {
		out.WriteString(ansi.SetModeTextCursorEnable)
	}
	s.last = &v
	_, _ = s.out.Write(out.Bytes()) // a failed write means the client left
}

// Close gives the terminal back as it was, once the program is over:
// main screen, cursor shown, bracketed paste and the window title reset.
// Nothing is drawn after it.
func (s *Screen) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.last == nil {
		s.closed = true
		return
	}
	s.closed = true
	lv := s.last
	s.scr.MoveTo(0, min(s.lastHeight, s.h)-1)
	_ = s.scr.Flush()
	if lv.AltScreen {
		s.buf.WriteString(ansi.ResetModeAltScreenSaveCursor)
	} else {
		s.buf.WriteString(ansi.EraseScreenBelow)
	}
	s.buf.WriteString(ansi.SetModeTextCursorEnable + ansi.ResetModeBracketedPaste)
	if lv.WindowTitle != "" {
		s.buf.WriteString(ansi.SetWindowTitle(""))
	}
	if cursorStyle(lv.Cursor) > 1 {
		s.buf.WriteString(ansi.SetCursorStyle(0))
	}
	_, _ = s.out.Write(s.buf.Bytes())
	s.buf.Reset()
}
