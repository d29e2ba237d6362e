// Package plain owns the line-prompt front end of the activation procedure
// (plain mode: screen readers, TERM=dumb, PuTTY logs, scripts). It runs the
// same steps as the TUI, in the order flow decides, as lines of text and
// one-line prompts ending in "> ": no cursor movement, no colour, no escape
// sequence, nothing but printable text and line endings in the output.
//
// At any prompt, !fr / !en switch the language, ? prints the help, !retour
// or !back goes back one step, Ctrl+C or Ctrl+D quits.
package plain

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/sanitize"
)

// Options describe one plain-mode connection.
type Options struct {
	// Code is the code given as SSH user name; "" starts at the login prompt.
	Code string
	// Client is who connects: Remote, Actor ("user"), Lang (the client's
	// LANG, "" when it sent none).
	Client     flow.Client
	PublicHost string
	PublicPort int
	// Services are listed on the confirmation screen.
	Services []string
	// PTY says the client asked for a terminal: it is raw, so Run echoes
	// what is typed (never a password) and lines end in "\r\n". Without a
	// PTY lines arrive cooked, nothing is echoed and lines end in "\n".
	// Either way the line of a prompt ends once its answer is read, so
	// every prompt stands on its own line in the output.
	PTY bool
	// ASCII writes only ASCII: the client's charset is not UTF-8.
	ASCII bool
	// Texts keeps the charter's text between sessions; nil renders it at
	// each showing.
	Texts *Texts
}

var (
	errBack  = errors.New("plain: back")
	errRetry = errors.New("plain: told the user, ask again")
)

type run struct {
	ctx    context.Context
	svc    *flow.Service
	cfg    flow.Config
	opts   Options
	in     *input
	w      *bufio.Writer // flushed when the user is waited for
	werr   error
	eol    string
	lang   string
	client flow.Client
	x      *flow.Session
	login  string
	show   func() // prints the current step again (after !fr / !en)
	noBack bool   // the current step has no earlier one to go back to
	resend bool   // the current prompt takes !resend (said again by ?)
	down   error  // the service failure last told, until the user answers
}

// Run drives the whole procedure on rw until it is done, the user quits,
// the input ends or ctx ends, and closes the flow session it opened. It
// returns nil when the procedure is done, ErrLeft when the user quit or
// the input ended (but the service's failure when that was the last thing
// said: the user was told to come back later), ErrDeadEnd at a dead end
// (dossier revoked or expired…), ctx.Err() when ctx ended, and the I/O or
// storage error otherwise. Reading rw goes on in a goroutine that ends
// when rw's Read returns (the caller closes the connection after Run).
func Run(ctx context.Context, svc *flow.Service, rw io.ReadWriter, opts Options) error {
	cfg := svc.Config()
	// Output is buffered up to the next wait (a prompt, the directory, the
	// end): one SSH packet per screenful rather than one per line, which
	// was most of the server's CPU in a plain walk.
	r := &run{ctx: ctx, svc: svc, cfg: cfg, opts: opts, w: bufio.NewWriterSize(rw, outBuf), eol: "\n", client: opts.Client}
	if opts.PTY {
		r.eol = "\r\n"
	}
	r.lang = i18n.Pick(opts.Client.Lang, cfg.DefaultLang)
	r.client.Actor = cmp.Or(r.client.Actor, "user")
	if opts.Client.Lang != "" {
		r.client.Lang = r.lang
	}
	r.in = newInput(rw, r.eol)
	defer r.in.stop()
	defer func() {
		if r.x != nil {
			r.x.Close()
		}
	}()
	r.line(r.t("app.title"))
	r.line(r.t("plain.help"))
	err := r.end(r.procedure())
	r.flush() // what end said: the connection may be gone already
	return err
}

// How Run ends when the procedure did not, besides the errors of the
// connection and of the service (unavailable): a script can tell them
// apart (the SSH server makes them exit statuses).
var (
	// ErrLeft: the user left (end of input, !quit); they were told how to
	// come back, and the dossier waits for them.
	ErrLeft = errors.New("plain: the user left before the end")
	// ErrDeadEnd: nothing more can be done with this code or dossier
	// (expired, revoked, already active…); the user was told who helps.
	ErrDeadEnd = errors.New("plain: a dead end")
)

