package tui

import (
	"regexp"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/glamour/v2"
	gansi "charm.land/glamour/v2/ansi"
	"charm.land/glamour/v2/styles"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/sanitize"
)

// The smallest window the wizard draws in; below it only "window.small".
const (
	minWidth   = 40
	minHeight  = 12
	minCharter = 4 // lines of charter worth giving the introduction up for
)

// Styles. Colors only repeat what words and marks already say; the session's
// color profile (picked by bubbletea) degrades them.
var (
	styleText  = lipgloss.NewStyle()
	styleTitle = lipgloss.NewStyle().Bold(true)
	styleLabel = lipgloss.NewStyle().Bold(true)
	styleFocus = lipgloss.NewStyle().Bold(true)
	styleHelp  = lipgloss.NewStyle().Faint(true)
	styleErr   = lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true)
	styleNote  = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleBusy  = lipgloss.NewStyle().Italic(true)
)

// wrap breaks plain text into lines of at most w cells. It breaks at
// spaces only, so a command written with no-break spaces (see keep) stays
// whole when it fits; a word longer than a line is cut. No-break spaces
// become plain spaces, so what is copied from the screen pastes right.
func wrap(s string, w int) []string {
	w = max(w, 1)
	s = frenchSpaces.Replace(s)
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line, lw := "", 0 // lw: line's width, kept rather than measured again
		for _, word := range strings.Split(para, " ") {
			if word == "" {
				continue
			}
			ww := ansi.StringWidth(word)
			switch {
			case line == "":
			case lw+1+ww <= w:
				line += " " + word
				lw += 1 + ww
				continue
			default:
				out = append(out, line)
			}
			line, lw = word, ww
			if ww > w {
				pieces := strings.Split(ansi.Hardwrap(word, w, true), "\n")
				out = append(out, pieces[:len(pieces)-1]...)
				line = pieces[len(pieces)-1]
				lw = ansi.StringWidth(line)
			}
		}
		out = append(out, line)
	}
	for i, l := range out {
		out[i] = strings.ReplaceAll(l, "\u00a0", " ")
	}
	return out
}

// frenchSpaces binds French high punctuation to the word before it, so
// a line never starts with ":" or "?".
var frenchSpaces = strings.NewReplacer(" :", "\u00a0:", " ;", "\u00a0;", " ?", "\u00a0?", " !", "\u00a0!", " »", "\u00a0»", "« ", "«\u00a0")

