package tui

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/flowtest"
	"activated/storage"
)

const testCharter = `# IT charter

*This is the institution's IT charter.*

## 1. Scope

These rules apply to every **computer resource** of the institution:
workstations, network, mail, ENT, Moodle and every other service.

## 2. Account and password

- Your account is **personal**: never lend it.
- Never give your password to anyone, not even IT staff.
- Report any suspicious use of your account at once.

## 3. Use

- Resources serve teaching, research and administration.
- Respect the law: copyright, privacy, personal data.
- Do not try to reach data or accounts that are not yours.

## 4. Sanctions

Breaking this charter may lead to the suspension of the account.
`

const goodPassword = "correct horse battery staple lamp"

type env struct {
	svc   *flow.Service
	db    *storage.DB
	dir   *flowtest.Directory
	clock *flowtest.Clock
}

func newEnv(t testing.TB, accounts ...flow.Account) *env {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if len(accounts) == 0 {
		accounts = []flow.Account{{
			DN: "uid=jdupont,ou=people,dc=example,dc=org", Login: "jdupont",
			GivenName: "Jean", Surname: "Dupont", DisplayName: "Jean Dupont",
			Mail: "jean.dupont@univ.example.org", RecoveryMails: []string{"jean@example.net"}, Affiliations: []string{"staff"},
		}}
	}
	dir := flowtest.NewDirectory(accounts...)
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	clock := flowtest.NewClock(time.Date(2025, 11, 26, 12, 0, 0, 0, loc))
	svc, err := flow.New(flow.Config{Location: loc, Charter: []byte(testCharter), DefaultLang: "en", Institution: "Example University"}, db, dir, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, db: db, dir: dir, clock: clock}
}

// code is the newest code mailed to login for kind.
func (e *env) code(t *testing.T, login string, kind flow.MailKind) string {
	t.Helper()
	ms, err := e.db.Due(e.clock.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	code := ""
	for _, m := range ms {
		if m.Login == login && m.Kind == kind {
			code = m.Code
		}
	}
	if code == "" {
		t.Fatalf("no %s mail for %s in the outbox", kind, login)
	}
	return code
}

func (e *env) dossier(t *testing.T, login string) flow.Dossier {
	t.Helper()
	var d flow.Dossier
	err := e.db.View(func(tx flow.Tx) error {
		var err error
		d, err = tx.Dossier(login)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// snapshot is what the screen showed after an update.
type snapshot struct {
	step     flow.Step
	busy     bool
	quitting bool
	note     string
	check    bool // the password checklist is all met
	raw      string
	text     string // raw without escape sequences
	cursor   *tea.Cursor
	vpHeight int // lines of the charter viewport
	w, h     int

	// For same_test.go: what the model holds, in both front ends' words.
	ops                                        int    // operations answered
	errText, final                             string // the error line, the sentence left at the end
	def                                        string // the pre-filled choice (see plainDefault)
	accepted, confirmed, redirect, keep, offer bool
}

// probe wraps the wizard and records a snapshot after every update, so a
// test waits on what the user sees, without sleeping.
type probe struct {
	m       *model
	ops     int
	mu      sync.Mutex
	snap    snapshot
	changed chan struct{}
}

func (p *probe) Init() tea.Cmd { cmd := p.m.Init(); p.record(); return cmd }

func (p *probe) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case beganMsg, openedMsg:
		p.ops++
	case doneMsg:
		if !msg.quiet {
			p.ops++
		}
	}
	_, cmd := p.m.Update(msg)
	p.record()
	return p, cmd
}

func (p *probe) View() tea.View { return p.m.View() }

func (p *probe) record() {
	v := p.m.View()
	s := snapshot{step: p.m.step, busy: p.m.busy, quitting: p.m.quitting, note: p.m.note,
		check: p.m.check.OK(), raw: v.Content, text: ansi.Strip(v.Content), cursor: v.Cursor, vpHeight: p.m.charter.Height(), w: p.m.width, h: p.m.height,
		ops: p.ops, final: p.m.final, accepted: p.m.accepted, confirmed: p.m.confirmed, redirect: p.m.redirect, keep: p.m.keepCopy, offer: p.m.view.KeepOffered}
	if p.m.err != nil {
		s.errText = p.m.errText(p.m.err)
	}
	switch p.m.step {
	case flow.StepDirectory:
		s.def = map[int]string{-1: "", 0: "yes", 1: "no"}[p.m.choice]
	case flow.StepMailbox:
		s.def = map[bool]string{true: "redirect", false: "no-redirect"}[p.m.redirect]
	}
	p.mu.Lock()
	p.snap = s
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *probe) get() snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap
}

type harness struct {
	t   *testing.T
	env *env
	p   *probe
	tm  *teatest.TestModel
}

func (e *env) start(t *testing.T, opts Options, w, h int) *harness {
	t.Helper()
	if opts.Client == (flow.Client{}) {
		opts.Client = flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: "en"}
	}
	if opts.PublicHost == "" {
		opts.PublicHost, opts.PublicPort = "activate.example.org", 22
	}
	m, cleanup := New(e.svc, opts)
	p := &probe{m: m.(*model), changed: make(chan struct{}, 1)}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		cleanup()
	})
	hs := &harness{t: t, env: e, p: p, tm: tm}
	hs.wait("window size", func(s snapshot) bool { return s.w == w && s.h == h })
	return hs
}

