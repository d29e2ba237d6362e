package main

// End-to-end tests of the activation wizard through the real server (see
// harness_test.go): whole walks in the TUI and in plain mode, a reconnect
// at every step, a server restart mid-walk, wrong, expired, spent and
// superseded codes, no account enumeration, no goroutine left behind by
// abrupt disconnects, and resizing.

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/slapd"
)

// wizardKeyEsc is the Escape key as a terminal sends it.
const wizardKeyEsc = "\x1b"

// wizardNewCode is the command every code error gives to get a new code.
const wizardNewCode = "ssh -p 2222 activate@activate.example.org"

// wizardUser is an account and the answers its owner gives.
type wizardUser struct {
	login, recovery string
	redirect        string // "" = no redirect
	public          bool   // appear in the public directory
}

var (
	wizardJeanne = wizardUser{login: "jdupont", recovery: "jeanne@perso.example.net", redirect: "jeanne.dupont@ailleurs.example.com", public: true}
	wizardAlex   = wizardUser{login: "amartin", recovery: "alex@perso.example.net"}
)

// wizardScreen is what tells the screen of step s in English.
func wizardScreen(s flow.Step) string {
	if s == flow.StepDone {
		return "Your account is active."
	}
	return fmt.Sprintf("Step %d of %d", s, flow.TotalSteps)
}

// wizardWalk drives a TUI session in English from the screen of step from
// until the screen of step to shows, answering as u would; every screen on
// the way must also show each of also. It returns the recovery code when
// it went through step 2 (the first mail to u.recovery).
func wizardWalk(h *harness, tm *term, u wizardUser, from, to flow.Step, also ...string) string {
	h.t.Helper()
	var code string
	for s := from; s < to; {
		tm.waitFor(append([]string{wizardScreen(s)}, also...)...)
		next := s + 1
		switch s {
		case flow.StepLogin:
			tm.send(u.login, keyEnter)
		case flow.StepRecoveryCode:
			code = h.code(u.recovery, 0)
			tm.send(code, keyEnter)
		case flow.StepCharter:
			tm.send(" ", keyEnter)
		case flow.StepDirectory:
			if u.public {
				tm.send(" ", keyDown, keyDown, " ", keyEnter)
			} else {
				tm.send(keyDown, " ", keyDown, " ", keyEnter)
			}
		case flow.StepMailbox:
			if u.redirect == "" {
				tm.send(keyEnter)
				next = flow.StepPassword
			} else {
				tm.send(" ", keyTab, keyCtrlU, u.redirect, keyEnter)
			}
		case flow.StepVerifyRedirect:
			tm.waitFor(u.redirect)
			tm.send(h.code(u.redirect, 0), keyEnter)
		case flow.StepPassword:
			tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
		}
		s = next
	}
	return code
}

// wizardCheckActive checks that u can bind with the new password and that
// the entry holds u's choices.
func wizardCheckActive(h *harness, u wizardUser) {
	h.t.Helper()
	if err := h.bindAs(u.login, e2ePassword); err != nil {
		h.t.Fatalf("%s: bind with the new password: %v", u.login, err)
	}
	e := h.entry(u.login)
	var fwd []string
	if u.redirect != "" {
		fwd = []string{u.redirect, u.login + "@" + slapd.MailDomain}
	}
	if got := e.GetAttributeValues("mailForwardingAddress"); !slices.Equal(got, fwd) {
		h.t.Errorf("%s: mailForwardingAddress %q, want %q", u.login, got, fwd)
	}
	hidden := "TRUE"
	if u.public {
		hidden = "FALSE"
	}
	if got := e.GetAttributeValue("supannListeRouge"); got != hidden {
		h.t.Errorf("%s: supannListeRouge %q, want %q", u.login, got, hidden)
	}
	if got := e.GetAttributeValue("supannRessourceEtat"); got != slapd.StateActive {
		h.t.Errorf("%s: supannRessourceEtat %q, want %q", u.login, got, slapd.StateActive)
	}
	consent := "{CHARTE}" + flow.CharterVersion(demoCharter)
	if got := e.GetAttributeValues("supannConsentement"); !slices.Contains(got, consent) {
		h.t.Errorf("%s: supannConsentement %q, want %q among them", u.login, got, consent)
	}
}