// outBuf bounds the output held back before a flush.
const outBuf = 8 << 10

func (r *run) procedure() error {
	if r.opts.Code != "" {
		switch err := r.open(r.opts.Code); {
		case r.ctx.Err() != nil:
			return r.ctx.Err()
		case flow.OpenEnds(err):
			return err
		case err != nil:
			r.fail(err) // then ask for the code, as the TUI does
			if err := r.codeStep(); err != nil && !errors.Is(err, errBack) {
				return err
			}
		}
	}
	for r.x == nil {
		if err := r.loginStep(); err != nil {
			return err
		}
		if err := r.codeStep(); err != nil && !errors.Is(err, errBack) {
			return err
		}
	}
	return r.steps()
}

// end tells the user why the session ends and picks Run's result.
func (r *run) end(err error) error {
	switch {
	case err == nil:
		r.flush()
		return r.werr
	case errors.Is(err, errQuit), errors.Is(err, io.EOF):
		r.line(i18n.Ended(r.lang, r.login != "" || r.opts.Code != "", Suffix, r.opts.PublicHost, r.opts.PublicPort))
		if r.down != nil { // left on "come back later": the service failed
			return r.down
		}
		return ErrLeft
	case r.ctx.Err() != nil && errors.Is(err, r.ctx.Err()):
		return err
	case flow.OpenEnds(err), r.x != nil && r.x.Ends(err):
		r.fail(err)
		return ErrDeadEnd
	}
	r.fail(err)
	return err
}

// open opens the dossier of code (for the login typed at step 1, if any);
// the session settles the language.
func (r *run) open(code string) error {
	r.flush() // the directory may take a while: what is said so far goes first
	x, err := r.svc.OpenFor(r.ctx, r.login, code, r.client)
	if err != nil {
		return err
	}
	r.x, r.login, r.lang = x, x.Login(), x.Lang()
	return nil
}

// op turns the result of a flow operation into: nil (done), errRetry (the
// user was told, ask again) or an error that ends the session.
func (r *run) op(err error) error {
	switch {
	case err == nil:
		return nil
	case r.ctx.Err() != nil:
		return r.ctx.Err()
	case r.x.Ends(err):
		return err
	}
	r.fail(err)
	return errRetry
}

// steps runs the steps after the dossier is open, in the order flow gives,
// with !back showing an earlier step pre-filled.
func (r *run) steps() error {
	var want flow.Step // an earlier step the user went back to
	d, err := r.x.Dossier()
	for {
		if err != nil {
			return fmt.Errorf("read dossier: %w", err)
		}
		step := d.Show(want)
		v := r.svc.View(d, step)
		r.noBack, r.resend = v.Back == 0, step == flow.StepVerifyRedirect
		r.show = func() { // all of the step, again after !fr / !en
			r.header(step)
			r.intro(v)
			switch {
			case step == flow.StepCharter: // "below": shown again with the step
				r.line("")
				r.text(v.Charter)
				r.line("")
			case step == flow.StepVerifyRedirect:
				r.line(r.t("plain.resend"))
			case step == flow.StepPassword && !v.Saved:
				for _, rule := range v.Rules {
					r.line("- " + i18n.RuleText(r.lang, rule.Rule, r.cfg.Password))
				}
				if !r.opts.PTY { // in the language just chosen, too
					r.line(r.t("plain.pwvisible"))
				}
			}
		}
		r.show()
		switch step {
		case flow.StepCharter:
			err = r.charter(v)
		case flow.StepDirectory:
			err = r.directory(v)
		case flow.StepMailbox:
			err = r.mailbox(v)
		case flow.StepVerifyRedirect:
			err = r.verify()
		case flow.StepPassword:
			err = r.password(v)
		case flow.StepDone:
			r.done(v)
			return nil
		default:
			return fmt.Errorf("dossier %s at step %s: %w", r.login, step, flow.ErrOrder)
		}
		switch {
		case errors.Is(err, errBack):
			want = v.Back
		case err != nil:
			return err
		default:
			want = 0 // set below, from the dossier as the step left it
		}
		if d, err = r.x.Dossier(); err == nil && want == 0 {
			want = d.After(step)
		}
	}
}

