package flow

import (
	"errors"
	"strings"
)

// This file is the order of the procedure and what each step shows: the
// TUI and plain mode draw a StepView and read input, nothing more, so they
// cannot disagree on a step's sentences, choices, pre-fills, way back or
// on which errors end a session.

// Step is a step of the procedure, numbered as in SPEC.md.
type Step int

const (
	StepLogin          Step = 1 // type the login
	StepRecoveryCode   Step = 2 // a code was mailed to the recovery address
	StepCharter        Step = 3 // read and accept the IT charter
	StepDirectory      Step = 4 // public directory: appear or not
	StepMailbox        Step = 5 // mailbox notice (staff) and optional redirect
	StepVerifyRedirect Step = 6 // type the code mailed to the redirect address
	StepPassword       Step = 7 // choose the password
	StepDone           Step = 8 // the account is active
)

// TotalSteps is the number of steps a user goes through before the
// confirmation screen ("Step 3 of 7").
const TotalSteps = 7

var stepNames = map[Step]string{
	StepLogin: "login", StepRecoveryCode: "recovery-code", StepCharter: "charter",
	StepDirectory: "directory", StepMailbox: "mailbox", StepVerifyRedirect: "verify-redirect",
	StepPassword: "password", StepDone: "done",
}

// String returns a stable machine name for the step (used in JSON and logs).
func (s Step) String() string {
	if n, ok := stepNames[s]; ok {
		return n
	}
	return "unknown"
}

// Next derives the step the user must do now. It is the only place that
// decides the order of the procedure.
func (d Dossier) Next() Step {
	switch {
	case d.Resetting() && (d.CharterOnly || d.ResetCharter && d.CharterAcceptedAt.IsZero()):
		return StepCharter // changed since the last acceptance
	case d.Resetting():
		return StepPassword
	case !d.Activated.IsZero():
		return StepDone
	case d.Opened.IsZero():
		return StepRecoveryCode
	case d.CharterAcceptedAt.IsZero():
		return StepCharter
	case !d.DirectoryChosen:
		return StepDirectory
	case !d.MailboxChosen:
		return StepMailbox
	case d.NeedsRedirectVerification() && !d.RedirectVerified:
		return StepVerifyRedirect
	default:
		return StepPassword
	}
}

// Back is the step Esc (TUI) or !back (plain mode) leads to from step;
// 0 means there is no way back. Never back to the login or the code once
// the dossier is open, and never to the verification of a redirect
// already verified.
func Back(step Step) Step {
	switch step {
	case StepRecoveryCode:
		return StepLogin
	case StepDirectory, StepMailbox:
		return step - 1
	case StepVerifyRedirect, StepPassword:
		return StepMailbox
	}
	return 0
}

// Show is the step to show when the user asked for want (an earlier step,
// through Back; 0 = none): want when it is a step of an open dossier that
// is done and may be changed, else the step to do now.
func (d Dossier) Show(want Step) Step {
	n := d.Next()
	if d.Resetting() || !d.Activated.IsZero() {
		return n // a reset goes straight on: charter (if due), password, end
	}
	if want >= StepCharter && want < n && want != StepVerifyRedirect {
		return want
	}
	return n
}

// After is the step shown once step is done: the next one pre-filled when
// the user went back over it, else the step to do now.
func (d Dossier) After(step Step) Step { return d.Show(step + 1) }

// Sentence is one sentence of a step: a catalogue key (flow/i18n) and its
// argument. Command asks for the "ssh CODE@host" command as the argument.
type Sentence struct {
	Key     string
	Arg     string
	Command bool
}

// StepView is what a step shows for a dossier: its sentences, its choices
// with their pre-fills, the fields that apply, where Back leads.
type StepView struct {
	Step  Step
	Back  Step       // 0: no way back
	Intro []Sentence // above the fields, in order

	// StepCharter: the charter (Markdown) and whether it was accepted.
	Charter  []byte
	Accepted bool

	// StepDirectory: Chosen tells whether Public is a previous answer.
	Chosen, Public bool

	// StepMailbox. KeepOffered: the account has an institutional mailbox,
	// so a copy can be kept there; without one the question is not asked.
	Redirect    bool   // redirect the mail (pre-ticked)
	Address     string // the redirect address, pre-filled
	Verified    bool   // Address is the redirect, verified already
	KeepOffered bool
	KeepCopy    bool // keep a copy (pre-ticked)
	Recovery    []string

	// StepPassword: the rules, all unmet (CheckPassword gives their live
	// state); Saved: the directory took the password already, only the rest
	// of the activation is left; Reset: a password reset of an active
	// account, not its activation.
	Rules []RuleResult
	Saved bool
	Reset bool

	// StepDone: what the account now is (StepMailbox: Mail, the
	// institutional address).
	Login, Name, Mail string
}

// CheckRedirect is ChooseMailbox's check of a redirect address, for a
// front end to refuse it as soon as it is typed: a valid address, not one
// that would send the mail back to the institution's own domain.
func (v StepView) CheckRedirect(addr string) (string, error) {
	a, err := CheckMail(addr)
	if err == nil && loops(v.Mail, a) {
		err = ErrRedirectLoop
	}
	return a, err
}

