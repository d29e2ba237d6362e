package tui

import (
	"bytes"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
)

// lines is a model that shows its lines on the alternate screen, with the
// cursor after the last one, or a final text on the main screen once done.
type lines struct {
	text  []string
	w, h  int
	final string
}

func (l *lines) Init() tea.Cmd { return nil }

func (l *lines) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		l.w, l.h = msg.Width, msg.Height
	case string:
		l.text = append(l.text, msg)
	case []string:
		l.text = msg
	}
	return l, nil
}

func (l *lines) View() tea.View {
	if l.final != "" {
		return tea.NewView(l.final + "\n")
	}
	v := tea.NewView(strings.Join(append(l.text, strings.Repeat("-", l.w)), "\n"))
	v.AltScreen, v.WindowTitle = true, "title"
	v.Cursor = tea.NewCursor(0, len(l.text))
	return v
}

// screenOn returns a Screen drawing m on a terminal emulator of w×h and
// the bytes written so far.
func screenOn(m tea.Model, w, h int) (*Screen, *vt.Emulator, *bytes.Buffer) {
	term := vt.NewEmulator(w, h) // Screen sends no queries: nothing to read back
	var raw bytes.Buffer
	return NewScreen(m, io.MultiWriter(onlcr{term}, &raw), []string{"TERM=xterm-256color"}, w, h), term, &raw
}

// onlcr maps \n to \r\n, as the SSH server's emulated PTY does.
type onlcr struct{ w io.Writer }

func (o onlcr) Write(p []byte) (int, error) {
	_, err := o.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n")))
	return len(p), err
}

func TestScreenDrawsAtOnceAndOnlyChanges(t *testing.T) {
	m := &lines{text: []string{"first line"}}
	s, term, raw := screenOn(m, 40, 10)
	s.Init()
	// Drawn at Init, with no frame tick: the first screen is there.
	if got := term.String(); !strings.Contains(got, "first line") || !strings.Contains(got, strings.Repeat("-", 40)) {
		t.Fatalf("after Init the screen shows:\n%s", got)
	}
	if !term.IsAltScreen() {
		t.Error("the alternate screen is not on")
	}
	for _, seq := range []string{ansi.SetModeBracketedPaste, ansi.SetWindowTitle("title")} {
		if !strings.Contains(raw.String(), seq) {
			t.Errorf("no %q in the first frame", seq)
		}
	}

	// A message that changes nothing writes nothing.
	raw.Reset()
	s.Update(tea.FocusMsg{})
	s.Update(tea.KeyPressMsg{Code: 'x'})
	if raw.Len() != 0 {
		t.Errorf("an unchanged view wrote %q", raw.String())
	}

	// A new line is drawn at once, without redrawing the rest.
	s.Update("second")
	if got := term.String(); !strings.Contains(got, "first line\nsecond") {
		t.Errorf("after an update the screen shows:\n%s", got)
	}
	if strings.Contains(raw.String(), "first line") {
		t.Errorf("an update redrew the unchanged line: %q", raw.String())
	}
	if x, y := term.CursorPosition().X, term.CursorPosition().Y; x != 0 || y != 2 {
		t.Errorf("cursor at %d,%d, want 0,2", x, y)
	}
}

func TestScreenResizeRedraws(t *testing.T) {
	m := &lines{text: []string{"hello"}}
	s, term, raw := screenOn(m, 40, 10)
	s.Init()
	term.Resize(60, 12)
	raw.Reset()
	s.Update(tea.WindowSizeMsg{Width: 60, Height: 12})
	if got := term.String(); !strings.Contains(got, strings.Repeat("-", 60)) || !strings.Contains(got, "hello") {
		t.Errorf("after a resize the screen shows:\n%s", got)
	}
	if raw.Len() == 0 {
		t.Error("a resize wrote nothing")
	}
}