// keep joins the words of s with no-break spaces: wrap keeps it on one line.
func keep(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") }

// command finds an ssh command in a sentence (see i18n.Command), for the
// last sentence to keep it whole as the screens do.
var command = regexp.MustCompile(`ssh (-p [0-9]+ )?[^ ]+@[^ ]+`)

// builder collects the lines of a screen body, with what must stay
// visible when the window is too short and where the cursor goes.
type builder struct {
	w         int
	spaced    bool
	lines     []string
	focusFrom int // first line to keep visible, -1 none
	focusTo   int // end (exclusive) of the lines to keep visible
	cursor    *tea.Cursor
	cursorRow int
}

func (b *builder) para(s string, st lipgloss.Style) {
	for _, l := range wrap(s, b.w) {
		b.lines = append(b.lines, st.Render(l))
	}
}

// gap is a blank line between blocks, dropped when space is short.
func (b *builder) gap() {
	if b.spaced && len(b.lines) > 0 && b.lines[len(b.lines)-1] != "" {
		b.lines = append(b.lines, "")
	}
}

func (b *builder) focusOn(from int) {
	b.focusFrom, b.focusTo = from, len(b.lines)
}

// keepVisible extends the lines to keep visible to the end of the body.
func (b *builder) keepVisible() {
	if b.focusFrom >= 0 {
		b.focusTo = len(b.lines)
	}
}

// item is a choice: "> [x] label", the marker showing the focused one,
// continuation lines indented under the label.
func (b *builder) item(focused bool, mark, label string) {
	head := "  " + mark + " "
	st := styleText
	if focused {
		head, st = "> "+mark+" ", styleFocus
	}
	indent := strings.Repeat(" ", ansi.StringWidth(head))
	from := len(b.lines)
	for i, l := range wrap(label, b.w-len(indent)) {
		p := indent
		if i == 0 {
			p = head
		}
		b.lines = append(b.lines, st.Render(p+l))
	}
	if focused {
		b.focusOn(from)
		if b.cursor == nil { // the terminal cursor sits on the focused box, for screen readers and magnifiers
			b.cursor, b.cursorRow = tea.NewCursor(2, 0), from
		}
	}
}

// input is a labelled text field on its own line, "> " marking the focused
// one, with the terminal cursor in it.
func (b *builder) input(label string, in *textinput.Model) {
	from := len(b.lines)
	b.para(label, styleLabel)
	mark := "  "
	if in.Focused() {
		mark = "> "
	}
	if c := in.Cursor(); c != nil {
		c.Position.X += len(mark)
		b.cursor, b.cursorRow = c, len(b.lines)
	}
	b.lines = append(b.lines, mark+in.View())
	if in.Focused() {
		b.focusOn(from)
	}
}

func (b *builder) viewport(view string, h int) {
	ls := strings.Split(view, "\n")
	if len(ls) > h {
		ls = ls[:h]
	}
	b.lines = append(b.lines, ls...)
}

// helpLines joins the key help, breaking lines between items.
func helpLines(items []string, w int) []string {
	var out []string
	line := ""
	for _, it := range items {
		switch {
		case line == "":
			line = it
		case ansi.StringWidth(line)+3+ansi.StringWidth(it) <= w:
			line += " · " + it
		default:
			out = append(out, line)
			line = it
		}
	}
	if line != "" {
		out = append(out, line)
	}
	var lines []string
	for _, l := range out {
		for _, x := range wrap(l, w) {
			lines = append(lines, styleHelp.Render(x))
		}
	}
	return lines
}

// parts are the pieces of a screen before it is fitted to the height.
type parts struct {
	header, footer []string
	body           *builder
}

func (p parts) height() int {
	n := len(p.header) + len(p.body.lines) + len(p.footer)
	if p.body.spaced {
		n += 2
	}
	return n
}

func (m *model) parts(w int, spaced bool) parts {
	var p parts
	head := i18n.StepIndicator(m.lang, m.step) + " — " + i18n.StepTitle(m.lang, m.step)
	for _, l := range wrap(head, w) {
		p.header = append(p.header, styleTitle.Render(l))
	}
	p.body = &builder{w: w, spaced: spaced, focusFrom: -1}
	m.body(p.body)
	// The status line (errors, progress) stays in place when there is
	// room; the compact layout drops it while empty, for one more line of
	// body.
	if text, st := m.status(); text != "" || spaced {
		for _, l := range wrap(text, w) {
			p.footer = append(p.footer, st.Render(l))
		}
	}
	p.footer = append(p.footer, helpLines(m.help(), w)...)
	return p
}

// frame lays the screen out in w×h: header, body, status, help. Blank
// lines separate them when they fit; a body still too tall shows the part
// around the focused item.
func (m *model) frame(w, h int) ([]string, *tea.Cursor) {
	if w < minWidth || h < minHeight {
		lines := wrap(i18n.T(m.lang, "window.small"), w)
		return clip(lines[:min(len(lines), max(h, 1))], w), nil
	}
	p := m.parts(w, true)
	if p.height() > h {
		p = m.parts(w, false)
	}
	b := p.body
	room := h - len(p.header) - len(p.footer)
	if b.spaced {
		room -= 2
	}
	room = max(room, 0)
	over := len(b.lines) > room
	if over { // one line says there is more above or below
		room = max(room-1, 1)
	}
	off := 0
	switch {
	case len(b.lines) <= room:
	case b.focusFrom >= 0:
		off = max(0, b.focusTo-room)
		off = min(off, b.focusFrom)
		off = min(off, len(b.lines)-room)
	default: // nothing to keep in view: the lines the user scrolled to
		off = min(m.scroll, len(b.lines)-room)
	}
	m.shown = off
	end := min(len(b.lines), off+room)
	lines := append([]string{}, p.header...)
	if b.spaced {
		lines = append(lines, "")
	}
	top := len(lines)
	lines = append(lines, b.lines[off:end]...)
	if over {
		lines = append(lines, styleHelp.Render(m.more(off > 0, end < len(b.lines))))
	}
	if b.spaced {
		lines = append(lines, "")
	}
	lines = append(lines, p.footer...)
	if len(lines) > h { // only when even the help does not fit: keep the help
		lines = append(lines[:max(0, h-len(p.footer))], p.footer...)
		lines = lines[len(lines)-h:]
	}
	var cur *tea.Cursor
	if b.cursor != nil && b.cursorRow >= off && b.cursorRow < end {
		cur = b.cursor
		cur.Position.Y = top + b.cursorRow - off
	}
	return clip(lines, w), cur
}

// clip cuts every line to w cells, a last guard for the layout.
func clip(lines []string, w int) []string {
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return lines
}

// View draws the current screen in the alternate screen. Once the wizard
// ends, the last frame is a few plain lines left on the normal screen.
func (m *model) View() tea.View {
	if m.quitting {
		w := m.width
		if w < 1 {
			w = 80
		}
		var lines []string
		for _, l := range strings.Split(m.final, "\n") {
			lines = append(lines, wrap(command.ReplaceAllStringFunc(m.glyphs(l), keep), w)...)
		}
		return tea.NewView(strings.Join(lines, "\n") + "\n")
	}
	lines, cur := m.frame(m.width, m.height)
	if m.opts.ASCII {
		for i, l := range lines {
			lines[i] = i18n.ASCII(l)
		}
		lines = clip(lines, m.width)
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	v.WindowTitle = i18n.T(m.lang, "app.title")
	v.Cursor = cur
	return v
}

// fit sizes the widgets to the window after every update: text fields to
// the width, the charter to the height left over.
func (m *model) fit() {
	w := max(m.width, 1)
	for _, in := range []*textinput.Model{&m.login, &m.code, &m.addr, &m.verify, &m.pw, &m.pw2} {
		in.SetWidth(max(1, w-3))
	}
	if m.step != flow.StepCharter || m.tooSmall() || m.quitting {
		return
	}
	if m.charterWidth != w {
		m.charter.SetWidth(w)
		m.charter.SetContent(renderCharter(m.svc.Config().Charter, w))
		m.charterWidth = w
	}
	// The charter takes what the rest leaves, blank lines and then the
	// introduction given up when it would get fewer than minCharter lines.
	for _, brief := range []bool{false, true} {
		m.charterBrief = brief
		m.charter.SetHeight(1)
		spare := m.height - m.parts(w, true).height()
		if spare+1 < minCharter {
			spare = m.height - m.parts(w, false).height()
		}
		m.charter.SetHeight(max(1, 1+spare))
		if m.charter.TotalLineCount() <= m.charter.Height() {
			m.charter.SetHeight(m.charter.Height() + 1) // it all shows: no position line
		}
		if 1+spare >= minCharter {
			break
		}
	}
	m.charter.SetYOffset(m.charter.YOffset())
}

// renderCharter renders the charter's Markdown for w columns: glamour with
// a colorless style (bold, italic, underline only), plain wrapped text if
// glamour fails.
func renderCharter(md []byte, w int) string {
	src := cleanMarkdown(md)
	// glamour wraps a list letting a "." or "," that ends a line go one
	// cell past the width (the window then showed it alone on the next
	// line): such a charter is wrapped one cell narrower.
	for _, ww := range []int{w, w - 1} {
		r, err := glamour.NewTermRenderer(glamour.WithStyles(charterStyle()), glamour.WithWordWrap(max(ww, 1)))
		if err != nil {
			break
		}
		out, err := r.Render(src)
		if err != nil {
			break
		}
		out = strings.Trim(out, "\n")
		if ww < w || !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return ansi.StringWidth(l) > w }) {
			return out
		}
	}
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		lines = append(lines, wrap(l, w)...)
	}
	return strings.Join(lines, "\n")
}