// wait returns the first snapshot meeting cond, or fails after 10 s.
func (h *harness) wait(what string, cond func(snapshot) bool) snapshot {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s := h.p.get()
		if cond(s) {
			return s
		}
		select {
		case <-h.p.changed:
		case <-deadline:
			h.t.Fatalf("timeout waiting for %s; screen:\n%s", what, s.text)
		}
	}
}

func (h *harness) waitStep(step flow.Step) snapshot {
	h.t.Helper()
	return h.wait("step "+step.String(), func(s snapshot) bool { return s.step == step && !s.busy })
}

func (h *harness) send(keys ...tea.Msg) {
	for _, k := range keys {
		h.tm.Send(k)
	}
}

var (
	enter = tea.KeyPressMsg{Code: tea.KeyEnter}
	space = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	esc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	tab   = tea.KeyPressMsg{Code: tea.KeyTab}
	down  = tea.KeyPressMsg{Code: tea.KeyDown}
	f2    = tea.KeyPressMsg{Code: tea.KeyF2}
	ctrlR = tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl}
	ctrlU = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
)

// flat joins words so a sentence can be found across wrapped lines.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

func shows(s snapshot, sentence string) bool { return strings.Contains(flat(s.text), flat(sentence)) }

func (h *harness) mustShow(s snapshot, sentence string) {
	h.t.Helper()
	if !shows(s, sentence) {
		h.t.Fatalf("screen does not show %q:\n%s", sentence, s.text)
	}
}

// checkFits fails when the frame is taller or wider than the window.
func checkFits(t *testing.T, s snapshot) {
	t.Helper()
	lines := strings.Split(s.raw, "\n")
	if len(lines) > s.h {
		t.Errorf("step %s at %dx%d: %d lines", s.step, s.w, s.h, len(lines))
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > s.w {
			t.Errorf("step %s at %dx%d: line %d cells wide: %q", s.step, s.w, s.h, w, ansi.Strip(l))
		}
	}
}

// walk drives a whole activation of jdupont, calling visit on each screen
// as it first appears.
func (h *harness) walk(visit func(snapshot)) {
	t := h.t
	t.Helper()
	visit(h.waitStep(flow.StepLogin))
	h.tm.Type("jdupont")
	h.send(enter)
	visit(h.waitStep(flow.StepRecoveryCode))
	h.tm.Type(h.env.code(t, "jdupont", flow.MailRecovery))
	h.send(enter)
	visit(h.waitStep(flow.StepCharter))
	h.send(space, enter)
	visit(h.waitStep(flow.StepDirectory))
	h.send(space, down, down, space, enter) // appear; confirm
	visit(h.waitStep(flow.StepMailbox))
	h.send(space, down, ctrlU) // redirect; clear the pre-filled address
	h.tm.Type("jean@other.example.org")
	h.send(enter)
	visit(h.waitStep(flow.StepVerifyRedirect))
	h.send(ctrlR)
	h.wait("code resent", func(s snapshot) bool { return s.note == "verify.resent" && !s.busy })
	h.tm.Type(h.env.code(t, "jdupont", flow.MailRedirect))
	h.send(enter)
	visit(h.waitStep(flow.StepPassword))
	h.tm.Type(goodPassword)
	h.wait("password accepted by the checklist", func(s snapshot) bool { return s.check })
	h.send(tab)
	h.tm.Type(goodPassword)
	h.send(enter)
	visit(h.waitStep(flow.StepDone))
}