// intro prints the step's sentences.
func (r *run) intro(v flow.StepView) {
	for _, s := range v.Intro {
		if l := i18n.Say(r.lang, "plain", s, r.command(r.t("code.user"))); l != "" {
			r.line(l)
		}
	}
}

func (r *run) loginStep() error {
	r.noBack, r.resend = true, false
	r.show = func() { r.header(flow.StepLogin); r.intro(r.svc.View(flow.Dossier{}, flow.StepLogin)) }
	r.show()
	for {
		s, err := r.ask(r.label("login.prompt"), false)
		if errors.Is(err, errBack) {
			continue
		}
		if err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			r.line(r.t("plain.empty"))
			continue
		}
		if err := r.svc.Begin(r.ctx, s, r.client); err != nil {
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			r.fail(err)
			continue
		}
		r.login = s
		return nil
	}
}

// codeStep asks for the code; after step 1 it says one was mailed and
// offers !resend.
func (r *run) codeStep() error {
	v := r.svc.View(flow.Dossier{Login: r.login}, flow.StepRecoveryCode)
	r.noBack = false // back to the login prompt
	r.resend = r.login != ""
	r.show = func() {
		r.header(flow.StepRecoveryCode)
		r.intro(v)
		if r.login != "" {
			r.line(r.t("plain.resend"))
		}
	}
	r.show()
	for {
		s, err := r.ask(r.label("code.prompt"), false)
		if err != nil {
			return err // errBack: back to the login prompt
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			r.line(r.t("plain.empty"))
			continue
		case "!renvoyer", "!resend":
			if r.login == "" { // no login typed yet: a new code starts there
				r.line(r.t("plain.back"))
				continue
			}
			if err := r.svc.Begin(r.ctx, r.login, r.client); err != nil {
				r.fail(err)
			} else {
				r.line(r.t("code.sent"))
			}
			continue
		}
		err = r.open(s)
		switch {
		case err == nil:
			return nil
		case r.ctx.Err() != nil:
			return r.ctx.Err()
		case flow.OpenEnds(err):
			return err
		}
		r.fail(err)
	}
}

func (r *run) charter(v flow.StepView) error {
	var def *bool
	if v.Accepted {
		def = ptr(true)
	}
	for {
		ok, err := r.yesNo("charter.accept", def)
		if err != nil {
			return err
		}
		if !ok {
			r.line(r.t("err.charter"))
			continue
		}
		if err := r.op(r.x.AcceptCharter(true)); err != errRetry {
			return err
		}
	}
}

func (r *run) directory(v flow.StepView) error {
	var def *bool
	if v.Chosen {
		def = ptr(v.Public)
	}
	for {
		public, err := r.yesNo("directory.question", def)
		if err != nil {
			return err
		}
		if err := r.op(r.x.ChooseDirectory(public)); err != errRetry {
			return err
		}
	}
}

func (r *run) mailbox(v flow.StepView) error {
	var redirectDef *bool
	if v.Redirect {
		redirectDef = ptr(true)
	}
	for {
		redirect, keep := "", false
		yes, err := r.yesNo("mailbox.redirect", redirectDef)
		if err != nil {
			return err
		}
		if yes {
			if redirect, err = r.address(v); err != nil {
				return err
			}
			if v.NeedsVerification(redirect) {
				r.line(r.t("mailbox.verify"))
			}
			if v.KeepOffered {
				if keep, err = r.yesNo("mailbox.keep", &v.KeepCopy); err != nil {
					return err
				}
			}
		}
		if err := r.op(r.x.ChooseMailbox(redirect, keep)); err != errRetry {
			return err
		}
		// Refused: ask again with what was just typed as the defaults.
		redirectDef, v.Redirect, v.KeepCopy = ptr(yes), yes, keep
		if yes {
			v.Address = redirect
		}
	}
}

// address asks for the redirect address; an empty line takes the one
// pre-filled. An address ChooseMailbox would refuse is refused here, before
// anything is said about it.
func (r *run) address(v flow.StepView) (string, error) {
	def := v.Address
	prompt := func() string {
		p := r.t("mailbox.address")
		if def != "" {
			p += " [" + sanitize.Text(def) + "]"
		}
		return p + "> "
	}
	for {
		s, err := r.ask(prompt, false)
		if err != nil {
			return "", err
		}
		if s = strings.TrimSpace(s); s == "" {
			if def == "" {
				r.line(r.t("plain.empty"))
				continue
			}
			s = def
		}
		if _, err := v.CheckRedirect(s); err != nil {
			r.fail(err)
			continue
		}
		return s, nil
	}
}

