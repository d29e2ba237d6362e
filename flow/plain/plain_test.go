package plain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/storage"
)

const charter = "# Charte informatique\n\nArticle 1. L'utilisateur respecte les règles.\n\tAlinéa\x1b[31m rouge\x1b[0m.\n"

type env struct {
	t     *testing.T
	db    *storage.DB
	dir   *flowtest.Directory
	clock *flowtest.Clock
	svc   *flow.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	dir := flowtest.NewDirectory(
		flow.Account{DN: "uid=alice,ou=people,dc=example,dc=org", Login: "alice", GivenName: "Alice", Surname: "Martin",
			DisplayName: "Alice \u202eMartin", Mail: "alice.martin@univ.example.org", RecoveryMails: []string{"alice.perso@example.net"}, Affiliations: []string{"staff"}},
		flow.Account{DN: "uid=carol,ou=people,dc=example,dc=org", Login: "carol", GivenName: "Carol", Surname: "Durand",
			RecoveryMails: []string{"carol@example.net"}, Affiliations: []string{"student"}},
	)
	// The directory refuses, with an escape sequence in its reason, every
	// password that says "refuse".
	dir.RefuseContaining("refuse", "in history\x1b[2J")
	clock := flowtest.NewClock(time.Date(2026, 3, 10, 10, 0, 0, 0, loc))
	svc, err := flow.New(flow.Config{Location: loc, Charter: []byte(charter), Institution: "Université Exemple"}, db, dir, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, dir: dir, clock: clock, svc: svc}
}

// code returns the newest code of kind mailed for login.
func (e *env) code(login string, kind flow.MailKind) string {
	e.t.Helper()
	m := e.mail(login, kind)
	if m.Code == "" {
		e.t.Fatalf("%s mail for %s has no code", kind, login)
	}
	return m.Code
}

func (e *env) mail(login string, kind flow.MailKind) flow.Mail {
	e.t.Helper()
	// Every outbox entry of login, in any state: a mail whose code died
	// is cancelled, not gone.
	var mails []flow.Mail
	err := e.db.View(func(tx flow.Tx) error {
		var err error
		mails, err = tx.Mails(login)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].Login == login && mails[i].Kind == kind {
			return mails[i]
		}
	}
	e.t.Fatalf("no %s mail for %s in the outbox", kind, login)
	return flow.Mail{}
}

func (e *env) dossier(login string) flow.Dossier {
	e.t.Helper()
	var d flow.Dossier
	err := e.db.View(func(tx flow.Tx) error {
		var err error
		d, err = tx.Dossier(login)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) opts(lang string, pty bool) Options {
	return Options{
		Client:     flow.Client{Remote: "192.0.2.7:50022", Actor: "user", Lang: lang},
		PublicHost: "activate.example.org", PublicPort: 2222,
		Services: []string{"ENT", "Moodle\x1b]0;x\x07"},
		PTY:      pty,
	}
}

// term is the client side of one Run over pipes.
type term struct {
	t      *testing.T
	in     *io.PipeWriter
	pty    bool
	mu     sync.Mutex
	out    []byte
	mark   int
	change chan struct{}
	result chan error
	once   sync.Once
	err    error
}

func (e *env) start(opts Options) *term {
	t := e.t
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	tm := &term{t: t, in: inW, pty: opts.PTY, change: make(chan struct{}, 1), result: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := Run(ctx, e.svc, struct {
			io.Reader
			io.Writer
		}{inR, outW}, opts)
		outW.Close()
		inR.Close()
		tm.result <- err
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := outR.Read(buf)
			tm.mu.Lock()
			tm.out = append(tm.out, buf[:n]...)
			tm.mu.Unlock()
			select {
			case tm.change <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		tm.wait()
	})
	return tm
}

// waitFor waits until cond holds on the output, or fails after a generous
// deadline (a hang, not a timing assertion).
func (tm *term) waitFor(what string, cond func(out []byte) bool) {
	tm.t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		tm.mu.Lock()
		ok := cond(tm.out)
		tm.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-tm.change:
		case <-deadline.C:
			tm.t.Fatalf("waiting for %s; output:\n%s", what, tm.output())
		}
	}
}

// expect waits for s in the output after the mark and moves the mark past it.
func (tm *term) expect(s string) {
	tm.t.Helper()
	tm.waitFor(strconvQuote(s), func(out []byte) bool {
		i := bytes.Index(out[tm.mark:], []byte(s))
		if i < 0 {
			return false
		}
		tm.mark += i + len(s)
		return true
	})
}

// answer waits until the output ends with prompt, as Run waits for a line,
// and types input.
func (tm *term) answer(prompt, input string) {
	tm.t.Helper()
	if !strings.HasSuffix(prompt, "> ") {
		tm.t.Fatalf("bad test: prompt %q", prompt)
	}
	tm.waitFor("prompt "+strconvQuote(prompt), func(out []byte) bool {
		if !bytes.HasSuffix(out[tm.mark:], []byte(prompt)) {
			return false
		}
		tm.mark = len(out)
		return true
	})
	tm.send(input)
}

// answerFn is answer with an input computed once the prompt is there (a
// code that is mailed just before the prompt).
func (tm *term) answerFn(prompt string, input func() string) {
	tm.t.Helper()
	tm.answer(prompt, "")
	tm.send(input())
}