func TestFullWalk(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{Services: []string{"ENT", "Mail", "Moodle"}}, 80, 24)
	h.walk(func(s snapshot) {
		checkFits(t, s)
		h.mustShow(s, i18n.StepIndicator("en", s.step)+" — "+i18n.StepTitle("en", s.step))
		switch s.step {
		case flow.StepRecoveryCode:
			h.mustShow(s, i18n.T("en", "code.sent"))
			h.mustShow(s, i18n.T("en", "code.later", "ssh CODE@activate.example.org"))
		case flow.StepMailbox:
			h.mustShow(s, i18n.T("en", "mailbox.staff"))
		case flow.StepVerifyRedirect:
			h.mustShow(s, i18n.T("en", "verify.sent", "jean@other.example.org"))
		}
		if (s.step == flow.StepLogin || s.step == flow.StepRecoveryCode || s.step == flow.StepVerifyRedirect || s.step == flow.StepPassword) && s.cursor == nil {
			t.Errorf("step %s: no cursor in the focused field", s.step)
		}
	})
	h.send(enter)
	fm := h.tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*probe).m
	if fm.step != flow.StepDone || !fm.quitting {
		t.Fatalf("final model at step %s, quitting %t", fm.step, fm.quitting)
	}
	d := e.dossier(t, "jdupont")
	if d.Activated.IsZero() || !d.PublicDirectory || d.Redirect != "jean@other.example.org" || !d.KeepCopy || !d.RedirectVerified {
		t.Fatalf("dossier: %+v", d)
	}
	act := e.dir.Activation("jdupont")
	if !act.Public || act.Redirect != "jean@other.example.org" || !act.KeepCopy || act.CharterVersion != e.svc.CharterVersion() {
		t.Fatalf("activation: %+v", act)
	}
	if e.dir.Password("jdupont") == "" {
		t.Fatal("password not set")
	}
	out, err := io.ReadAll(h.tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	text := ansi.Strip(string(out))
	for _, want := range []string{"Your account is active.", "Login: jdupont", "- Moodle"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(string(out), goodPassword) {
		t.Error("the password reached the terminal")
	}
}

func TestResumeWithCode(t *testing.T) {
	e := newEnv(t)
	if out, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{Actor: "staff:test"}); err != nil || out != flow.Invited {
		t.Fatal(out, err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	x, err := e.svc.Open(context.Background(), code, flow.Client{Remote: "192.0.2.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.AcceptCharter(true); err != nil {
		t.Fatal(err)
	}
	if err := x.ChooseDirectory(false); err != nil {
		t.Fatal(err)
	}
	x.Close()

	h := e.start(t, Options{Code: strings.ToLower(code)}, 80, 24)
	s := h.waitStep(flow.StepMailbox)
	h.mustShow(s, "Step 5 of 7 — University mailbox")
	// Esc goes back to the directory screen, pre-filled from the dossier.
	h.send(esc)
	s = h.waitStep(flow.StepDirectory)
	h.mustShow(s, "(*) "+i18n.T("en", "directory.no"))
	h.mustShow(s, "[x] "+i18n.T("en", "directory.confirm"))
}

func TestSmallWindow(t *testing.T) {
	for _, lang := range []string{"en", "fr"} {
		t.Run(lang, func(t *testing.T) {
			e := newEnv(t)
			client := flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: lang}
			h := e.start(t, Options{Client: client, Services: []string{"ENT", "Mail"}}, 40, 12)
			seen := map[flow.Step]bool{}
			h.walk(func(s snapshot) {
				seen[s.step] = true
				checkFits(t, s)
				for _, item := range helpFor(e, lang, s.step) {
					if !strings.Contains(s.text, item) {
						t.Errorf("step %s at 40x12: help %q missing:\n%s", s.step, item, s.text)
					}
				}
				if s.step != flow.StepDone && s.cursor == nil || s.cursor != nil && (s.cursor.Y < 0 || s.cursor.Y >= 12 || s.cursor.X >= 40) {
					t.Errorf("step %s at 40x12: cursor %v", s.step, s.cursor)
				}
				t.Logf("step %s at 40x12:\n%s", s.step, s.text)
			})
			if len(seen) != 8 {
				t.Fatalf("saw steps %v", seen)
			}

			h.send(tea.WindowSizeMsg{Width: 39, Height: 11})
			s := h.wait("window.small", func(s snapshot) bool { return s.w == 39 })
			checkFits(t, s)
			if flat(s.text) != flat(i18n.T(lang, "window.small")) {
				t.Fatalf("39x11 shows:\n%s", s.text)
			}
		})
	}
}

// helpFor is the key help a step must show.
func helpFor(e *env, lang string, step flow.Step) []string {
	m := &model{svc: e.svc, lang: lang, step: step}
	return m.help()
}

func TestResize(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{}, 80, 24)
	h.waitStep(flow.StepLogin)
	h.tm.Type("jdupont")
	h.send(enter)
	h.waitStep(flow.StepRecoveryCode)
	h.tm.Type(h.env.code(t, "jdupont", flow.MailRecovery))
	h.send(enter)
	s := h.waitStep(flow.StepCharter)
	checkFits(t, s)
	small := s.vpHeight
	for _, size := range [][2]int{{40, 12}, {120, 40}, {39, 11}, {55, 17}} {
		h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		s = h.wait("resize", func(s snapshot) bool { return s.w == size[0] && s.h == size[1] })
		checkFits(t, s)
		if lines := strings.Split(s.raw, "\n"); size[0] >= minWidth && len(lines) != size[1] {
			t.Errorf("charter at %dx%d fills %d lines", size[0], size[1], len(lines))
		}
	}
	if big := s.vpHeight; big >= small {
		t.Errorf("charter viewport %d lines at 55x17, %d at 80x24", big, small)
	}
	// The wizard goes on after the resizes.
	h.send(space, enter)
	checkFits(t, h.waitStep(flow.StepDirectory))
}

func TestLanguageSwitch(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{}, 80, 24)
	s := h.waitStep(flow.StepLogin)
	h.mustShow(s, "Step 1 of 7 — Login")
	h.send(f2)
	s = h.wait("French", func(s snapshot) bool { return shows(s, "Étape 1 sur 7 — Identifiant") })
	h.mustShow(s, i18n.T("fr", "help.lang"))
	h.tm.Type("jdupont")
	h.send(enter)
	h.waitStep(flow.StepRecoveryCode)
	h.tm.Type(h.env.code(t, "jdupont", flow.MailRecovery))
	h.send(enter)
	s = h.waitStep(flow.StepCharter)
	h.mustShow(s, "Étape 3 sur 7 — Charte informatique")
	if d := e.dossier(t, "jdupont"); d.Lang != "fr" {
		t.Fatalf("dossier language %q, want fr", d.Lang)
	}
	h.send(f2)
	h.wait("English", func(s snapshot) bool { return shows(s, "Step 3 of 7 — IT charter") })
	h.wait("language saved", func(snapshot) bool { return e.dossier(t, "jdupont").Lang == "en" })
}