func TestScreenCloseRestoresTheTerminal(t *testing.T) {
	m := &lines{text: []string{"hello"}}
	s, term, raw := screenOn(m, 40, 10)
	s.Init()
	raw.Reset()
	m.final = "Goodbye."
	s.Update(nil)
	if term.IsAltScreen() {
		t.Error("the final text is still on the alternate screen")
	}
	if !strings.Contains(term.String(), "Goodbye.") {
		t.Errorf("the final text is not shown:\n%s", term.String())
	}
	s.Close()
	for _, seq := range []string{ansi.SetModeTextCursorEnable, ansi.ResetModeBracketedPaste, ansi.SetWindowTitle("")} {
		if !strings.Contains(raw.String(), seq) {
			t.Errorf("Close wrote no %q: %q", seq, raw.String())
		}
	}
	raw.Reset()
	s.Update("after")
	if raw.Len() != 0 {
		t.Errorf("drawn after Close: %q", raw.String())
	}
}

// The window size bubbletea reports at start is the one the Screen was
// made with: nothing is drawn again for it.
func TestScreenSameSizeDrawsNothing(t *testing.T) {
	m := &lines{text: []string{"hello"}}
	s, _, raw := screenOn(m, 40, 10)
	s.Init()
	raw.Reset()
	s.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	if raw.Len() != 0 {
		t.Errorf("the same size drew %d bytes: %q", raw.Len(), raw.String())
	}
	// A later window change redraws, even at the same size: the terminal
	// may have reflowed what it showed.
	s.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	if !strings.Contains(raw.String(), "hello") {
		t.Errorf("a window change did not redraw: %q", raw.String())
	}
}

// views counts the views built.
type views struct {
	lines
	n int
}

func (v *views) Update(msg tea.Msg) (tea.Model, tea.Cmd) { v.lines.Update(msg); return v, nil }
func (v *views) View() tea.View                          { v.n++; return v.lines.View() }

// The messages bubbletea sends at the start repeat what the Screen was
// given: the model gets them, no view is built again for them (a view
// and its comparison for each was a third of a first screen's CPU).
func TestScreenStartMessagesBuildNoView(t *testing.T) {
	m := &views{lines: lines{text: []string{"hello"}}}
	env := []string{"TERM=xterm-256color"}
	s, _, raw := screenOn(m, 40, 10)
	s.Init()
	if m.n != 1 {
		t.Fatalf("Init built %d views, want 1", m.n)
	}
	raw.Reset()
	s.Update(tea.ColorProfileMsg{Profile: colorprofile.Env(env)})
	s.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	s.Update(tea.EnvMsg(env))
	if m.n != 1 || raw.Len() != 0 {
		t.Errorf("the start messages built %d more views and wrote %q", m.n-1, raw.String())
	}
	// Anything else is drawn if it changed the view.
	s.Update("world")
	if m.n != 2 || !strings.Contains(raw.String(), "world") {
		t.Errorf("an update built %d views and wrote %q", m.n-1, raw.String())
	}
	// A new colour profile redraws everything.
	raw.Reset()
	s.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	if !strings.Contains(raw.String(), "hello") {
		t.Errorf("a new colour profile did not redraw: %q", raw.String())
	}
}

// A window of any size is drawn in its top-left MaxWidth×MaxHeight cells:
// the model lays out there, nothing is drawn beyond, and a session keeps
// memory for that many cells only (a 500×200 window kept 11.5 MB).
func TestHugeWindowDrawsInBoundedCells(t *testing.T) {
	l := &lines{text: []string{"hello"}}
	s, term, _ := screenOn(l, 300, 120)
	s.Init()
	if l.w != MaxWidth || l.h != MaxHeight {
		t.Fatalf("model laid out in %d×%d, want %d×%d", l.w, l.h, MaxWidth, MaxHeight)
	}
	s.Update(tea.WindowSizeMsg{Width: 500, Height: 200})
	if l.w != MaxWidth || l.h != MaxHeight {
		t.Fatalf("after a resize the model laid out in %d×%d, want %d×%d", l.w, l.h, MaxWidth, MaxHeight)
	}
	row := strings.Split(term.String(), "\n")[1]
	if got := strings.TrimRight(row, " "); got != strings.Repeat("-", MaxWidth) {
		t.Errorf("row 1 is %q, want %d dashes and nothing after", got, MaxWidth)
	}
	s.Update(tea.WindowSizeMsg{Width: 60, Height: 20})
	if l.w != 60 || l.h != 20 {
		t.Errorf("a smaller window: model laid out in %d×%d, want 60×20", l.w, l.h)
	}

	// Memory kept by sessions with huge windows, once drawn.
	const n = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]*Screen, n)
	for i := range kept {
		m := &lines{text: []string{strings.Repeat("x", 400)}}
		kept[i] = NewScreen(m, io.Discard, []string{"TERM=xterm-256color"}, 500, 200)
		kept[i].Init()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	if per > 2<<20 {
		t.Errorf("a 500×200 session keeps %d KB, want under 2 MB", per>>10)
	}
	runtime.KeepAlive(kept)
}