func (tm *term) send(s string) {
	if s != "" {
		tm.sendBytes([]byte(s))
	}
}

func (tm *term) sendBytes(b []byte) {
	tm.t.Helper()
	done := make(chan error, 1)
	go func() { _, err := tm.in.Write(b); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			tm.t.Fatalf("type %d bytes: %v; output:\n%s", len(b), err, tm.output())
		}
	case <-time.After(20 * time.Second):
		tm.t.Fatalf("Run does not read its input; output:\n%s", tm.output())
	}
}

func (tm *term) wait() error {
	tm.once.Do(func() {
		select {
		case tm.err = <-tm.result:
		case <-time.After(20 * time.Second):
			tm.err = errors.New("Run did not return")
		}
	})
	return tm.err
}

// end waits for Run to end as a session does (done, left, or at a dead
// end: TestResumeWithCode and TestRevokedSessionEnds tell them apart)
// and checks the whole output.
func (tm *term) end() string {
	tm.t.Helper()
	if err := tm.wait(); err != nil && !errors.Is(err, ErrLeft) && !errors.Is(err, ErrDeadEnd) && !errors.Is(err, flow.ErrUnavailable) {
		tm.t.Fatalf("Run: %v; output:\n%s", err, tm.output())
	}
	out := tm.output()
	checkOutput(tm.t, out, tm.pty)
	return out
}

func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return string(tm.out)
}

func strconvQuote(s string) string { return "\"" + s + "\"" }

var missingKey = regexp.MustCompile(`\[[a-z]+(\.[a-z-]+)+\]`)

// checkOutput asserts the plain-mode output rules: no escape sequence, no
// control but the line endings of the mode, every catalogue key found.
func checkOutput(t *testing.T, out string, pty bool) {
	t.Helper()
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			t.Fatalf("invalid UTF-8 at %d: %q", i, around(out, i))
		case r == '\n':
			if pty && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("PTY output has a bare LF at %d: %q", i, around(out, i))
			}
		case r == '\r':
			if !pty || i+1 >= len(out) || out[i+1] != '\n' {
				t.Fatalf("stray CR at %d: %q", i, around(out, i))
			}
		case unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			t.Fatalf("control %U at %d: %q", r, i, around(out, i))
		}
		i += n
	}
	if !pty { // without echo, a prompt's line holds the prompt alone
		for l := range strings.SplitSeq(out, "\n") {
			if strings.Contains(l, "> ") && !strings.HasSuffix(l, "> ") {
				t.Fatalf("prompt line %q does not end in \"> \"", l)
			}
		}
	}
	if m := missingKey.FindString(out); m != "" {
		t.Fatalf("missing catalogue key %s in output", m)
	}
}

func around(s string, i int) string {
	return s[max(0, i-40):min(len(s), i+40)]
}