func TestWrongCode(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{Code: "AAAA-BBBB-CCCC-DDDD"}, 80, 24)
	s := h.waitStep(flow.StepRecoveryCode)
	h.mustShow(s, i18n.Error("en", flow.ErrCodeWrong, "ssh activate@activate.example.org"))
	h.mustShow(s, i18n.T("en", "help.newcode"))
	h.send(esc)
	s = h.waitStep(flow.StepLogin)
	h.mustShow(s, i18n.T("en", "login.intro"))
}

// A code from the SSH username that does not open (mistyped, used, busy)
// leaves the code field on screen: what the user types next goes into it,
// not into the hidden login field, and Enter tries the typed code.
func TestWrongCodeThenTypeTheRightOne(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	h := e.start(t, Options{Code: "AAAA-BBBB-CCCC-DDDD"}, 80, 24)
	h.waitStep(flow.StepRecoveryCode)
	h.send(ctrlU)
	h.tm.Type(code)
	h.send(enter)
	h.waitStep(flow.StepCharter)
}

func TestBusyThenRetry(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	x, err := e.svc.Open(context.Background(), code, flow.Client{})
	if err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: code}, 80, 24)
	s := h.waitStep(flow.StepRecoveryCode)
	h.mustShow(s, i18n.T("en", "err.busy"))
	x.Close()
	h.send(enter)
	h.waitStep(flow.StepCharter)
}

func TestRevokedSessionEnds(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailInvitation)}, 80, 24)
	h.waitStep(flow.StepCharter)
	if err := e.svc.Revoke("jdupont", flow.Client{Actor: "staff:test"}); err != nil {
		t.Fatal(err)
	}
	fm := h.tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*probe).m
	if !fm.quitting || fm.final != i18n.T("en", "err.closed") {
		t.Fatalf("final: quitting %t, %q", fm.quitting, fm.final)
	}
}