func (r *run) verify() error {
	for {
		s, err := r.ask(r.label("verify.prompt"), false)
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			r.line(r.t("plain.empty"))
			continue
		case "!renvoyer", "!resend":
			switch err := r.op(r.x.ResendRedirect()); {
			case err == nil:
				r.line(r.t("verify.resent"))
			case err != errRetry:
				return err
			}
			continue
		}
		if err := r.op(r.x.VerifyRedirect(s)); err != errRetry {
			return err
		}
	}
}

func (r *run) password(v flow.StepView) error {
	if v.Saved {
		return r.complete(false)
	}
	for {
		pw, err := r.ask(r.label("pw.prompt"), true)
		if err != nil {
			return err
		}
		if pw == "" {
			r.line(r.t("plain.empty"))
			continue
		}
		check := r.x.CheckPassword(pw)
		for _, rule := range check.Rules {
			mark := r.t("plain.pwko") // in words: screen readers skip brackets
			if rule.OK {
				mark = r.t("plain.pwok")
			}
			r.line(mark + " " + i18n.RuleText(r.lang, rule.Rule, r.cfg.Password))
		}
		if !check.OK() {
			r.line(r.t("err.password.policy"))
			continue
		}
		again, err := r.ask(r.label("pw.confirm"), true)
		if err != nil {
			return err
		}
		if again != pw {
			r.line(r.t("pw.mismatch"))
			continue
		}
		r.line(i18n.Finishing(r.lang, v.Reset))
		r.flush() // the directory may take a while: say so first
		if err := r.op(r.x.Finish(r.ctx, pw)); err != errRetry {
			return err
		}
		if d, err := r.x.Dossier(); err == nil && d.PasswordSaved() {
			return r.complete(true) // accepted, the rest failed (and was told): do not ask again
		}
	}
}

// complete finishes a dossier whose password the directory already took.
// failed says an attempt just failed and the user was told: the next one
// waits for Enter rather than failing the same way at once.
func (r *run) complete(failed bool) error {
	r.show = func() { // after !fr / !en at the retry prompt
		r.header(flow.StepPassword)
		r.line(r.t("pw.retry"))
	}
	for {
		if failed {
			r.line(r.t("pw.retry"))
			if _, err := r.ask(r.label("plain.enter"), false); err != nil {
				return err
			}
		}
		r.line(r.t("pw.finishing"))
		r.flush()
		if err := r.op(r.x.Finish(r.ctx, "")); err != errRetry {
			return err
		}
		failed = true
	}
}

// done is the last screen; its first sentence (the title) is printed by
// intro already.
func (r *run) done(v flow.StepView) {
	r.line(r.t("done.login", sanitize.Text(v.Login)))
	if name := sanitize.Text(v.Name); name != "" {
		r.line(r.t("done.name", name))
	}
	if len(r.opts.Services) > 0 {
		r.line(r.t("done.services"))
		for _, s := range r.opts.Services {
			r.line("- " + sanitize.Text(s))
		}
	}
	r.line(r.t("done.notice"))
}

// spoken are the commands also taken without their "!" at a prompt that
// is not a secret: a screen reader at its default punctuation level says
// neither "!" nor "?", so "Type !fr for French" is heard "Type fr".
var spoken = map[string]bool{"fr": true, "en": true, "aide": true, "help": true, "retour": true, "back": true, "renvoyer": true, "resend": true}

