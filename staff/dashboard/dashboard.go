// Package dashboard owns the staff dashboard (`ssh -t staff@host` with no
// command): the dossiers by state with a search box, one dossier's detail
// and audit trail, a live refresh when a user moves on (flow's Subscribe),
// and resend / revoke / reset behind a y/n confirmation. It is a bubbletea model
// over flow.Service; every value from users or the directory is sanitized
// before it is drawn, and no code is ever shown.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/text/unicode/norm"

	"activated/flow"
	"activated/internal/sanitize"
	"activated/staff"
)

// RefreshEvery is how often the dashboard re-reads everything even when no
// change was announced (deadlines pass without one).
var RefreshEvery = 30 * time.Second

type action string

const (
	actResend action = "resend"
	actRevoke action = "revoke"
	actReset  action = "reset" // mail a password reset code (active account)
)

// Messages.
type (
	changedMsg string    // a dossier changed (flow.Service.Subscribe)
	tickMsg    time.Time // periodic refresh
	doneMsg    struct {  // a resend or revoke ended
		text string
		err  error
	}
)

// Model is the dashboard. Use it through tea.Model; New subscribes to
// dossier changes until ctx ends.
type Model struct {
	ctx     context.Context
	svc     *flow.Service
	who     staff.Identity
	changes <-chan string

	width, height int

	all       []flow.Status // every dossier, by login
	rows      []flow.Status // those the tab and the search keep
	tab       int           // 0 = all, i = staff.States[i-1]
	search    string
	searching bool
	cursor    int // index in rows
	top       int // first row shown

	detail      *flow.Status // nil: the list is shown
	detailLines []string
	scroll      int

	confirm action // asked, waiting for y/n
	target  string // the login confirm is about
	running bool   // an action is under way
	message string
	updated time.Time
}

// New returns the dashboard of who over svc. ctx is the SSH session's:
// when it ends the dashboard stops listening for changes.
func New(ctx context.Context, svc *flow.Service, who staff.Identity) *Model {
	ch, stop := svc.Subscribe()
	context.AfterFunc(ctx, stop)
	m := &Model{ctx: ctx, svc: svc, who: who, changes: ch, width: 80, height: 24}
	m.reload()
	return m
}

// Init starts listening for changes and the periodic refresh.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.wait(), m.tick()) }

