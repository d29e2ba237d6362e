package dashboard

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"activated/directory"
	"activated/flow"
	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
	"activated/staff"
	"activated/storage"
)

var who = staff.Identity{Name: "Alice Admin", Fingerprint: "SHA256:test", Remote: "192.0.2.7:5555"}

var (
	anne  = slapd.Account{Login: "amartin", GivenName: "Anne", Surname: "Martin", RecoveryMail: "anne@example.net", Affiliation: "student"}
	bruno = slapd.Account{Login: "bdurand", GivenName: "Bruno", Surname: "Durand", RecoveryMail: "bruno@example.net", Affiliation: "staff"}
	evil  = slapd.Account{Login: "evil", GivenName: "\x1b]0;pwned\x07Jean", Surname: "Du\u202epont", RecoveryMail: "evil@example.net"}
)

type world struct {
	t   *testing.T
	db  *storage.DB
	svc *flow.Service
}

// newWorld is a real service over storage and slapd, with every account
// invited.
func newWorld(t *testing.T, accounts ...slapd.Account) *world {
	t.Helper()
	srv := slapdtest.Start(t, accounts...)
	dir, err := directory.New(directory.Config{URL: srv.URL, BindDN: srv.ServiceDN, BindPassword: srv.ServicePassword,
		PeopleBase: srv.PeopleDN, MailDomain: slapd.MailDomain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := flow.New(flow.Config{}, db, dir, flow.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if out, err := svc.Invite(context.Background(), a.Login, false, who.Client()); out != flow.Invited || err != nil {
			t.Fatalf("invite %s: %s %v", a.Login, out, err)
		}
	}
	return &world{t: t, db: db, svc: svc}
}

func (w *world) mails(login string) []flow.Mail {
	w.t.Helper()
	// Every outbox entry of login, in any state (a resend cancels the
	// queued mail of the code it replaces).
	var out []flow.Mail
	err := w.db.View(func(tx flow.Tx) error {
		var err error
		out, err = tx.Mails(login)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) code(login string) string {
	ms := w.mails(login)
	if len(ms) == 0 {
		w.t.Fatalf("no mail to %s", login)
	}
	return ms[len(ms)-1].Code
}

// newModel returns a dashboard sized width×height.
func newModel(t *testing.T, w *world, width, height int) *Model {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New(ctx, w.svc, who)
	m.Update(tea.WindowSizeMsg{Width: width, Height: height})
	return m
}

var keyCodes = map[string]rune{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "down": tea.KeyDown, "up": tea.KeyUp, "backspace": tea.KeyBackspace}

// press sends keys: names of keyCodes, or text typed rune by rune. It
// returns the command of the last key.
func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		if c, ok := keyCodes[k]; ok {
			_, cmd = m.Update(tea.KeyPressMsg{Code: c})
			continue
		}
		for _, r := range k {
			_, cmd = m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
		}
	}
	return cmd
}

var sgr = regexp.MustCompile(`\x1b\[[0-9;:]*m`)

// screen is the view without its own styling; it fails the test if
// anything else than styling would reach the terminal.
func screen(t *testing.T, m *Model) string {
	t.Helper()
	s := sgr.ReplaceAllString(m.View().Content, "")
	for _, r := range s {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f {
			t.Fatalf("control or bidi rune %U on screen:\n%q", r, s)
		}
	}
	return s
}

// row returns the screen line showing login.
func row(s, login string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, " "+login+" ") {
			return l
		}
	}
	return ""
}