// A whole walk without PTY, in French, with the mistakes people make.
func TestWalkFrenchNoPTY(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr_FR.UTF-8", false))
	tm.expect("Activation de votre compte informatique")
	tm.expect("Étape 1 sur 7 — Identifiant")
	tm.answer("Identifiant> ", "\n")
	tm.expect("Aucune saisie.")
	tm.answer("Identifiant> ", "bad login!\n")
	tm.expect("Cet identifiant n'est pas valide")
	tm.answer("Identifiant> ", "Alice\n")
	tm.expect("Étape 2 sur 7 — Mail de secours")
	tm.expect("Si cet identifiant correspond")
	tm.expect("ssh -p 2222 CODE+plain@activate.example.org")
	tm.answer("Code reçu par mail> ", "0000-0000-0000-0000\n")
	tm.expect("Ce code est incorrect. Vérifiez-le dans le mail reçu. Pour en recevoir un nouveau : ssh -p 2222 activate+plain@activate.example.org")
	tm.answerFn("Code reçu par mail> ", func() string { return strings.ToLower(e.code("alice", flow.MailRecovery)) + "\n" })

	tm.expect("Étape 3 sur 7 — Charte informatique")
	tm.expect("Article 1. L'utilisateur respecte les règles.")
	tm.expect("    Alinéa rouge.")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "peut-être\n")
	tm.expect("Répondez o (oui) ou n (non).")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "n\n")
	tm.expect("Vous devez accepter la charte pour continuer.")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", " OUI \n")

	tm.expect("Étape 4 sur 7 — Annuaire public")
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", "non\n")

	tm.expect("Étape 5 sur 7 — Messagerie universitaire")
	tm.expect("En tant que personnel, une boîte mail universitaire sera créée")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "o\n")
	tm.answer("Adresse de redirection [alice.perso@example.net]> ", "pas une adresse\n")
	tm.expect("Cette adresse mail n'est pas valide")
	tm.answer("Adresse de redirection [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.expect("Une adresse différente de votre adresse de secours sera vérifiée")
	tm.answer("Conserver une copie dans ma boîte universitaire (fortement conseillé) (o/n) [o]> ", "\n")

	tm.expect("Étape 6 sur 7 — Vérification de la redirection")
	tm.expect("Un code a été envoyé à alice@elsewhere.example.")
	first := e.code("alice", flow.MailRedirect)
	tm.answer("Code reçu à l'adresse de redirection> ", "!renvoyer\n")
	tm.expect("Un nouveau code a été envoyé.")
	second := e.code("alice", flow.MailRedirect)
	if first == second {
		t.Fatal("!renvoyer sent no new code")
	}
	tm.answer("Code reçu à l'adresse de redirection> ", first+"\n")
	tm.expect("Ce code a été remplacé par un code plus récent")
	tm.answer("Code reçu à l'adresse de redirection> ", second+"\n")

	tm.expect("Étape 7 sur 7 — Mot de passe")
	tm.expect("- Au moins 15 caractères")
	tm.expect("le mot de passe que vous tapez ne peut pas être masqué")
	tm.answer("Nouveau mot de passe> ", "alice2026\n")
	tm.expect("Non respectée : Au moins 15 caractères")
	tm.expect("Respectée : Au plus 256 caractères")
	tm.expect("Non respectée : Ne contient pas votre identifiant")
	tm.expect("Ce mot de passe ne respecte pas toutes les règles ci-dessus.")
	const pw = "grenouille Violette pédale 47 fois"
	tm.answer("Nouveau mot de passe> ", pw+"\n")
	tm.expect("Respectée : Au moins 15 caractères")
	tm.expect("Respectée : Difficile à deviner")
	tm.answer("Confirmez le mot de passe> ", pw+"!\n")
	tm.expect("Les deux saisies ne correspondent pas.")
	tm.answer("Nouveau mot de passe> ", pw+"\n")
	tm.answer("Confirmez le mot de passe> ", pw+"\n")
	tm.expect("Terminé — Confirmation")
	tm.expect("Votre compte est activé.")
	tm.expect("Identifiant : alice")
	tm.expect("- ENT")
	tm.expect("- Moodle")
	tm.expect("Un mail de confirmation a été envoyé")
	tm.end()

	d := e.dossier("alice")
	switch {
	case d.Activated.IsZero():
		t.Fatal("dossier not activated")
	case d.CharterVersion != e.svc.CharterVersion():
		t.Fatalf("charter version %q", d.CharterVersion)
	case !d.DirectoryChosen || d.PublicDirectory:
		t.Fatal("directory choice not recorded as private")
	case d.Redirect != "alice@elsewhere.example" || !d.KeepCopy || !d.RedirectVerified:
		t.Fatalf("mailbox: redirect %q keep %t verified %t", d.Redirect, d.KeepCopy, d.RedirectVerified)
	case d.Lang != "" && d.Lang != "fr":
		t.Fatalf("lang %q", d.Lang)
	}
	if got := e.dir.Password("alice"); got != pw {
		t.Fatal("the directory did not get the typed password")
	}
	if act := e.dir.Activation("alice"); act.Public || act.Redirect != "alice@elsewhere.example" || !act.KeepCopy {
		t.Fatalf("activation %+v", act)
	}
	if m := e.mail("alice", flow.MailRecovery); m.Lang != "fr" {
		t.Fatalf("recovery mail in %q", m.Lang)
	}
	if e.svc.Busy("alice") {
		t.Fatal("session left open")
	}
}

func TestWalkEnglishPTY(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en_GB.UTF-8", true))
	tm.expect("Activate your IT account\r\n")
	tm.expect("Step 1 of 7 — Login\r\n")
	// A typo erased with DEL, an arrow key: the corrected line is printed
	// again, no cursor movement.
	tm.answer("Login> ", "carox\x7fl\x1b[D\r")
	tm.expect("carox\r\nLogin> carol\r\n")
	tm.expect("Step 2 of 7 — Recovery mail")
	code := e.code("carol", flow.MailRecovery)
	tm.answer("Code from the mail> ", code+"\r")
	tm.expect(code + "\r\n") // a code is echoed like any visible field
	tm.expect("Step 3 of 7 — IT charter")
	tm.answer("I have read and accept the IT charter (y/n)> ", "Y\r")
	tm.expect("Step 4 of 7 — Public directory")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "yes\r\n")
	tm.expect("Step 5 of 7 — University mailbox")
	tm.answer("Redirect my mail to an external address (y/n)> ", "no\r")
	tm.expect("Step 7 of 7 — Password")
	tm.answer("New password> ", "?\r")
	tm.expect("Type !fr for French, !en for English, ? for help, Ctrl+D to quit.")
	tm.expect("Type !back to go back to the previous step.")
	const pw = "marmalade Tractor whistles 93 times"
	tm.answer("New password> ", pw+"\r")
	tm.expect("Met: At least 15 characters\r\n")
	tm.expect("Met: Hard to guess")
	tm.answer("Confirm the password> ", pw+"\r")
	tm.expect("Done — Confirmation")
	tm.expect("Your account is active.\r\n")
	out := tm.end()

	if strings.Contains(out, pw) || strings.Contains(out, "marmalade") {
		t.Fatal("the password was echoed")
	}
	if !strings.Contains(out, "\r\nNew password> \r\nMet: At least") || !strings.Contains(out, "\r\nConfirm the password> \r\n") {
		t.Fatal("password prompts are not lines of their own with nothing echoed")
	}
	if strings.Contains(out, "cannot be hidden") {
		t.Fatal("the no-PTY warning was shown with a PTY")
	}
	d := e.dossier("carol")
	if d.Activated.IsZero() || !d.PublicDirectory || d.Redirect != "" || d.KeepCopy {
		t.Fatalf("dossier %+v", d)
	}
	if d.Lang != "en" {
		t.Fatalf("dossier language %q, want en", d.Lang)
	}
	if e.dir.Password("carol") != pw {
		t.Fatal("the directory did not get the typed password")
	}
	if strings.Contains(out, "University mailbox\r\nAs a staff member") {
		t.Fatal("staff notice shown to a student")
	}
}