func (m *Model) wait() tea.Cmd {
	ch, ctx := m.changes, m.ctx
	return func() tea.Msg {
		select {
		case login := <-ch:
			return changedMsg(login)
		case <-ctx.Done():
			return nil
		}
	}
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(RefreshEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update handles keys, window sizes, dossier changes and action results.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.clamp()
	case changedMsg:
		changed := map[string]bool{string(msg): true}
		for drained := false; !drained; { // a burst (an import) costs one reload
			select {
			case l := <-m.changes:
				changed[l] = true
			default:
				drained = true
			}
		}
		m.reload()
		if m.detail != nil && changed[m.detail.Dossier.Login] {
			m.reloadDetail()
		}
		return m, m.wait()
	case tickMsg:
		m.reload()
		if m.detail != nil {
			m.reloadDetail()
		}
		return m, m.tick()
	case doneMsg:
		m.running = false
		m.message = msg.text
		if msg.err != nil {
			m.message = "error: " + sanitize.Text(msg.err.Error())
		}
		m.reload()
		if m.detail != nil {
			m.reloadDetail()
		}
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	s := k.String()
	if s == "ctrl+c" {
		return m, tea.Quit
	}
	if m.confirm != "" {
		act, login := m.confirm, m.target
		m.confirm, m.target = "", ""
		if s == "y" || s == "Y" {
			m.running = true
			m.message = fmt.Sprintf("%s %s…", act, login)
			return m, m.run(act, login)
		}
		m.message = "cancelled"
		return m, nil
	}
	if m.searching {
		m.searchKey(k)
		return m, nil
	}
	m.message = ""
	switch s {
	case "q":
		return m, tea.Quit
	case "r":
		m.ask(actResend)
		return m, nil
	case "x":
		m.ask(actRevoke)
		return m, nil
	case "p":
		m.ask(actReset)
		return m, nil
	}
	if m.detail != nil {
		m.detailKey(s)
	} else {
		m.listKey(s)
	}
	return m, nil
}

func (m *Model) listKey(s string) {
	switch s {
	case "up", "k":
		m.cursor--
	case "down", "j":
		m.cursor++
	case "pgup":
		m.cursor -= m.listRows()
	case "pgdown", "space":
		m.cursor += m.listRows()
	case "home", "g":
		m.cursor = 0
	case "end", "G":
		m.cursor = len(m.rows) - 1
	case "tab", "right", "l":
		m.tab = (m.tab + 1) % (len(staff.States) + 1)
		m.filter()
	case "shift+tab", "left", "h":
		m.tab = (m.tab + len(staff.States)) % (len(staff.States) + 1)
		m.filter()
	case "/":
		m.searching = true
		m.tab = 0 // a search looks through every state
		m.filter()
	case "esc":
		m.search = ""
		m.filter()
	case "enter":
		if login := m.selected(); login != "" {
			m.detail = &flow.Status{Dossier: flow.Dossier{Login: login}}
			m.scroll = 0
			m.reloadDetail()
		}
	}
	m.clamp()
}

func (m *Model) searchKey(k tea.KeyPressMsg) {
	switch k.String() {
	case "esc":
		m.search, m.searching = "", false
	case "enter", "down", "up", "tab":
		m.searching = false
	case "backspace":
		if r := []rune(m.search); len(r) > 0 {
			m.search = string(r[:len(r)-1])
		}
	case "ctrl+u":
		m.search = ""
	default:
		if t := sanitize.Text(k.Text); t != "" && len(m.search) < 64 {
			m.search += t
		}
	}
	m.filter()
	m.clamp()
}

func (m *Model) detailKey(s string) {
	switch s {
	case "up", "k":
		m.scroll--
	case "down", "j":
		m.scroll++
	case "pgup":
		m.scroll -= m.detailRows()
	case "pgdown", "space":
		m.scroll += m.detailRows()
	case "home", "g":
		m.scroll = 0
	case "end", "G":
		m.scroll = len(m.detailLines)
	case "esc", "backspace", "left", "h":
		m.detail, m.detailLines = nil, nil
	}
	m.clamp()
}

// selected is the login the keys act on: the open dossier, or the row
// under the cursor.
func (m *Model) selected() string {
	if m.detail != nil {
		return m.detail.Dossier.Login
	}
	if m.cursor >= 0 && m.cursor < len(m.rows) {
		return m.rows[m.cursor].Dossier.Login
	}
	return ""
}

func (m *Model) ask(act action) {
	login := m.selected()
	switch {
	case login == "":
		m.message = "no dossier selected"
	case m.running:
		m.message = "wait: an action is under way"
	default:
		m.confirm, m.target = act, login
	}
}

func (m *Model) run(act action, login string) tea.Cmd {
	ctx, svc, client := m.ctx, m.svc, m.who.Client()
	return func() tea.Msg {
		if act == actRevoke {
			switch err := svc.Revoke(login, client); {
			case errors.Is(err, flow.ErrAlreadyActivated):
				return doneMsg{text: login + " is already activated: nothing revoked"}
			case err != nil:
				return doneMsg{err: fmt.Errorf("revoke %s: %w", login, err)}
			}
			return doneMsg{text: login + ": revoked, codes ended"}
		}
		if act == actReset {
			to, err := svc.Reset(ctx, login, client)
			if err != nil {
				return doneMsg{err: fmt.Errorf("reset %s: %w", login, err)}
			}
			return doneMsg{text: login + ": reset code mailed to " + strings.Join(to, ", ")}
		}
		out, err := svc.Resend(ctx, login, client)
		if err != nil {
			return doneMsg{err: fmt.Errorf("resend %s: %w", login, err)}
		}
		return doneMsg{text: login + ": " + string(out)}
	}
}

// reload reads every dossier again, keeping the cursor on its login.
func (m *Model) reload() {
	list, err := m.svc.List("", time.Time{})
	if err != nil {
		m.message = "error: " + sanitize.Text(err.Error())
		return
	}
	m.all = list
	m.updated = m.svc.Now()
	m.filter()
}

func (m *Model) reloadDetail() {
	login := m.detail.Dossier.Login
	st, err := m.svc.Status(login)
	if err != nil {
		m.message = "error: " + sanitize.Text(err.Error())
		if m.detailLines == nil {
			m.detail = nil
		}
		return
	}
	for i := range st.Mails {
		st.Mails[i].Code = ""
	}
	m.detail = &st
	m.detailLines = detailLines(st, m.svc.Config().Location)
	m.clamp()
}

// detailLines is the dossier for the helpdesk: its fields, its audit trail
// newest first (where the caller is now), then its mails. The staff
// package's writers sanitize every value.
func detailLines(st flow.Status, loc *time.Location) []string {
	var b strings.Builder
	trail := slices.Clone(st.Events)
	slices.Reverse(trail)
	_ = staff.WriteSummary(&b, st, loc) // a strings.Builder does not fail
	fmt.Fprintf(&b, "\nAudit trail (%d, newest first)\n", len(trail))
	_ = staff.WriteTrail(&b, trail, loc)
	fmt.Fprintf(&b, "\nMails (%d)\n", len(st.Mails))
	_ = staff.WriteMails(&b, st.Mails, loc)
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// filter applies the tab and the search to all.
func (m *Model) filter() {
	keep := m.selected()
	q := fold(m.search)
	m.rows = m.rows[:0]
	for _, s := range m.all {
		if m.tab > 0 && s.State != staff.States[m.tab-1] {
			continue
		}
		if q != "" && !strings.Contains(fold(s.Dossier.Login), q) && !strings.Contains(fold(sanitize.Text(staff.Name(s.Dossier))), q) {
			continue
		}
		m.rows = append(m.rows, s)
	}
	if i := slices.IndexFunc(m.rows, func(s flow.Status) bool { return s.Dossier.Login == keep }); i >= 0 {
		m.cursor = i
	}
	m.clamp()
}

// fold is s as the search compares it: lower case, accents dropped
// ("Hélène" → "helene").
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// clamp keeps the cursor, the list window and the detail scroll in range.
func (m *Model) clamp() {
	m.cursor = min(max(m.cursor, 0), max(len(m.rows)-1, 0))
	n := m.listRows()
	if m.cursor < m.top {
		m.top = m.cursor
	}
	if m.cursor >= m.top+n {
		m.top = m.cursor - n + 1
	}
	m.top = min(max(m.top, 0), max(len(m.rows)-n, 0))
	m.scroll = min(max(m.scroll, 0), max(len(m.detailLines)-m.detailRows(), 0))
}