// ask writes the prompt and reads a line, handling the commands every
// prompt knows. A secret is never echoed.
func (r *run) ask(prompt func() string, secret bool) (string, error) {
	for {
		if r.werr != nil {
			return "", r.werr
		}
		p := prompt()
		r.write(p)
		r.flush()
		var done <-chan struct{}
		if r.x != nil {
			done = r.x.Done()
		}
		s, err := r.in.readLine(r.ctx, done, p, r.opts.PTY && !secret, r.writeBytes)
		r.write(r.eol) // the prompt line ends here, echo or not, input or not
		if errors.Is(err, errTooLong) {
			r.line(r.t("plain.toolong", MaxLine))
			continue
		}
		if err != nil {
			return "", err
		}
		cmd := strings.ToLower(strings.TrimSpace(s))
		if spoken[cmd] && !secret {
			cmd, s = "!"+cmd, "!"+cmd
		}
		switch cmd {
		case "!fr", "!en":
			r.setLang(cmd[1:])
			if r.show != nil {
				r.show()
			}
			continue
		case "?", "!aide", "!help":
			r.line(r.t("plain.help"))
			if !r.noBack {
				r.line(r.t("plain.back"))
			}
			if r.resend {
				r.line(r.t("plain.resend"))
			}
			continue
		case "!retour", "!back":
			if r.noBack { // said here, the same question asked again
				r.line(r.t("plain.noback"))
				continue
			}
			return "", errBack
		case "!renvoyer", "!resend":
			// Not an answer: said here where nothing can be sent again
			// (the code step, r.x nil after the login prompt, answers it).
			if !r.resend && (r.x != nil || r.noBack) {
				r.line(r.t("plain.noresend"))
				continue
			}
		}
		r.down = nil
		return s, nil
	}
}

// yesNo asks a yes/no question; def, when set, answers an empty line.
func (r *run) yesNo(key string, def *bool) (bool, error) {
	prompt := func() string {
		p := r.t(key) + " " + r.t("plain.yesno")
		if def != nil {
			key := "no"
			if *def {
				key = "yes"
			}
			p += " [" + r.t(key)[:1] + "]"
		}
		return p + "> "
	}
	for {
		s, err := r.ask(prompt, false)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "y", "yes", "o", "oui":
			return true, nil
		case "n", "no", "non":
			return false, nil
		case "":
			if def != nil {
				return *def, nil
			}
		}
		r.line(r.t("plain.badyn"))
	}
}

func (r *run) setLang(lang string) {
	r.lang, r.client.Lang = lang, lang
	if r.x != nil {
		_ = r.x.SetLang(lang) // a failure shows at the next operation
	}
}

func (r *run) t(key string, args ...any) string { return i18n.T(r.lang, key, args...) }

// label is the prompt of a field: its label and "> ", in the language of
// the moment.
func (r *run) label(key string) func() string {
	return func() string { return r.t(key) + "> " }
}

// fail prints the sentence for err.
func (r *run) fail(err error) {
	r.down = nil
	if errors.Is(err, flow.ErrUnavailable) || errors.Is(err, flow.ErrMisconfigured) {
		r.down = err
	}
	for l := range strings.SplitSeq(i18n.Explain(r.lang, err, r.restart(), r.cfg.Helpdesk), "\n") {
		r.line(l)
	}
}

func (r *run) restart() string { return r.command("activate") }

// Suffix, after an SSH user name, asks for plain mode. It is kept in the
// commands plain mode tells the user to type (however the session came
// to plain mode: TERM=dumb, no PTY, the suffix).
const Suffix = "+plain"

// command is the ssh command that logs in as user in plain mode.
func (r *run) command(user string) string {
	return i18n.Command(user+Suffix, r.opts.PublicHost, r.opts.PublicPort)
}

func (r *run) header(s flow.Step) {
	r.line("")
	r.line(i18n.StepIndicator(r.lang, s) + " — " + i18n.StepTitle(r.lang, s))
}

// text prints a Markdown document as clean text, line by line.
func (r *run) text(md []byte) {
	for _, l := range r.opts.Texts.text(md) {
		r.line(l)
	}
}

func (r *run) line(s string) { r.write(s + r.eol) }

func (r *run) write(s string) {
	if r.opts.ASCII {
		s = i18n.ASCII(s)
	}
	if r.werr == nil {
		_, r.werr = io.WriteString(r.w, s)
	}
}

// writeBytes writes the echo of what is typed, at once.
func (r *run) writeBytes(b []byte) {
	if r.werr == nil {
		_, r.werr = r.w.Write(b)
	}
	r.flush()
}

func (r *run) flush() {
	if r.werr == nil {
		r.werr = r.w.Flush()
	}
}

func ptr[T any](v T) *T { return &v }