func TestListSearchAndDetail(t *testing.T) {
	w := newWorld(t, anne, bruno)
	m := newModel(t, w, 100, 24)
	s := screen(t, m)
	for _, want := range []string{"Staff dashboard", "all 2", "pending 2", "in-progress 0", "Anne Martin", "Bruno Durand", "2 of 7 recovery-code", "q quit"} {
		if !strings.Contains(s, want) {
			t.Errorf("list lacks %q:\n%s", want, s)
		}
	}
	press(m, "tab", "tab") // in-progress
	if s := screen(t, m); !strings.Contains(s, "no dossier here") || strings.Contains(s, "amartin") {
		t.Errorf("in-progress tab:\n%s", s)
	}
	press(m, "tab", "tab", "tab", "tab") // activated, expired, revoked, back to all
	press(m, "/", "BRU")
	s = screen(t, m)
	if !strings.Contains(s, "Search (all states): BRU") || row(s, "bdurand") == "" || row(s, "amartin") != "" || !strings.Contains(s, "esc clear") {
		t.Errorf("search:\n%s", s)
	}
	press(m, "enter", "enter") // leave the search, open the dossier
	s = screen(t, m)
	for _, want := range []string{"bdurand · Bruno Durand", "bruno@example.net", "Audit trail (1, newest first)", "staff:Alice Admin SHA256:test", "esc back"} {
		if !strings.Contains(s, want) {
			t.Errorf("detail lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, w.code("bdurand")) {
		t.Error("the detail shows a code")
	}
	press(m, "esc")
	if s := screen(t, m); row(s, "bdurand") == "" || !strings.Contains(s, "Search (all states): BRU") {
		t.Errorf("back to the list:\n%s", s)
	}
	press(m, "esc") // clear the search
	if s := screen(t, m); row(s, "amartin") == "" {
		t.Errorf("search not cleared:\n%s", s)
	}
}

// The dashboard follows a user through the procedure without a key
// pressed.
func TestLiveRefresh(t *testing.T) {
	w := newWorld(t, anne, bruno)
	m := newModel(t, w, 100, 24)
	x, err := w.svc.Open(context.Background(), w.code("bdurand"), flow.Client{Remote: "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	msg := m.wait()() // the change wakes the dashboard up
	_, cmd := m.Update(msg)
	if cmd == nil {
		t.Fatal("the dashboard stopped listening after a change")
	}
	if r := row(screen(t, m), "bdurand"); !strings.Contains(r, "in-progress*") || !strings.Contains(r, "3 of 7 charter") {
		t.Fatalf("after open: %q", r)
	}
	press(m, "down", "enter")
	if err := x.AcceptCharter(true); err != nil {
		t.Fatal(err)
	}
	m.Update(cmd())
	if s := screen(t, m); !strings.Contains(s, "4 of 7 directory") || !strings.Contains(s, "charter") {
		t.Errorf("detail after the charter:\n%s", s)
	}
}

func TestResendAndRevokeAskFirst(t *testing.T) {
	w := newWorld(t, anne, bruno)
	m := newModel(t, w, 80, 24)
	first := w.code("amartin")
	press(m, "r")
	if s := screen(t, m); !strings.Contains(s, "Mail a new invitation code to amartin? y/n") {
		t.Fatalf("no confirmation:\n%s", s)
	}
	if cmd := press(m, "n"); cmd != nil || len(w.mails("amartin")) != 1 || !strings.Contains(screen(t, m), "cancelled") {
		t.Fatal("n did not cancel the resend")
	}
	cmd := press(m, "r", "y")
	if cmd == nil {
		t.Fatal("y ran nothing")
	}
	m.Update(cmd())
	if s := screen(t, m); !strings.Contains(s, "amartin: invited") || len(w.mails("amartin")) != 2 {
		t.Fatalf("after resend (%d mails):\n%s", len(w.mails("amartin")), s)
	}
	second := w.code("amartin")
	press(m, "enter", "x")
	if s := screen(t, m); !strings.Contains(s, "Revoke amartin (end its codes and session)? y/n") {
		t.Fatalf("no revoke confirmation:\n%s", s)
	}
	m.Update(press(m, "y")())
	if s := screen(t, m); !strings.Contains(s, "amartin: revoked") || !regexp.MustCompile(`State +revoked`).MatchString(s) {
		t.Errorf("after revoke:\n%s", s)
	}
	for _, c := range []struct {
		code string
		want error
	}{{first, flow.ErrCodeSuperseded}, {second, flow.ErrCodeRevoked}} {
		if _, err := w.svc.Open(context.Background(), c.code, flow.Client{Remote: "198.51.100.1"}); !errors.Is(err, c.want) {
			t.Errorf("open: %v, want %v", err, c.want)
		}
	}
	var actions []string
	w.svc.Events(0, "amartin", time.Time{}, func(e flow.Event) error {
		if e.Actor == "staff:Alice Admin SHA256:test" && e.Remote == who.Remote {
			actions = append(actions, e.Action)
		}
		return nil
	})
	if strings.Join(actions, ",") != "invite,resend,revoke" {
		t.Errorf("staff events audited: %v, want invite, resend, revoke", actions)
	}
}

func TestHostileNameIsHarmless(t *testing.T) {
	w := newWorld(t, evil)
	m := newModel(t, w, 100, 24)
	if s := screen(t, m); !strings.Contains(row(s, "evil"), "Jean Dupont") {
		t.Errorf("list:\n%s", s)
	}
	press(m, "enter")
	if s := screen(t, m); !strings.Contains(s, "evil · Jean Dupont") {
		t.Errorf("detail:\n%s", s)
	}
	press(m, "esc", "/", "jean")
	if s := screen(t, m); row(s, "evil") == "" {
		t.Errorf("search by the clean name:\n%s", s)
	}
}

// The layout holds from 40×12: every line fits, the key help stays.
func TestLayoutFits(t *testing.T) {
	w := newWorld(t, anne, bruno, evil)
	for _, size := range [][2]int{{40, 12}, {41, 13}, {64, 20}, {80, 24}, {200, 60}} {
		m := newModel(t, w, size[0], size[1])
		for _, keys := range [][]string{nil, {"r"}, {"enter"}, {"enter", "x"}, {"/", "a"}} {
			press(m, keys...)
			s := screen(t, m)
			lines := strings.Split(s, "\n")
			if len(lines) > size[1] {
				t.Errorf("%v after %v: %d lines:\n%s", size, keys, len(lines), s)
			}
			for _, l := range lines {
				if ansi.StringWidth(l) > size[0] {
					t.Errorf("%v after %v: line wider than %d: %q", size, keys, size[0], l)
				}
			}
			if !strings.Contains(s, "q quit") && !strings.Contains(s, "y yes") && !strings.Contains(s, "esc clear") {
				t.Errorf("%v after %v: no key help:\n%s", size, keys, s)
			}
			press(m, "n", "esc", "esc")
		}
	}
	m := newModel(t, w, 40, 12)
	if s := screen(t, m); row(s, "amartin") == "" || row(s, "evil") == "" || !strings.Contains(s, "◂") {
		t.Errorf("40×12 list:\n%s", s)
	}
}

// The dashboard runs as a real bubbletea program.
func TestProgram(t *testing.T) {
	w := newWorld(t, anne, bruno)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tm := teatest.NewTestModel(t, New(ctx, w.svc, who), teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "Bruno Durand") },
		teatest.WithDuration(10*time.Second))
	x, err := w.svc.Open(ctx, w.code("amartin"), flow.Client{Remote: "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "in-progress*") },
		teatest.WithDuration(10*time.Second))
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

func TestDetailScrolls(t *testing.T) {
	w := newWorld(t, anne)
	m := newModel(t, w, 40, 12)
	press(m, "enter")
	s := screen(t, m)
	if !strings.Contains(s, "amartin · Anne Martin  (1–") || !strings.Contains(s, "Login") {
		t.Fatalf("detail top:\n%s", s)
	}
	press(m, "down", "down")
	if s := screen(t, m); !strings.Contains(s, "(3–") || strings.Contains(s, "Login ") {
		t.Errorf("after two lines down:\n%s", s)
	}
	press(m, "G")
	if s := screen(t, m); !strings.Contains(s, "invitation") {
		t.Errorf("at the end, the mails show:\n%s", s)
	}
	press(m, "g", "up")
	if s := screen(t, m); !strings.Contains(s, "(1–") {
		t.Errorf("back at the top:\n%s", s)
	}
	press(m, "backspace")
	if s := screen(t, m); row(s, "amartin") == "" {
		t.Errorf("backspace goes back to the list:\n%s", s)
	}
}

// The search ignores accents and case, and looks through every state:
// starting one shows all the dossiers, and the search line says so.
func TestSearchFoldsAccentsAndCoversEveryState(t *testing.T) {
	helene := slapd.Account{Login: "hmoreau", GivenName: "Hélène", Surname: "Moreau", RecoveryMail: "helene@example.net", Affiliation: "staff"}
	w := newWorld(t, anne, helene)
	if err := w.svc.Revoke("amartin", who.Client()); err != nil {
		t.Fatal(err)
	}
	m := newModel(t, w, 100, 24)
	press(m, "tab") // the pending tab: only Hélène
	if s := screen(t, m); row(s, "amartin") != "" || row(s, "hmoreau") == "" {
		t.Fatalf("pending tab:\n%s", s)
	}
	press(m, "/", "helene")
	if s := screen(t, m); row(s, "hmoreau") == "" || !strings.Contains(s, "all states") {
		t.Errorf("/helene does not find Hélène, or does not say where it looks:\n%s", s)
	}
	press(m, "esc", "/", "MARTÍN") // esc clears the search

	if s := screen(t, m); row(s, "amartin") == "" || !strings.Contains(s, "revoked") {
		t.Errorf("a search from the pending tab does not find the revoked Anne Martin:\n%s", s)
	}
}

// p asks before mailing a password reset code; an account not active yet
// gets none, and the dashboard says why.
func TestResetAsksFirst(t *testing.T) {
	w := newWorld(t, anne)
	m := newModel(t, w, 100, 24)
	press(m, "p")
	if s := screen(t, m); !strings.Contains(s, "Mail a password reset code to amartin? y/n") {
		t.Fatalf("no confirmation:\n%s", s)
	}
	if cmd := press(m, "n"); cmd != nil || len(w.mails("amartin")) != 1 {
		t.Fatal("n did not cancel the reset")
	}
	cmd := press(m, "p", "y")
	if cmd == nil {
		t.Fatal("y ran nothing")
	}
	m.Update(cmd())
	if s := screen(t, m); !strings.Contains(s, "not active yet") || len(w.mails("amartin")) != 1 {
		t.Errorf("reset of a pending account (%d mails):\n%s", len(w.mails("amartin")), s)
	}
}

// A line too wide for the window is cut with "…", so that the helpdesk
// never reads "anne@exam" or "192.0" as a whole address.
func TestCutLinesEndWithEllipsis(t *testing.T) {
	w := newWorld(t, anne)
	m := newModel(t, w, 60, 40)
	press(m, "enter")
	lines := strings.Split(screen(t, m), "\n")
	cut := 0
	for i, full := range m.detailLines {
		if i+1 >= len(lines) || ansi.StringWidth(full) <= 60 {
			continue
		}
		cut++
		if got := lines[i+1]; !strings.HasSuffix(got, "…") || ansi.StringWidth(got) > 60 {
			t.Errorf("line cut without a mark: %q\n(whole: %q)", got, full)
		}
	}
	if cut == 0 {
		t.Fatalf("no line wider than 60 to check:\n%s", strings.Join(lines, "\n"))
	}
}