// wizardWaitReleased waits until no session holds login's dossier: a
// dropped connection must free it for the reconnect.
func wizardWaitReleased(h *harness, login string) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for h.app.svc.Busy(login) {
		if time.Now().After(deadline) {
			h.t.Fatalf("the dossier of %s is still held after its connection dropped", login)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wizardSub is h for subtest t: failures and cleanups go to t.
func wizardSub(h *harness, t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// wizardControls lists the bytes of out that drive a terminal: anything
// below space but the line ends allowed (eol), DEL and C1 controls.
func wizardControls(out, eol string) []string {
	rest := strings.ReplaceAll(out, eol, "")
	var bad []string
	for i, r := range rest {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			bad = append(bad, fmt.Sprintf("%q at %d", r, i))
		}
	}
	return bad
}

func wizardWaitDone(p *plainSession) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		p.t.Fatalf("the plain session did not end; output ends:\n%s", tail(p.out.String(), 1500))
	}
}

// The staff member walks every step in plain mode (no PTY), in French,
// with a redirect to verify: only lines of text, each prompt one line
// ending in "> ", the charter printed whole before its question.
func TestE2EWizardPlainStaffRedirectFrench(t *testing.T) {
	h := newHarness(t)
	u := wizardJeanne
	p := h.openPlain("activate+plain", "fr_FR.UTF-8")
	answers := 0
	ask := func(prompt, answer string) {
		t.Helper()
		p.waitPrompt(prompt)
		p.answer(answer)
		answers++
	}
	ask("Identifiant", u.login)
	ask("Code reçu par mail", h.code(u.recovery, 0))
	ask("J'ai lu et j'accepte la charte informatique (o/n)", "o")
	ask("Souhaitez-vous apparaître dans l'annuaire public", "oui")
	ask("Rediriger mes mails vers une adresse externe (o/n)", "o")
	ask("Adresse de redirection ["+u.recovery+"]", u.redirect)
	ask("Conserver une copie dans ma boîte universitaire", "") // the default: yes
	ask("Code reçu à l'adresse de redirection", h.code(u.redirect, 0))
	ask("Nouveau mot de passe", e2ePassword)
	ask("Confirmez le mot de passe", e2ePassword)
	wizardWaitDone(p)
	out := p.out.String()

	for s := flow.StepLogin; s <= flow.StepPassword; s++ {
		if want := fmt.Sprintf("Étape %d sur 7", s); !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	for _, want := range []string{"En tant que personnel, une boîte mail universitaire sera créée", "Votre compte est activé.", "Identifiant : jdupont"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if strings.Contains(out, "Step ") {
		t.Errorf("English in a French session:\n%s", out)
	}
	// The charter as text: its first and last lines, before the question.
	lines := strings.Split(strings.TrimSpace(string(demoCharter)), "\n")
	first, last := strings.TrimLeft(lines[0], "# "), strings.Trim(lines[len(lines)-1], "*_ ")
	if i, j := strings.Index(out, "\n"+first+"\n"), strings.Index(out, "J'ai lu et j'accepte"); i < 0 || j < i || !strings.Contains(out[i:j], last) {
		t.Errorf("the charter is not printed whole before its question (at %d, question at %d)", i, j)
	}
	if bad := wizardControls(out, "\n"); len(bad) > 0 {
		t.Errorf("control bytes in plain output: %v", bad)
	}
	var prompts []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasSuffix(l, "> ") {
			prompts = append(prompts, l)
		}
	}
	if len(prompts) != answers {
		t.Errorf("%d prompt lines for %d answers (a prompt asked twice, or one without \"> \"):\n%s", len(prompts), answers, strings.Join(prompts, "\n"))
	}
	if m := h.waitMail(u.recovery, 0); !strings.HasPrefix(m.Subject, "Votre code") {
		t.Errorf("the recovery mail is not in French: %q", m.Subject)
	}
	wizardCheckActive(h, u)
	if notice := h.waitMail(u.recovery, 1); !strings.Contains(notice.Subject, "est activé") {
		t.Errorf("activation notice subject %q", notice.Subject)
	}
}

// The student walks the TUI in the smallest window it supports, without a
// redirect and hidden from the directory: step 6 is skipped, the key help
// shows on every screen, the entry gets no forward.
func TestE2EWizardTUIStudentNoRedirectSmall(t *testing.T) {
	h := newHarness(t)
	u := wizardAlex
	tm := h.openTerm("activate", 40, 12, "en_US.UTF-8")
	wizardWalk(h, tm, u, flow.StepLogin, flow.StepMailbox, "Ctrl+C: quit")
	screen := tm.waitFor(wizardScreen(flow.StepMailbox), "[ ] Redirect my mail", "Ctrl+C: quit")
	if strings.Contains(screen, "staff member") {
		t.Errorf("a student is told about the staff mailbox:\n%s", screen)
	}
	tm.send(keyEnter)
	tm.waitFor(wizardScreen(flow.StepPassword), "Ctrl+C: quit")
	wizardWalk(h, tm, u, flow.StepPassword, flow.StepDone)
	tm.waitFor(wizardScreen(flow.StepDone), "Login: amartin")
	wizardCheckActive(h, u)
	h.waitMail(u.recovery, 1) // the activation notice
	for _, m := range h.smtp.Messages() {
		if len(m.To) != 1 || m.To[0] != u.recovery {
			t.Errorf("a mail went to %v: no redirect was chosen", m.To)
		}
	}
}

// wizardOpenDumb opens a plain-mode session the way a dumb terminal does:
// a PTY of type "dumb", so the server echoes what is typed.
func wizardOpenDumb(h *harness, user, lang string) *plainSession {
	h.t.Helper()
	c, err := h.dial(user)
	must(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	must(h.t, err)
	must(h.t, s.Setenv("LANG", lang))
	must(h.t, s.RequestPty("dumb", 24, 80, gossh.TerminalModes{gossh.ECHO: 0}))
	p := &plainSession{t: h.t, client: c, out: &flowtest.Buffer{}, done: make(chan error, 1)}
	s.Stdout, s.Stderr = p.out, p.out
	p.stdin, err = s.StdinPipe()
	must(h.t, err)
	must(h.t, s.Shell())
	go func() { p.done <- s.Wait() }()
	return p
}

// With TERM=dumb and a PTY the prompts echo what is typed, except the
// password, and no warning about a visible password is given.
func TestE2EWizardPlainDumbPTY(t *testing.T) {
	h := newHarness(t)
	u := wizardAlex
	p := wizardOpenDumb(h, "activate", "en_US.UTF-8")
	ask := func(prompt, answer string) {
		t.Helper()
		p.waitPrompt(prompt)
		if _, err := io.WriteString(p.stdin, answer+"\r"); err != nil { // Enter sends CR
			t.Fatal(err)
		}
	}
	ask("Login", u.login)
	ask("Code from the mail", h.code(u.recovery, 0))
	ask("I have read and accept the IT charter (y/n)", "y")
	ask("Do you want to appear in the institution's public directory", "n")
	ask("Redirect my mail to an external address", "n")
	ask("New password", e2ePassword)
	ask("Confirm the password", e2ePassword)
	wizardWaitDone(p)
	out := p.out.String()
	for _, want := range []string{"Login> amartin\r\n", "New password> \r\n", "Confirm the password> \r\n", "Your account is active."} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
	if strings.Contains(out, e2ePassword) {
		t.Errorf("the password was echoed:\n%s", out)
	}
	if strings.Contains(out, "cannot be hidden") {
		t.Errorf("a PTY session is told its password shows:\n%s", out)
	}
	if bad := wizardControls(out, "\r\n"); len(bad) > 0 {
		t.Errorf("control bytes in dumb-terminal output: %v", bad)
	}
	wizardCheckActive(h, u)
}

// wizardStepUsers are staff members, one per step to disconnect at, all
// with a redirect; every other one appears in the directory.
func wizardStepUsers() (map[flow.Step]wizardUser, []slapd.Account) {
	users := map[flow.Step]wizardUser{}
	var accounts []slapd.Account
	for s := flow.StepCharter; s <= flow.StepPassword; s++ {
		login := fmt.Sprintf("cstep%d", s)
		u := wizardUser{login: login, recovery: login + "@perso.example.net", redirect: login + ".fwd@ailleurs.example.com", public: s%2 == 1}
		users[s] = u
		accounts = append(accounts, slapd.Account{Login: login, GivenName: "Camille", Surname: fmt.Sprintf("Test%d", s), RecoveryMail: u.recovery, Affiliation: "staff"})
	}
	return users, accounts
}

// A connection dropped at any step, then `ssh CODE@host` with the recovery
// code: the same step shows, earlier answers kept, and the walk finishes
// with every choice, those made before the drop included, in the entry.
func TestE2EWizardReconnectAtEveryStep(t *testing.T) {
	users, accounts := wizardStepUsers()
	h := newHarness(t, accounts...)
	for s := flow.StepCharter; s <= flow.StepPassword; s++ {
		t.Run(fmt.Sprintf("step%d", s), func(t *testing.T) {
			h := wizardSub(h, t)
			u := users[s]
			tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
			code := wizardWalk(h, tm, u, flow.StepLogin, s)
			tm.waitFor(wizardScreen(s))
			tm.close()
			wizardWaitReleased(h, u.login)

			user := code
			if s == flow.StepCharter { // as typed by hand: lower case, no dashes
				user = strings.ToLower(strings.ReplaceAll(code, "-", ""))
			}
			tm = h.openTerm(user, 80, 24, "en_US.UTF-8")
			tm.waitFor(wizardScreen(s))
			wantDir := "(*) No, do not appear"
			if u.public {
				wantDir = "(*) Yes, appear"
			}
			switch s {
			case flow.StepCharter:
				tm.waitFor("[ ] I have read and accept")
			case flow.StepDirectory: // the charter stays accepted
				tm.send(wizardKeyEsc)
				tm.waitFor(wizardScreen(flow.StepCharter), "[x] I have read and accept")
				tm.send(keyEnter)
			case flow.StepMailbox: // the directory choice is pre-selected
				tm.send(wizardKeyEsc)
				tm.waitFor(wizardScreen(flow.StepDirectory), wantDir, "[x] I confirm this choice")
				tm.send(keyEnter)
			case flow.StepVerifyRedirect:
				tm.waitFor("A code was sent to " + u.redirect)
			case flow.StepPassword: // the verified redirect and the copy are kept
				tm.send(wizardKeyEsc)
				tm.waitFor(wizardScreen(flow.StepMailbox), "[x] Redirect my mail", u.redirect, "[x] Keep a copy")
				tm.send(keyEnter)
			}
			wizardWalk(h, tm, u, s, flow.StepDone)
			tm.waitFor(wizardScreen(flow.StepDone))
			wizardCheckActive(h, u)
		})
	}
}

// The server restarts while the user is at step 5: the session is cut,
// the stop is clean, and the code resumes step 5 on the new server with
// the directory choice kept; the walk then finishes.
func TestE2EWizardServerRestartMidWalk(t *testing.T) {
	h := newHarnessWith(t, options{shutdownGrace: 200 * time.Millisecond}) // the session would be cut after 10 s all the same
	u := wizardJeanne
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	code := wizardWalk(h, tm, u, flow.StepLogin, flow.StepMailbox)
	tm.waitFor(wizardScreen(flow.StepMailbox))
	h.restart() // fails the test if the stop reports an error
	tm.waitEnd()

	tm = h.openTerm(code, 80, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepMailbox), "As a staff member")
	tm.send(wizardKeyEsc)
	tm.waitFor(wizardScreen(flow.StepDirectory), "(*) Yes, appear", "[x] I confirm this choice")
	tm.send(keyEnter)
	wizardWalk(h, tm, u, flow.StepMailbox, flow.StepDone)
	tm.waitFor(wizardScreen(flow.StepDone))
	wizardCheckActive(h, u)
}

// wizardBadCode connects with code as the SSH username, in the TUI and in
// plain mode, and checks both say want and how to get a new code.
func wizardBadCode(h *harness, code, want string) {
	h.t.Helper()
	tm := h.openTerm(code, 200, 24, "en_US.UTF-8")
	screen := tm.waitFor(want, wizardNewCode)
	if !strings.Contains(screen, wizardScreen(flow.StepRecoveryCode)) {
		h.t.Errorf("the TUI left step 2 with a bad code:\n%s", screen)
	}
	tm.close()
	p := h.openPlain(code+"+plain", "en_US.UTF-8")
	out := p.waitPrompt("Code from the mail") // told, then asked again, as in the TUI
	// plain mode's commands keep plain mode
	newCode := strings.Replace(wizardNewCode, "activate@", "activate+plain@", 1)
	if !strings.Contains(out, want) || !strings.Contains(out, newCode) {
		h.t.Errorf("plain mode does not say %q and %q:\n%s", want, newCode, out)
	}
}

// A well-formed code nobody issued, a redirect code used twice, and a code
// a newer one replaced: each gets its own sentence and the way to a new
// code; the newer code works.
func TestE2EWizardWrongSpentSupersededCodes(t *testing.T) {
	h := newHarness(t)
	t.Run("wrong", func(t *testing.T) {
		wizardBadCode(wizardSub(h, t), flow.NewCode(), "This code is not right.")
	})
	t.Run("spent", func(t *testing.T) {
		h := wizardSub(h, t)
		u := wizardJeanne
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		wizardWalk(h, tm, u, flow.StepLogin, flow.StepVerifyRedirect)
		tm.waitFor(wizardScreen(flow.StepVerifyRedirect))
		tm.close()
		wizardWaitReleased(h, u.login)
		code := h.code(u.redirect, 0)
		// Used once: it proves the redirect, and opens nothing (its holder
		// may be a stranger whose address the user mistyped).
		tm = h.openTerm(code, 80, 24, "en_US.UTF-8")
		screen := tm.waitFor("Your redirect address is confirmed.", wizardScreen(flow.StepRecoveryCode))
		if strings.Contains(screen, wizardScreen(flow.StepPassword)) {
			t.Errorf("a redirect code opened the dossier:\n%s", screen)
		}
		tm.close()
		wizardBadCode(h, code, "This code was already used.")
		// The user goes on with the dossier's own code, the redirect verified.
		tm = h.openTerm(h.code(u.recovery, 0), 80, 24, "en_US.UTF-8")
		tm.waitFor(wizardScreen(flow.StepPassword))
		tm.close()
	})
	t.Run("superseded", func(t *testing.T) {
		h := wizardSub(h, t)
		u := wizardAlex
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.waitFor(wizardScreen(flow.StepLogin))
		tm.send(u.login, keyEnter)
		tm.waitFor(wizardScreen(flow.StepRecoveryCode))
		first := h.code(u.recovery, 0)
		tm.send(wizardKeyEsc) // back to step 1, ask again
		tm.waitFor(wizardScreen(flow.StepLogin))
		tm.send(keyCtrlU, u.login, keyEnter)
		tm.waitFor(wizardScreen(flow.StepRecoveryCode))
		second := h.code(u.recovery, 1)
		tm.close()
		wizardBadCode(h, first, "This code was replaced by a newer one")
		tm = h.openTerm(second, 80, 24, "en_US.UTF-8")
		tm.waitFor(wizardScreen(flow.StepCharter))
	})
}

// wizardClock is the real time moved forward by a settable offset.
type wizardClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *wizardClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *wizardClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Past 23:59 of the day a recovery code was mailed, the code says it
// expired and how to get a new one, and a session open on that day ends
// with the same sentence at its next step.
func TestE2EWizardExpiredCode(t *testing.T) {
	fc := &wizardClock{}
	h := newHarnessWith(t, options{clock: fc})

	tm := h.openTerm("activate", 200, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepLogin))
	tm.send(wizardAlex.login, keyEnter)
	tm.waitFor(wizardScreen(flow.StepRecoveryCode))
	code := h.code(wizardAlex.recovery, 0)
	tm.close()

	open := h.openTerm("activate", 200, 24, "en_US.UTF-8") // on the same day, at step 3
	wizardWalk(h, open, wizardJeanne, flow.StepLogin, flow.StepCharter)
	open.waitFor(wizardScreen(flow.StepCharter))

	now := fc.Now()
	fc.advance(flow.SameDayDeadline(now, h.cfg.Location()).Sub(now) + time.Minute)
	const want = "This code has expired (it was valid until 23:59)."
	wizardBadCode(h, code, want)
	open.send(" ", keyEnter)
	open.waitFor(want, wizardNewCode)
	open.waitEnd()
}