// A script without PTY sends every answer at once; the code comes from
// the user name.
func TestScriptedTypeAhead(t *testing.T) {
	e := newEnv(t)
	if out, err := e.svc.Invite(context.Background(), "carol", false, flow.Client{Actor: "staff:test"}); err != nil || out != flow.Invited {
		t.Fatalf("invite: %v %v", out, err)
	}
	opts := e.opts("", false)
	opts.Code = e.code("carol", flow.MailInvitation)
	const pw = "cinq grenouilles Bleues dansent 12"
	script := "o\r\nn\r\nn\r\n" + pw + "\r\n" + pw // no final newline
	var out bytes.Buffer
	err := Run(context.Background(), e.svc, struct {
		io.Reader
		io.Writer
	}{strings.NewReader(script), &out}, opts)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	checkOutput(t, out.String(), false)
	if !strings.Contains(out.String(), "Votre compte est activé.") {
		t.Fatalf("not activated:\n%s", out.String())
	}
	if strings.Count(out.String(), "> \n") != 5 {
		t.Fatalf("want 5 prompts, output:\n%s", out.String())
	}
	if d := e.dossier("carol"); d.Activated.IsZero() || d.PublicDirectory {
		t.Fatalf("dossier %+v", d)
	}
}

func TestResumeWithCode(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr", false))
	tm.answer("Identifiant> ", "alice\n")
	tm.expect("Étape 2 sur 7")
	code := e.code("alice", flow.MailRecovery)
	tm.answer("Code reçu par mail> ", code+"\n")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "o\n")
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", "oui\n")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "\x04")
	tm.expect("Session terminée ; rien n'est perdu. Pour revenir : ssh -p 2222 CODE+plain@activate.example.org")
	tm.end()
	if err := tm.wait(); !errors.Is(err, ErrLeft) { // a script tells it apart (exit status 2)
		t.Errorf("Run after Ctrl+D: %v, want ErrLeft", err)
	}
	if e.svc.Busy("alice") {
		t.Fatal("session left open after Ctrl+D")
	}

	// ssh <code>@host, typed in lower case without dashes.
	opts := e.opts("", false)
	opts.Code = strings.ToLower(strings.ReplaceAll(code, "-", ""))
	tm = e.start(opts)
	tm.expect("Étape 5 sur 7 — Messagerie universitaire")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "!retour\n")
	tm.expect("Étape 4 sur 7 — Annuaire public")
	// Pre-filled from the dossier: an empty line keeps "yes".
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n) [o]> ", "\n")
	tm.expect("Étape 5 sur 7 — Messagerie universitaire")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "\x03")
	tm.expect("Session terminée ; rien n'est perdu. Pour revenir : ssh -p 2222 CODE+plain@activate.example.org")
	out := tm.end()
	if strings.Contains(out, "Étape 3 sur 7") || strings.Contains(out, "Étape 1 sur 7") {
		t.Fatalf("resume did not land on the saved step:\n%s", out)
	}
	if d := e.dossier("alice"); !d.PublicDirectory {
		t.Fatal("the pre-filled answer changed the choice")
	}
}