func TestPasswordMismatch(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailInvitation)}, 80, 24)
	h.waitStep(flow.StepCharter)
	h.send(space, enter)
	h.waitStep(flow.StepDirectory)
	h.send(down, space, down, space, enter) // do not appear; confirm
	h.waitStep(flow.StepMailbox)
	h.send(enter) // no redirect
	s := h.waitStep(flow.StepPassword)
	h.mustShow(s, "[ ] "+i18n.RuleText("en", flow.RuleMinLength, flow.DefaultPasswordPolicy))
	h.tm.Type(goodPassword)
	h.send(enter) // to the confirm field
	h.tm.Type(goodPassword + "x")
	h.send(enter)
	s = h.wait("mismatch", func(s snapshot) bool { return shows(s, i18n.T("en", "pw.mismatch")) })
	if strings.Contains(s.raw, goodPassword) {
		t.Fatal("password shown in clear")
	}
	if e.dir.Password("jdupont") != "" || !e.dossier(t, "jdupont").Activated.IsZero() {
		t.Fatal("a mismatched password went through")
	}
	// A weak password is refused by the policy.
	h.send(tab, ctrlU)
	h.tm.Type("short")
	h.send(tab, ctrlU)
	h.tm.Type("short")
	h.send(enter)
	h.wait("policy", func(s snapshot) bool { return shows(s, i18n.T("en", "err.password.policy")) })
	if e.dir.Password("jdupont") != "" {
		t.Fatal("a weak password went through")
	}
}

func TestFinishRetry(t *testing.T) {
	e := newEnv(t)
	e.dir.FailActivate(1, nil)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailInvitation)}, 80, 24)
	h.finishInvited()
	s := h.wait("retry screen", func(s snapshot) bool { return !s.busy && shows(s, i18n.T("en", "pw.retry")) })
	h.mustShow(s, i18n.T("en", "err.unavailable"))
	h.send(enter)
	h.waitStep(flow.StepDone)
	if e.dossier(t, "jdupont").Activated.IsZero() {
		t.Fatal("not activated")
	}
}

func TestUntrustedNameSanitized(t *testing.T) {
	e := newEnv(t, flow.Account{
		DN: "uid=eve,ou=people,dc=example,dc=org", Login: "eve",
		DisplayName:   "Eve\x1b]0;pwned\x07 \u202eevil\u202c",
		RecoveryMails: []string{"eve@example.net\u202e"},
	})
	if _, err := e.svc.Invite(context.Background(), "eve", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "eve", flow.MailInvitation)}, 80, 24)
	h.waitStep(flow.StepCharter)
	h.send(space, enter)
	h.waitStep(flow.StepDirectory)
	h.send(space, tab, tab, space, enter)
	s := h.waitStep(flow.StepMailbox)
	h.send(space) // redirect, pre-filled with the recovery address
	s = h.wait("address", func(s snapshot) bool { return strings.Contains(s.text, "eve@example.net") })
	if strings.Contains(s.raw, "\u202e") {
		t.Fatal("bidi override in the address field")
	}
	h.send(space) // no redirect after all
	h.send(enter)
	h.waitStep(flow.StepPassword)
	h.tm.Type(goodPassword)
	h.wait("checklist", func(s snapshot) bool { return s.check })
	h.send(tab)
	h.tm.Type(goodPassword)
	h.send(enter)
	s = h.waitStep(flow.StepDone)
	h.mustShow(s, "Name: Eve evil")
	for _, bad := range []string{"pwned", "\u202e", "\x07"} {
		if strings.Contains(s.raw, bad) {
			t.Errorf("screen holds %q", bad)
		}
	}
	h.send(enter)
	out, err := io.ReadAll(h.tm.FinalOutput(t, teatest.WithFinalTimeout(10*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"pwned", "\u202e"} { // BEL ends the renderer's own OSC sequences
		if strings.Contains(string(out), bad) {
			t.Errorf("terminal output holds %q", bad)
		}
	}
}

// An Open still running when the SSH session ends must not leave the
// dossier held.
func TestCleanupBeforeOpenEnds(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	m, cleanup := New(e.svc, Options{Code: e.code(t, "jdupont", flow.MailInvitation), Client: flow.Client{Lang: "en"}})
	cmd := m.Init()
	cleanup()
	if msg, ok := cmd().(openedMsg); !ok || !errors.Is(msg.err, flow.ErrClosed) {
		t.Fatalf("open after cleanup: %#v", msg)
	}
	if e.svc.Busy("jdupont") {
		t.Fatal("the dossier is still held")
	}
}

func TestQuitClosesSession(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	m, cleanup := New(e.svc, Options{Code: e.code(t, "jdupont", flow.MailInvitation), Client: flow.Client{Lang: "en"}})
	p := &probe{m: m.(*model), changed: make(chan struct{}, 1)}
	t.Cleanup(cleanup)
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(80, 24))
	h := &harness{t: t, env: e, p: p, tm: tm}
	h.waitStep(flow.StepCharter)
	if !e.svc.Busy("jdupont") {
		t.Fatal("no session while the wizard runs")
	}
	h.send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*probe).m
	if fm.final != i18n.Ended("en", true, "", "", 0) {
		t.Fatalf("final text %q", fm.final)
	}
	cleanup()
	if e.svc.Busy("jdupont") {
		t.Fatal("the session outlived the wizard")
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in   string
		w    int
		want []string
	}{
		{"one two three", 7, []string{"one two", "three"}},
		{"a verylongword b", 5, []string{"a", "veryl", "ongwo", "rd b"}},
		{"revenir plus tard avec : " + keep("ssh -p 2222 CODE@h.example.org"), 30, []string{"revenir plus tard avec :", "ssh -p 2222 CODE@h.example.org"}},
		{"line\n\nnext", 10, []string{"line", "", "next"}},
		{"", 10, []string{""}},
	} {
		if got := wrap(c.in, c.w); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", c.in, c.w, got, c.want)
		}
	}
}