// cleanMarkdown sanitizes the charter line by line (it is a file the
// operator controls, still nothing in it may drive the terminal).
func cleanMarkdown(md []byte) string {
	ls := joinListItems(strings.Split(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n"))
	for i, l := range ls {
		ls[i] = sanitize.Text(strings.ReplaceAll(l, "\t", "    "))
	}
	return strings.Join(ls, "\n")
}

var (
	mdListItem = regexp.MustCompile(`^\s*([-*+]|\d{1,9}[.)])\s+\S`)
	mdFence    = regexp.MustCompile("^\\s{0,3}(```|~~~)")
	mdBlock    = regexp.MustCompile(`^\s{0,3}([#>]|([-*_])(\s*[-*_]){2,}\s*$)`)
)

// joinListItems puts each list item's text on one line: glamour renders
// the soft line breaks of a list item as line breaks (its paragraphs'
// it joins), so an item written over two lines of the file came out
// ragged, cut where the file was and again at the window's width. Hard
// breaks (two spaces or a backslash at the end) and code stay.
func joinListItems(ls []string) []string {
	out := ls[:0:0]
	item, fenced := false, false
	for _, l := range ls {
		switch {
		case mdFence.MatchString(l):
			fenced, item = !fenced, false
		case fenced || strings.TrimSpace(l) == "" || mdBlock.MatchString(l):
			item = false
		case mdListItem.MatchString(l):
			item = true
		case item && len(out) > 0:
			prev := out[len(out)-1]
			if !strings.HasSuffix(prev, "  ") && !strings.HasSuffix(prev, "\\") {
				out[len(out)-1] = strings.TrimRight(prev, " ") + " " + strings.TrimSpace(l)
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

func charterStyle() gansi.StyleConfig {
	on, zero := true, uint(0)
	s := styles.ASCIIStyleConfig
	s.Document.Margin = &zero
	s.Document.BlockPrefix, s.Document.BlockSuffix = "", ""
	s.Heading.Bold = &on
	s.H1 = gansi.StyleBlock{StylePrimitive: gansi.StylePrimitive{Bold: &on, Underline: &on}}
	for _, h := range []*gansi.StyleBlock{&s.H2, &s.H3, &s.H4, &s.H5, &s.H6} {
		*h = gansi.StyleBlock{StylePrimitive: gansi.StylePrimitive{Bold: &on}}
	}
	s.Strong = gansi.StylePrimitive{Bold: &on}
	s.Emph = gansi.StylePrimitive{Italic: &on}
	s.CodeBlock.Margin = &zero
	return s
}

// more is the line under a body too tall for the window: which way the
// hidden part lies (Tab and the arrows bring it into view).
func (m *model) more(above, below bool) string {
	switch {
	case above && below:
		return i18n.T(m.lang, "scroll.both")
	case above:
		return i18n.T(m.lang, "scroll.above")
	}
	return i18n.T(m.lang, "scroll.below")
}

// glyphs is s as the client's terminal can show it.
func (m *model) glyphs(s string) string {
	if m.opts.ASCII {
		return i18n.ASCII(s)
	}
	return s
}