// typist shows every key it was sent, in a line, and counts its views.
type typist struct {
	lines
	n int
}

func (m *typist) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		if len(m.text) == 0 {
			m.text = []string{""}
		}
		if k.Text == "q" { // the last screen, left on the terminal
			m.final = "bye"
			return m, tea.Quit
		}
		m.text[0] += k.Text
		return m, nil
	}
	m.lines.Update(msg)
	return m, nil
}
func (m *typist) View() tea.View { m.n++; return m.lines.View() }

// Keys that come faster than a person types (a paste from a terminal
// without bracketed paste, a client streaming keys) build one view per
// drawGap, not one per key: a view costs about 100 µs, so a view per key
// let one client keep a core busy with a few kilobytes a second. A key
// after a pause is drawn at once.
func TestScreenDrawsAKeyBurstOnce(t *testing.T) {
	m := &typist{}
	s, term, _ := screenOn(m, 40, 10)
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.Init()
	built := m.n
	var later []tea.Cmd
	for range 1000 {
		if _, cmd := s.Update(tea.KeyPressMsg{Code: 'a', Text: "a"}); cmd != nil {
			later = append(later, cmd)
		}
	}
	if m.n-built > 1 {
		t.Fatalf("1000 keys at once built %d views", m.n-built)
	}
	if len(later) != 1 {
		t.Fatalf("%d draws scheduled for the burst, want 1", len(later))
	}
	now = now.Add(drawGap)
	s.Update(drawMsg{}) // what the scheduled command sends
	if got := term.String(); !strings.Contains(got, strings.Repeat("a", 40)) {
		t.Fatalf("after the burst the screen shows:\n%s", got)
	}
	// A key after a pause, as a person types, is drawn at once.
	now = now.Add(time.Second)
	built = m.n
	if _, cmd := s.Update(tea.KeyPressMsg{Code: 'b', Text: "b"}); cmd != nil || m.n != built+1 {
		t.Errorf("a typed key: %d views built, command %v", m.n-built, cmd != nil)
	}
	// A key that starts something (here the end) is drawn at once even
	// within the gap: the program may be over before the gap is.
	s.Update(tea.KeyPressMsg{Code: 'q', Text: "q"})
	if got := term.String(); !strings.Contains(got, "bye") {
		t.Errorf("the last screen is not drawn at once:\n%s", got)
	}
}

// Rows left unmarked because they did not change (see rows) leave the
// terminal exactly as a full redraw does: random frames of plain, styled
// and unclosed-style lines, each compared cell by cell (text and style)
// with a fresh screen drawing the same frame.
func TestUnchangedRowsSkippedExactly(t *testing.T) {
	variants := []string{
		"plain text", "other text", "",
		styleTitle.Render("a title"), styleTitle.Render("other title"),
		"\x1b[1mbold, left open", "\x1b[31mred\x1b[m then plain", "\x1b[4munder\x1b[24m (reset by a non-reset)",
		"\x1b[0mreset first", "é wide 漢字 text",
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	l := &lines{}
	s, term, _ := screenOn(l, 40, 12)
	s.Init()
	text := make([]string, 8)
	for i := range text {
		text[i] = variants[rnd.IntN(len(variants))]
	}
	for round := range 400 {
		for range 1 + rnd.IntN(2) {
			text[rnd.IntN(len(text))] = variants[rnd.IntN(len(variants))]
		}
		s.Update(slices.Clone(text))
		fresh := &lines{text: slices.Clone(text)}
		w, want, _ := screenOn(fresh, 40, 12)
		w.Init()
		for y := range 12 {
			for x := range 40 {
				got, exp := term.CellAt(x, y), want.CellAt(x, y)
				if (got == nil) != (exp == nil) || got != nil && (got.Content != exp.Content || !got.Style.Equal(&exp.Style)) {
					t.Fatalf("round %d, cell %d,%d: %+v, a full redraw gives %+v\nlines %q", round, x, y, got, exp, text)
				}
			}
		}
	}
}