func TestCharterSanitized(t *testing.T) {
	out := renderCharter([]byte("# Title\n\nSome \x1b]0;x\x07text\twith a tab."), 40)
	if strings.Contains(out, "\x07") || !strings.Contains(ansi.Strip(out), "Some text") {
		t.Fatalf("charter: %q", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if ansi.StringWidth(l) > 40 {
			t.Fatalf("line too wide: %q", l)
		}
	}
}

// The sentence left when the user quits gives the command to come back
// whole on one line, as the screens do: cut in two, it is copied wrong.
func TestQuitKeepsCommandWhole(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{Client: flow.Client{Lang: "fr"}, PublicHost: "127.0.0.1", PublicPort: 2322}, 80, 24)
	h.waitStep(flow.StepLogin)
	h.send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	s := h.wait("the final sentence", func(s snapshot) bool { return s.quitting })
	cmd := i18n.Command("activate", "127.0.0.1", 2322)
	if !strings.Contains(s.text, cmd) {
		t.Errorf("the command %q is not whole on a line:\n%s", cmd, s.text)
	}
	checkFits(t, s)
}

// A list item written over several lines of the file flows as one
// paragraph at the window's width (glamour keeps its soft breaks as line
// breaks: at 44 columns the demo charter's items came out ragged).
func TestCharterListItemsFlow(t *testing.T) {
	md := "- Never give your password to anyone,\n  not even IT staff.\n\n1. **Use.** Resources are for\n   teaching and research.\n\n```\nkeep\nthese\n```\n"
	var ls []string
	for _, l := range strings.Split(ansi.Strip(renderCharter([]byte(md), 60)), "\n") {
		ls = append(ls, strings.TrimSpace(l))
	}
	out := strings.Join(ls, "\n")
	for _, want := range []string{"anyone, not even IT staff.", "Resources are for teaching and research.", "keep\nthese"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the charter:\n%s", want, out)
		}
	}
}

// No line of the charter is wider than the window: glamour's list wrap
// lets a closing "." or "," go one cell past the width, and the window
// then showed it alone on the next line ("…pas les vôtres" / ".").
func TestCharterListFitsWidth(t *testing.T) {
	md := []byte("- Votre compte est **personnel** : ne le prêtez jamais.\n" +
		"- N'essayez pas d'accéder à des données ou comptes qui ne sont pas les vôtres.\n" +
		"- Respectez la loi : droit d'auteur, vie privée, données personnelles (RGPD).\n\n" +
		"1. **Use.** Resources are for teaching, research and administration. Obey\n" +
		"   the law: copyright, privacy, personal data (GDPR). Do not try to reach data\n" +
		"   or accounts that are not yours.\n")
	for w := 30; w <= 100; w++ {
		for _, l := range strings.Split(renderCharter(md, w), "\n") {
			if ansi.StringWidth(l) > w {
				t.Errorf("at %d columns, a line of %d: %q", w, ansi.StringWidth(l), ansi.Strip(l))
			}
		}
	}
}