func TestCodeFromUserNameWrongOrExpired(t *testing.T) {
	e := newEnv(t)
	opts := e.opts("fr", false)
	opts.Code = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
	tm := e.start(opts)
	tm.expect("Ce code est incorrect.")
	tm.answer("Code reçu par mail> ", "!retour\n") // asked again, as in the TUI; back leads to the login prompt
	tm.answer("Identifiant> ", "\x04")
	tm.end()

	if err := e.svc.Begin(context.Background(), "carol", flow.Client{Remote: "192.0.2.9:1"}); err != nil {
		t.Fatal(err)
	}
	code := e.code("carol", flow.MailRecovery)
	e.clock.Add(36 * time.Hour)
	opts = e.opts("en", false)
	opts.Code = code
	tm = e.start(opts)
	tm.expect("This code has expired (it was valid until 23:59). To get a new one: ssh -p 2222 activate+plain@activate.example.org")
	tm.answer("Code from the mail> ", "!back\n")
	tm.answer("Login> ", "carol\n")
	tm.answer("Code from the mail> ", code+"\n") // the old one, typed
	tm.expect("This code was replaced by a newer one")
	tm.answer("Code from the mail> ", "!resend\n")
	tm.expect("If this login belongs to an account, a code has just been sent")
	tm.answerFn("Code from the mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.expect("Step 3 of 7 — IT charter")
	tm.answer("I have read and accept the IT charter (y/n)> ", "?\n")
	tm.answer("I have read and accept the IT charter (y/n)> ", "!back\n")
	tm.expect("There is no earlier step to go back to here.\n")
	tm.answer("I have read and accept the IT charter (y/n)> ", "\x04")
	out := tm.end()
	// No way back from the first step after the code: the help does not
	// offer one, and !back is answered where it was typed, the step not
	// printed again.
	charter := out[strings.LastIndex(out, "Step 3 of 7"):]
	if strings.Contains(charter, "Type !back") || strings.Count(out, "Step 3 of 7") != 1 {
		t.Errorf("the charter step offered !back or was printed again:\n%s", charter)
	}
}

func TestLanguageSwitch(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("", false)) // no LANG: the default, French
	tm.answer("Identifiant> ", "!en\n")
	tm.answer("Login> ", "carol\n")
	tm.expect("Step 2 of 7 — Recovery mail")
	if m := e.mail("carol", flow.MailRecovery); m.Lang != "en" {
		t.Fatalf("recovery mail in %q after !en", m.Lang)
	}
	tm.answerFn("Code from the mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.expect("Step 3 of 7 — IT charter")
	tm.answer("I have read and accept the IT charter (y/n)> ", "!FR\n")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "yes\n") // both languages' words work
	tm.expect("Étape 4 sur 7 — Annuaire public")
	if d := e.dossier("carol"); d.Lang != "fr" {
		t.Fatalf("dossier language %q after !fr", d.Lang)
	}
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", "!en\n")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "\x04")
	tm.end()

	// The language saved in the dossier wins over the default when the
	// client sends no LANG.
	opts := e.opts("", false)
	opts.Code = e.code("carol", flow.MailRecovery)
	tm = e.start(opts)
	tm.expect("Step 4 of 7 — Public directory")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "\x04")
	tm.expect("Session ended; nothing is lost. Come back with: ssh -p 2222 CODE+plain@activate.example.org")
	tm.end()
}

func TestYesNoVariants(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"o", true}, {"oui", true}, {"Y", true}, {"YES", true}, {"  Oui  ", true},
		{"n", false}, {"no", false}, {"non", false}, {"NON", false}, {"N", false},
	} {
		t.Run(c.in, func(t *testing.T) {
			e := newEnv(t)
			tm := e.start(e.opts("fr", true))
			tm.answer("Identifiant> ", "carol\r")
			tm.answerFn("Code reçu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\r" })
			tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "o\r")
			tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", c.in+"\r")
			tm.expect("Étape 5 sur 7")
			tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "\x03")
			tm.end()
			if d := e.dossier("carol"); !d.DirectoryChosen || d.PublicDirectory != c.want {
				t.Fatalf("%q recorded public=%t", c.in, d.PublicDirectory)
			}
		})
	}
}

// A 1 MiB line is refused as it arrives: the buffer stays at MaxLine,
// the echo stops there, and the memory allocated stays far below the line.
func TestHugeLine(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr", true))
	big := append(bytes.Repeat([]byte("a"), 1<<20), '\r')
	tm.answer("Identifiant> ", "")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tm.sendBytes(big)
	tm.expect("Ligne trop longue (plus de 4096 octets) : elle a été ignorée.")
	tm.answer("Identifiant> ", "\x04")
	runtime.ReadMemStats(&after)
	out := tm.end()
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 256<<10 {
		t.Fatalf("a 1 MiB line allocated %d bytes", grown)
	}
	if len(out) > 2*MaxLine {
		t.Fatalf("echoed %d bytes for a refused line", len(out))
	}
}

func TestRevokedSessionEnds(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr", true))
	tm.answer("Identifiant> ", "carol\r")
	tm.answerFn("Code reçu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\r" })
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "")
	if err := e.svc.Revoke("carol", flow.Client{Actor: "staff:test"}); err != nil {
		t.Fatal(err)
	}
	tm.expect("Cette session a été fermée")
	tm.end()
	if err := tm.wait(); !errors.Is(err, ErrDeadEnd) { // a script tells it apart (exit status 3)
		t.Errorf("Run after a revoke: %v, want ErrDeadEnd", err)
	}
	if e.svc.Busy("carol") {
		t.Fatal("session left open")
	}
}

func TestDeadlinePassesDuringSession(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "carol\n")
	tm.answerFn("Code from the mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.answer("I have read and accept the IT charter (y/n)> ", "")
	e.clock.Add(24 * time.Hour)
	tm.send("y\n")
	tm.expect("This code has expired")
	tm.end()
}