// View is what step shows for dossier d; front ends pass d.Show(want).
// Before a dossier is open (steps 1 and 2) d is empty, or holds only the
// login typed at step 1: then the code step says a code was mailed.
func (s *Service) View(d Dossier, step Step) StepView {
	v := StepView{Step: step, Back: Back(step)}
	if d.Resetting() {
		v.Back = 0
	}
	say := func(key string) { v.Intro = append(v.Intro, Sentence{Key: key}) }
	switch step {
	case StepLogin:
		say("login.intro")
	case StepRecoveryCode:
		if d.Login != "" {
			say("code.sent")
			v.Intro = append(v.Intro, Sentence{Key: "code.later", Command: true})
		}
	case StepCharter:
		if d.Resetting() {
			say("reset.charter")
		}
		say("charter.intro")
		v.Charter, v.Accepted = s.cfg.Charter, !d.CharterAcceptedAt.IsZero()
	case StepDirectory:
		say("directory.question")
		v.Chosen, v.Public = d.DirectoryChosen, d.PublicDirectory
	case StepMailbox:
		if d.IsStaff(s.cfg.StaffAffiliations) {
			say("mailbox.staff")
		}
		v.Recovery = d.RecoveryMails
		v.Redirect, v.Address, v.Verified = d.Redirect != "", d.Redirect, d.Redirect != "" && d.RedirectVerified
		if v.Address == "" && len(d.RecoveryMails) > 0 {
			v.Address = d.RecoveryMails[0]
		}
		v.KeepOffered, v.Mail = d.Mail != "", d.Mail
		v.KeepCopy = v.KeepOffered && (!d.MailboxChosen || d.Redirect == "" || d.KeepCopy)
	case StepVerifyRedirect:
		v.Intro = append(v.Intro, Sentence{Key: "verify.sent", Arg: d.Redirect})
	case StepPassword:
		v.Saved, v.Reset = d.PasswordSaved(), d.Resetting()
		switch {
		case d.Resetting():
			say("reset.intro")
			v.Rules = s.cfg.Password.Check("", d.Login).Rules
		case v.Saved:
			say("pw.retry")
		default:
			say("pw.intro")
			v.Rules = s.cfg.Password.Check("", d.Login).Rules
		}
	case StepDone:
		v.Login, v.Name, v.Mail = d.Login, d.DisplayName, d.Mail
		switch d.Renewed { // a reset, not the activation
		case "password":
			say("reset.done")
			return v
		case "charter":
			say("charter.done")
			return v
		}
		say("done.title")
		if d.Mail != "" {
			v.Intro = append(v.Intro, Sentence{Key: "done.mail", Arg: d.Mail})
		}
		switch {
		case d.Redirect != "" && d.KeepCopy:
			v.Intro = append(v.Intro, Sentence{Key: "done.redirect.copy", Arg: d.Redirect})
		case d.Redirect != "":
			v.Intro = append(v.Intro, Sentence{Key: "done.redirect", Arg: d.Redirect})
		}
	}
	return v
}

// NeedsVerification tells whether redirecting to addr would need a code
// mailed to it: addr differs from every recovery address, and is not the
// redirect verified already.
func (v StepView) NeedsVerification(addr string) bool {
	addr = strings.TrimSpace(addr)
	if v.Verified && equalFoldMail(addr, v.Address) {
		return false // confirmed again: ChooseMailbox keeps it verified
	}
	return Dossier{Redirect: addr, RecoveryMails: v.Recovery}.NeedsRedirectVerification()
}

// Ends tells whether err, returned by an operation of session x, ends the
// session: it was closed, or its dossier can go no further (revoked,
// expired, active). A typed code that is expired or revoked does not end
// it when the dossier itself goes on.
func (x *Session) Ends(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrClosed), x.closed():
		return true
	case !deadEnd(err):
		return false
	}
	d, derr := x.Dossier()
	if derr != nil {
		return true
	}
	st := d.StateAt(x.svc.clock.Now())
	return st == StateExpired || st == StateRevoked || st == StateActivated
}

// OpenEnds tells whether err, returned by Open, ends the session before a
// dossier is open: nothing the user may type next can help (the account
// is active, or staff revoked the dossier: no new code will come).
func OpenEnds(err error) bool {
	return errors.Is(err, ErrCodeFinished) || errors.Is(err, ErrCodeRevoked)
}

func deadEnd(err error) bool {
	for _, e := range []error{ErrCodeExpired, ErrCodeRevoked, ErrCodeFinished, ErrAlreadyActivated} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CodeFromPaste is the code in what a user pasted into a code field: the
// whole command from the mail ("ssh -p 2222 CODE@host", or its screen
// reader line "ssh -p 2222 CODE+plain@host") gives CODE.
func CodeFromPaste(s string) string {
	f := strings.Fields(s)
	if len(f) < 2 && !strings.Contains(s, "@") {
		return s
	}
	last := f[len(f)-1]
	if i := strings.LastIndexByte(last, '@'); i > 0 {
		code, _, _ := strings.Cut(last[:i], "+") // no code has a +
		return code
	}
	return s
}

// loops tells whether redirecting the mail of the institutional address
// mail to addr would send it back to the institution: mail itself or any
// address at its mail domain.
func loops(mail, addr string) bool {
	at := strings.LastIndexByte(mail, '@')
	if addr == "" || at < 0 {
		return false
	}
	a := strings.ToLower(addr)
	return a == strings.ToLower(mail) || strings.HasSuffix(a, strings.ToLower(mail[at:])) || strings.HasSuffix(a, "."+strings.ToLower(mail[at+1:]))
}

// mailLimit marks a rate limit as the limit of mails for one login.
func mailLimit(err error) error {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		rl.Mails = true
	}
	return err
}

// DeadEnd tells whether err leaves the user nothing to do on their own:
// the dossier revoked or expired, a limit reached, the service unavailable.
// Every such sentence gives the helpdesk.
func DeadEnd(err error) bool {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	for _, e := range []error{ErrCodeRevoked, ErrCodeExpired, ErrClosed, ErrUnavailable, ErrMisconfigured} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
