package dashboard

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"activated/flow"
	"activated/internal/sanitize"
	"activated/staff"
)

var (
	bold     = lipgloss.NewStyle().Bold(true)
	faint    = lipgloss.NewStyle().Faint(true)
	reversed = lipgloss.NewStyle().Reverse(true)
)

// Lines above and below the list and the detail.
const (
	listHeader   = 4 // title, tabs, search, column names
	detailHeader = 1 // title
	helpLines    = 2
	footer       = 1 + helpLines // message, key help
)

func (m *Model) listRows() int   { return max(m.height-listHeader-footer, 1) }
func (m *Model) detailRows() int { return max(m.height-detailHeader-footer, 1) }

var (
	listHelp    = []string{"↑↓ move", "enter open", "/ search", "tab state", "r resend", "x revoke", "p reset", "q quit", "* open now"}
	searchHelp  = []string{"type to filter", "enter done", "esc clear"}
	detailHelp  = []string{"↑↓ scroll", "esc back", "r resend", "x revoke", "p reset", "q quit"}
	confirmHelp = []string{"y yes", "any other key: no"}
)

// View draws the list or the detail, fitted to the window (40×12 and up).
func (m *Model) View() tea.View {
	var lines []string
	if m.detail != nil {
		lines = m.detailView()
	} else {
		lines = m.listView()
	}
	v := tea.NewView(m.fit(lines))
	v.AltScreen = true
	return v
}

func (m *Model) listView() []string {
	lines := []string{m.title("Staff dashboard"), m.tabs(), m.searchLine(), m.columns(nil, false)}
	n := m.listRows()
	for i := m.top; i < m.top+n; i++ {
		switch {
		case i < len(m.rows):
			lines = append(lines, m.columns(&m.rows[i], i == m.cursor))
		case i == 0:
			lines = append(lines, faint.Render("  no dossier here"))
		default:
			lines = append(lines, "")
		}
	}
	help := listHelp
	if m.searching {
		help = searchHelp
	}
	return append(append(lines, m.messageLine()), m.help(help)...)
}

func (m *Model) detailView() []string {
	d := m.detail.Dossier
	n := m.detailRows()
	end := min(m.scroll+n, len(m.detailLines))
	title := fmt.Sprintf("%s · %s", d.Login, staff.Name(d))
	if len(m.detailLines) > n {
		title += fmt.Sprintf("  (%d–%d of %d)", m.scroll+1, end, len(m.detailLines))
	}
	lines := []string{m.title(title)}
	for i := m.scroll; i < m.scroll+n; i++ {
		if i < end {
			lines = append(lines, m.detailLines[i]) // sanitized by WriteStatus
		} else {
			lines = append(lines, "")
		}
	}
	return append(append(lines, m.messageLine()), m.help(detailHelp)...)
}

func (m *Model) title(s string) string { return bold.Render(sanitize.Text(s)) }

// tabs shows every state with its count, or only the current one when the
// window is too narrow.
func (m *Model) tabs() string {
	counts := make([]int, len(staff.States)+1)
	counts[0] = len(m.all)
	for _, s := range m.all {
		for i, st := range staff.States {
			if s.State == st {
				counts[i+1]++
			}
		}
	}
	label := func(i int) string {
		if i == 0 {
			return fmt.Sprintf("all %d", counts[0])
		}
		return fmt.Sprintf("%s %d", staff.States[i-1], counts[i])
	}
	parts := make([]string, len(counts))
	width := 0
	for i := range counts {
		parts[i] = " " + label(i) + " "
		width += len(parts[i]) + 1
		if i == m.tab {
			parts[i] = reversed.Render(parts[i])
		}
	}
	if width <= m.width {
		return strings.Join(parts, " ")
	}
	return "◂ " + reversed.Render(" "+label(m.tab)+" ") + " ▸ tab"
}

// searchLine says what the search looks for and where: every state, or
// the one tab chosen after it started.
func (m *Model) searchLine() string {
	where := "all states"
	if m.tab > 0 {
		where = string(staff.States[m.tab-1]) + " only"
	}
	label := "Search (" + where + "): "
	switch {
	case m.searching:
		return label + m.search + reversed.Render(" ")
	case m.search != "":
		return label + m.search + faint.Render("  (/ edit, esc clear)")
	}
	return faint.Render("/ search all states by login or name")
}

// columns is one row of the list (the column names when s is nil).
func (m *Model) columns(s *flow.Status, selected bool) string {
	const loginW, stateW, stepW = 12, 12, 20
	withStep := m.width >= 64
	var login, state, step, name string
	if s == nil {
		login, state, step, name = "LOGIN", "STATE", "STEP", "NAME"
	} else {
		login, name = s.Dossier.Login, staff.Name(s.Dossier)
		state, step = string(s.State), staff.StepText(s.Step)
		if s.Busy {
			state += "*"
		}
	}
	marker := "  "
	if selected {
		marker = "> "
	}
	line := marker + pad(login, loginW) + " " + pad(state, stateW) + " "
	if withStep {
		line += pad(step, stepW) + " "
	}
	line += sanitize.Text(name)
	line = ansi.Truncate(line, m.width, "…")
	switch {
	case selected:
		return reversed.Render(pad(line, m.width))
	case s == nil:
		return faint.Render(line)
	}
	return line
}

// pad sanitizes s and fits it to w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(sanitize.Text(s), w, "…")
	return s + strings.Repeat(" ", max(w-ansi.StringWidth(s), 0))
}

func (m *Model) messageLine() string {
	switch {
	case m.confirm == actResend:
		return bold.Render(fmt.Sprintf("Mail a new invitation code to %s? y/n", m.target))
	case m.confirm == actReset:
		return bold.Render(fmt.Sprintf("Mail a password reset code to %s? y/n", m.target))
	case m.confirm == actRevoke:
		return bold.Render(fmt.Sprintf("Revoke %s (end its codes and session)? y/n", m.target))
	case m.message != "":
		return m.message
	}
	return faint.Render("live · updated " + m.updated.In(m.svc.Config().Location).Format("15:04:05"))
}

// help wraps the key help into helpLines lines of the window's width;
// while a confirmation waits, it says how to answer.
func (m *Model) help(items []string) []string {
	if m.confirm != "" {
		items = confirmHelp
	}
	lines := make([]string, 0, helpLines)
	cur := ""
	for _, it := range items {
		switch {
		case cur == "":
			cur = it
		case ansi.StringWidth(cur)+2+ansi.StringWidth(it) <= m.width:
			cur += "  " + it
		default:
			lines = append(lines, cur)
			cur = it
		}
	}
	lines = append(lines, cur)
	for len(lines) < helpLines {
		lines = append(lines, "")
	}
	for i := range lines {
		lines[i] = faint.Render(lines[i])
	}
	return lines[:helpLines]
}

// fit cuts every line to the width, marking a cut with "…" (a half
// address must not pass for a whole one), and the whole to the height.
func (m *Model) fit(lines []string) string {
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.width, "…")
	}
	return strings.Join(lines, "\n")
}