func TestBusyAndContext(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "carol\n")
	tm.expect("Step 2 of 7")
	code := e.code("carol", flow.MailRecovery)
	tm.answer("Code from the mail> ", code+"\n")
	tm.answer("I have read and accept the IT charter (y/n)> ", "")

	opts := e.opts("en", false)
	opts.Code = code
	tm2 := e.start(opts)
	tm2.expect("This dossier is open in another session.")
	tm2.answer("Code from the mail> ", "\x04") // asked again: once the other session ends, the same code opens it
	tm2.end()

	// Ending the context ends Run with ctx's error and frees the dossier.
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	defer w.Close()
	res := make(chan error, 1)
	e2 := newEnv(t)
	go func() {
		res <- Run(ctx, e2.svc, struct {
			io.Reader
			io.Writer
		}{r, io.Discard}, e2.opts("en", false))
	}()
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestPasswordRefusedThenOutage(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", true))
	tm.answer("Login> ", "carol\r")
	tm.answerFn("Code from the mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\r" })
	tm.answer("I have read and accept the IT charter (y/n)> ", "y\r")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "n\r")
	tm.answer("Redirect my mail to an external address (y/n)> ", "y\r")
	tm.answer("Redirect address [carol@example.net]> ", "\r") // the recovery address: no verification; no mailbox, so no copy to keep
	tm.expect("Step 7 of 7 — Password")
	const refused = "please refuse this Purple giraffe 88"
	tm.answer("New password> ", refused+"\r")
	tm.answer("Confirm the password> ", refused+"\r")
	tm.expect("The directory refused this password: in history\r\n")

	// The directory takes the next one, then fails twice to activate: the
	// password is not asked again.
	e.dir.FailActivate(2, errors.New("ldap: connection refused"))
	const pw = "seven Orange lanterns float 19"
	tm.answer("New password> ", pw+"\r")
	tm.answer("Confirm the password> ", pw+"\r")
	// Each failure is told once, then the next try waits for Enter (it
	// used to try again at once and tell the same failure twice).
	tm.expect("The service is unavailable for a moment; nothing is lost. Try again in a few minutes.\r\nYour password is saved; the activation still has to be completed.")
	tm.answer("Enter to try again> ", "\r")
	tm.expect("Activating your account…")
	tm.expect("The service is unavailable for a moment; nothing is lost. Try again in a few minutes.\r\nYour password is saved; the activation still has to be completed.")
	// !fr there says it again in French.
	tm.answer("Enter to try again> ", "!fr\r")
	tm.expect("Étape 7 sur 7 — Mot de passe\r\nVotre mot de passe est enregistré ; il reste à terminer l'activation.")
	tm.answer("Entrée pour réessayer> ", "\x04")
	out := tm.end()
	if err := tm.wait(); !errors.Is(err, flow.ErrUnavailable) { // a script tells it apart (exit status 1)
		t.Errorf("Run ended by the user after an outage: %v, want ErrUnavailable", err)
	}
	if n := strings.Count(out, "The service is unavailable"); n != 2 {
		t.Errorf("two failed activations told %d times:\n%s", n, out)
	}
	if strings.Contains(out, "refuse this") || strings.Contains(out, pw) {
		t.Fatal("password echoed")
	}
	d := e.dossier("carol")
	if d.Redirect != "carol@example.net" || d.KeepCopy || d.RedirectVerified || d.NeedsRedirectVerification() {
		t.Fatalf("mailbox %+v", d)
	}
	if d.PasswordSet.IsZero() || !d.Activated.IsZero() {
		t.Fatalf("want password set, not activated: %+v", d)
	}

	// Coming back with the code finishes without asking for the password.
	opts := e.opts("en", false)
	opts.Code = e.code("carol", flow.MailRecovery)
	tm = e.start(opts)
	tm.expect("Step 7 of 7 — Password\nActivating your account…\n")
	tm.expect("Your account is active.")
	out = tm.end()
	if strings.Contains(out, "New password> ") {
		t.Fatal("the password was asked again")
	}
	if e.dir.Password("carol") != pw || e.dossier("carol").Activated.IsZero() {
		t.Fatal("not activated with the accepted password")
	}
}

// !retour walks back to earlier steps, pre-filled, and forward again.
func TestBackThroughSteps(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr", false))
	tm.answer("Identifiant> ", "alice\n")
	tm.answerFn("Code reçu par mail> ", func() string { return e.code("alice", flow.MailRecovery) + "\n" })
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "o\n")
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", "n\n")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "o\n")
	tm.answer("Adresse de redirection [alice.perso@example.net]> ", "alice@typo.example\n")
	tm.answer("Conserver une copie dans ma boîte universitaire (fortement conseillé) (o/n) [o]> ", "n\n")
	tm.expect("Étape 6 sur 7")
	// A typo in the address: back to step 5, pre-filled with the choices.
	tm.answer("Code reçu à l'adresse de redirection> ", "!retour\n")
	tm.expect("Étape 5 sur 7")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n) [o]> ", "\n")
	tm.answer("Adresse de redirection [alice@typo.example]> ", "Alice.Perso@example.net\n")
	tm.answer("Conserver une copie dans ma boîte universitaire (fortement conseillé) (o/n) [n]> ", "\n")
	// The recovery address needs no verification: straight to step 7.
	tm.expect("Étape 7 sur 7")
	tm.answer("Nouveau mot de passe> ", "!retour\n")
	tm.expect("Étape 5 sur 7")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n) [o]> ", "!retour\n")
	tm.expect("Étape 4 sur 7")
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n) [n]> ", "o\n")
	tm.expect("Étape 5 sur 7") // forward through the steps already done
	tm.answer("Rediriger mes mails vers une adresse externe (o/n) [o]> ", "n\n")
	tm.expect("Étape 7 sur 7")
	tm.answer("Nouveau mot de passe> ", "\x04")
	out := tm.end()
	if strings.Count(out, "Étape 6 sur 7") != 1 {
		t.Fatalf("verification shown again:\n%s", out)
	}
	d := e.dossier("alice")
	if !d.PublicDirectory || d.Redirect != "" || d.KeepCopy || d.Next() != flow.StepPassword {
		t.Fatalf("dossier %+v", d)
	}
}