// wizardSame waits until every session's screen shows texts and all are
// the same, or fails showing them.
func wizardSame(t *testing.T, names []string, screens func(i int) string, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok := true
		first := screens(0)
		for i := range names {
			s := screens(i)
			for _, x := range texts {
				ok = ok && strings.Contains(s, x)
			}
			ok = ok && s == first
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, n := range names {
				fmt.Fprintf(&b, "--- %s:\n%s\n", n, screens(i))
			}
			t.Fatalf("the answers to %v differ or lack %q:\n%s", names, texts, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An unknown login, a pending one and an active one get the same step 2,
// in the TUI and in plain mode: only the mailbox tells them apart (a code
// for the pending account, a reset code for the active one, nothing for
// the unknown one).
func TestE2EWizardUnknownLoginLikeKnown(t *testing.T) {
	h := newHarness(t)
	logins := []string{"nobody", "amartin", "pdurand"}

	var terms []*term
	for _, l := range logins {
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.waitFor(wizardScreen(flow.StepLogin))
		tm.send(l, keyEnter)
		terms = append(terms, tm)
	}
	wizardSame(t, logins, func(i int) string { return terms[i].screen() },
		wizardScreen(flow.StepRecoveryCode), "a code has just been", "Ctrl+C: quit")

	var plains []*plainSession
	for _, l := range logins {
		p := h.openPlain("activate+plain", "en_US.UTF-8")
		p.waitPrompt("Login")
		p.answer(l)
		plains = append(plains, p)
	}
	for _, p := range plains {
		p.waitPrompt("Code from the mail")
	}
	wizardSame(t, logins, func(i int) string { return plains[i].out.String() }, "Code from the mail> ")

	for n := range 2 { // one mail per session for each known login
		if c := h.code(wizardAlex.recovery, n); c == "" {
			t.Fatal("no code for amartin")
		}
		m := h.waitMail("pierre@perso.example.net", n)
		if !strings.Contains(m.Subject, "new password") || !codeRE.MatchString(m.Body) {
			t.Errorf("the reset mail to the active account: %q\n%s", m.Subject, m.Body)
		}
	}
	var queued int
	must(t, h.app.db.View(func(tx flow.Tx) error {
		ms, err := tx.Mails("nobody")
		queued = len(ms)
		return err
	}))
	if n := len(h.smtp.Messages()); queued != 0 || n != 4 {
		t.Errorf("%d mails queued for the unknown login, %d mails sent in all (want 0, 4)", queued, n)
	}
}

// wizardOpenTermFrom is openTerm from a given local address (the server
// limits connections per address) whose client side leaves no goroutine
// behind once the connection is closed.
func wizardOpenTermFrom(h *harness, local, user string) *term {
	h.t.Helper()
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: waitLimit}).Dial("tcp", h.addr)
	must(h.t, err)
	cc, chans, reqs, err := gossh.NewClientConn(conn, h.addr, &gossh.ClientConfig{
		User: user, Timeout: waitLimit, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		conn.Close()
		h.t.Fatal(err)
	}
	return h.termOn(gossh.NewClient(cc, chans, reqs), user, 80, 24, "en_US.UTF-8")
}

// 50 TUI sessions dropped mid-walk — at step 1 with half a login typed, or
// at step 3 on an open dossier — leave no goroutine behind in the whole
// server (SSH, bubbletea, flow sessions, store).
func TestE2EWizardNoGoroutineLeft(t *testing.T) {
	h := newHarness(t)
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	code := wizardWalk(h, tm, wizardAlex, flow.StepLogin, flow.StepCharter)
	tm.close()
	wizardWaitReleased(h, wizardAlex.login)

	local := func(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%10) }
	session := func(i int) {
		if i%5 == 4 { // resume the dossier at step 3
			tm := wizardOpenTermFrom(h, local(i), code)
			tm.waitFor(wizardScreen(flow.StepCharter), "I have read and accept")
			tm.send(" ")
			tm.close()
			tm.waitEnd()
			wizardWaitReleased(h, wizardAlex.login)
			return
		}
		tm := wizardOpenTermFrom(h, local(i), "activate")
		tm.waitFor(wizardScreen(flow.StepLogin))
		tm.send("amar")
		tm.waitFor("> amar")
		tm.close()
		tm.waitEnd()
	}
	session(0) // what starts lazily starts before counting
	session(4)
	const margin = 5
	var before int
	deadline := time.Now().Add(waitLimit)
	for { // a settled count: the same twice in a row
		n := runtime.NumGoroutine()
		time.Sleep(50 * time.Millisecond)
		if before = runtime.NumGoroutine(); n == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the goroutine count does not settle: %d, then %d", n, before)
		}
	}
	for i := range 50 {
		session(i)
	}
	deadline = time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before+margin {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines before, %d after 50 abrupt disconnects:\n%s", before, runtime.NumGoroutine(), buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A large window shrunk to 40×12 in the middle of step 3 keeps the step,
// the ticked box and the key help on screen; 39×11 asks to enlarge the
// window; back to a normal size the step goes on where it was.
func TestE2EWizardResize(t *testing.T) {
	h := newHarness(t)
	tm := h.openTerm("activate", 200, 60, "en_US.UTF-8")
	wizardWalk(h, tm, wizardJeanne, flow.StepLogin, flow.StepCharter)
	tm.waitFor(wizardScreen(flow.StepCharter), "[ ] I have read and accept")
	tm.send(" ")
	tm.waitFor("[x] I have read and accept")

	tm.resize(40, 12)
	tm.waitFor(wizardScreen(flow.StepCharter), "[x] I have read and accept", "Space: tick", "Enter: next", "Ctrl+C: quit")
	tm.resize(39, 11)
	screen := tm.waitFor("Please enlarge the window")
	if strings.Contains(screen, "Step 3") || strings.Contains(screen, "Ctrl+C") {
		t.Errorf("a 39×11 window shows more than the request to enlarge it:\n%s", screen)
	}
	tm.resize(80, 24)
	tm.waitFor(wizardScreen(flow.StepCharter), "[x] I have read and accept")
	tm.send(keyEnter)
	tm.waitFor(wizardScreen(flow.StepDirectory))
}