// The charter step reads as plain-mode text: no Markdown marks, no box to
// tick; !en prints the step again in English, not only its prompt.
func TestCharterTextAndLanguageReprint(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("fr", false))
	tm.answer("Identifiant> ", "carol\n")
	tm.answerFn("Code reçu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.expect("répondez o pour l'accepter")
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "!en\n")
	tm.expect("Step 3 of 7 — IT charter\nRead the institution's IT charter below, then answer y to accept it.\n\nCharte informatique\n")
	tm.answer("I have read and accept the IT charter (y/n)> ", "\x04")
	out := tm.end()
	// The charter is below the intro each time the step is shown, not
	// only the first time ("below" would point at nothing).
	if n := strings.Count(out, "\nCharte informatique\n"); n != 2 {
		t.Errorf("the charter was printed %d times, want 2 (the step, then the step again in English):\n%s", n, out)
	}
	for _, bad := range []string{"# Charte", "cochez", "tick the box"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "\nCharte informatique\n") {
		t.Errorf("the charter's title is not a line of its own:\n%s", out)
	}
}

// A client whose charset is not UTF-8 reads ASCII.
func TestASCIIOnly(t *testing.T) {
	e := newEnv(t)
	opts := e.opts("fr", false)
	opts.ASCII = true
	tm := e.start(opts)
	tm.answer("Identifiant> ", "carol\n")
	tm.answerFn("Code recu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "\x04")
	out := tm.end()
	if !strings.Contains(out, "Etape 3 sur 7 - Charte informatique") {
		t.Errorf("no ASCII header:\n%s", out)
	}
	for i := 0; i < len(out); i++ {
		if out[i] >= 0x80 {
			t.Fatalf("byte %#x at %d:\n%s", out[i], i, out)
		}
	}
}

// At step 6 a wrong code points to the mail sent to the redirect address,
// not to ssh activate@… (which restarts at step 1 and mails the recovery
// address); the whole command pasted from that mail is taken like the code.
func TestVerifyRedirectWrongCodeAndPastedCommand(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en_GB.UTF-8") // alice, at the redirect address prompt
	tm.answer("Redirect address [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.expect("Step 6 of 7 — Verify the redirect")
	tm.answer("Code sent to the redirect address> ", "0000-0000-0000-0000\n")
	tm.expect("This code is not right. Check it in the mail sent to the redirect address.\n")
	tm.answerFn("Code sent to the redirect address> ", func() string {
		return "ssh -p 2222 " + e.code("alice", flow.MailRedirect) + "@activate.example.org\n"
	})
	tm.expect("Step 7 of 7 — Password")
	tm.answer("New password> ", "\x04")
	if out := tm.end(); strings.Contains(out[strings.Index(out, "Step 6 of 7"):], "activate@") {
		t.Fatal("step 6 sends the user to ssh activate@… for a new redirect code")
	}
	if d := e.dossier("alice"); !d.RedirectVerified {
		t.Fatal("redirect not verified by the pasted command")
	}
}

// chunks records each Write as it came: what the client receives in one
// SSH packet.
type chunks struct{ w []string }

func (c *chunks) Write(p []byte) (int, error) { c.w = append(c.w, string(p)); return len(p), nil }

// Output is held back until the user is waited for: each prompt arrives
// with everything printed since the last one, in one write (one SSH
// packet, not one per line), and "activating…" is out before the
// directory is asked.
func TestOutputWrittenOncePerPrompt(t *testing.T) {
	e := newEnv(t)
	if out, err := e.svc.Invite(context.Background(), "carol", false, flow.Client{Actor: "staff:test"}); err != nil || out != flow.Invited {
		t.Fatalf("invite: %v %v", out, err)
	}
	opts := e.opts("en", false)
	opts.Code = e.code("carol", flow.MailInvitation)
	const pw = "cinq grenouilles Bleues dansent 12"
	var out chunks
	err := Run(context.Background(), e.svc, struct {
		io.Reader
		io.Writer
	}{strings.NewReader("y\nn\nn\n" + pw + "\n" + pw + "\n"), &out}, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	all := strings.Join(out.w, "")
	if !strings.Contains(all, "Your account is active.") {
		t.Fatalf("not activated:\n%s", all)
	}
	prompts := strings.Count(all, "> ")
	if len(out.w) > prompts+3 {
		t.Errorf("%d writes for %d prompts: %q", len(out.w), prompts, out.w)
	}
	for i, w := range out.w {
		if strings.Contains(w, "Step 3 of 7") && !strings.HasSuffix(w, "accept the IT charter (y/n)> ") {
			t.Errorf("the charter step came in pieces: write %d is %q", i, w)
		}
	}
	if !strings.HasPrefix(out.w[0], "Activate your IT account") || strings.Contains(out.w[0], "Step 3") {
		t.Errorf("the title was not written before the code was looked up: %q", out.w[0])
	}
	i := slices.IndexFunc(out.w, func(w string) bool { return strings.Contains(w, "Activating your account…") })
	if i < 0 || !strings.HasSuffix(out.w[i], "Activating your account…\n") {
		t.Errorf("\"Activating your account…\" was not written before the directory was asked: %q", out.w)
	}
}

// An address at the institution's own domain is refused as soon as it is
// typed, as a malformed one is: not after "will be verified" and the
// keep-a-copy question.
func TestRedirectToOwnDomainRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en") // alice, at the redirect address prompt
	tm.answer("Redirect address [alice.perso@example.net]> ", "a.martin@Univ.Example.org\n")
	tm.expect("This address is at the institution: mail would loop back.")
	tm.answer("Redirect address [alice.perso@example.net]> ", "\x04")
	out := tm.end()
	if strings.Contains(out, "will be verified") || strings.Contains(out, "Keep a copy") {
		t.Errorf("the address was taken further before it was refused:\n%s", out)
	}
	if d := e.dossier("alice"); d.MailboxChosen {
		t.Errorf("dossier changed: %+v", d)
	}
}

// !fr / !en prints the whole step again in the other language: at step 6
// the !resend hint, at step 7 the password's rules (a screen reader user
// who switched would otherwise not hear them at all).
func TestLanguageSwitchReprintsStepLines(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en") // alice, at the redirect address prompt
	tm.answer("Redirect address [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.answer("Code sent to the redirect address> ", "!fr\n")
	tm.expect("Étape 6 sur 7 — Vérification de la redirection\nUn code a été envoyé à alice@elsewhere.example. Saisissez-le ci-dessous.\n(tapez !renvoyer pour recevoir un nouveau code)\n")
	tm.answerFn("Code reçu à l'adresse de redirection> ", func() string { return e.code("alice", flow.MailRedirect) + "\n" })
	tm.expect("Étape 7 sur 7 — Mot de passe")
	tm.answer("Nouveau mot de passe> ", "!en\n")
	tm.expect("Step 7 of 7 — Password\nChoose your password. A phrase of several words is easier to remember and safer.\n- At least ")
	tm.answer("New password> ", "\x04")
	out := tm.end()
	// The visible-password warning goes with the step: once in French,
	// then again in English after !en.
	if n := strings.Count(out, "Attention : votre connexion n'a pas de terminal interactif"); n != 1 {
		t.Errorf("the visible-password warning was given %d times in French, want once:\n%s", n, out)
	}
	if i := strings.LastIndex(out, "Step 7 of 7"); i < 0 || !strings.Contains(out[i:], "Warning: your connection has no interactive terminal") {
		t.Errorf("no visible-password warning in English after !en:\n%s", out)
	}
}

// Back at step 5 after the redirect was verified, the same address
// confirmed again is not said to be verified again: it stays verified and
// step 6 is skipped.
func TestVerifiedRedirectConfirmedAgain(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en") // alice, at the redirect address prompt
	tm.answer("Redirect address [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.expect("will be verified")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.answerFn("Code sent to the redirect address> ", func() string { return e.code("alice", flow.MailRedirect) + "\n" })
	tm.expect("Step 7 of 7 — Password")
	tm.answer("New password> ", "!back\n")
	tm.expect("Step 5 of 7")
	tm.answer("Redirect my mail to an external address (y/n) [y]> ", "\n")
	tm.answer("Redirect address [alice@elsewhere.example]> ", "\n")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.expect("Step 7 of 7 — Password")
	tm.answer("New password> ", "\x04")
	out := tm.end()
	again := out[strings.LastIndex(out, "Step 5 of 7"):]
	if strings.Contains(again, "will be verified") || strings.Contains(again, "Step 6 of 7") {
		t.Errorf("the verified address was to be verified again:\n%s", again)
	}
	if d := e.dossier("alice"); !d.RedirectVerified {
		t.Errorf("dossier %+v", d)
	}
}

// redirecting starts a session in lang without PTY and walks alice to
// step 5 with a redirect wanted: the next prompt asks for its address.
func (e *env) redirecting(lang string) *term {
	e.t.Helper()
	tm := e.start(e.opts(lang, false))
	tm.answer("Login> ", "alice\n")
	tm.answerFn("Code from the mail> ", func() string { return e.code("alice", flow.MailRecovery) + "\n" })
	tm.answer("I have read and accept the IT charter (y/n)> ", "y\n")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "n\n")
	tm.answer("Redirect my mail to an external address (y/n)> ", "y\n")
	return tm
}

// A script tells a session whose input ended right after the service said
// it was unavailable (exit status 1: come back later) from one the user
// left after the service answered again (2: the user left).
func TestLeftAfterAnOutage(t *testing.T) {
	e := newEnv(t)
	e.dir.SetDown(true)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "alice\n")
	tm.expect("The service is unavailable for a moment")
	tm.answer("Login> ", "\x04")
	tm.expect("Session ended; nothing is lost.")
	tm.end()
	if err := tm.wait(); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("input ended after an outage: %v, want ErrUnavailable", err)
	}

	tm = e.start(e.opts("en", false))
	tm.answer("Login> ", "alice\n")
	tm.expect("The service is unavailable for a moment")
	e.dir.SetDown(false)
	tm.answer("Login> ", "alice\n")
	tm.answer("Code from the mail> ", "\x04")
	tm.end()
	if err := tm.wait(); !errors.Is(err, ErrLeft) {
		t.Errorf("input ended after the service answered again: %v, want ErrLeft", err)
	}
}
