// Package i18n holds every sentence a user reads on screen, one catalogue
// per language (fr.go, en.go), and turns flow errors into those sentences.
// The TUI and the plain prompts both read from here.
package i18n

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"activated/flow"
	"activated/internal/sanitize"
)

// Langs are the supported languages, default first.
var Langs = []string{"fr", "en"}

var catalogues = map[string]map[string]string{"fr": fr, "en": en}

// Pick returns the language for a client LANG value ("fr_FR.UTF-8" → "fr"),
// or def when it names no supported language.
func Pick(lang, def string) string {
	if l := base(lang); Names(lang) {
		return l
	}
	if _, ok := catalogues[def]; ok {
		return def
	}
	return Langs[0]
}

// Names tells whether a locale (fr_FR.UTF-8, en) names a language of
// the catalogues; C, C.UTF-8 and POSIX name none.
func Names(locale string) bool {
	_, ok := catalogues[base(locale)]
	return ok
}

// base is a locale's language: "fr" for fr_FR.UTF-8.
func base(locale string) string {
	l := strings.ToLower(locale)
	if i := strings.IndexAny(l, "_.-@"); i >= 0 {
		l = l[:i]
	}
	return l
}

// Other returns the language a switch key moves to.
func Other(lang string) string {
	if lang == "fr" {
		return "en"
	}
	return "fr"
}

// T returns the sentence key in lang, formatted with args. A missing key
// shows itself, so a test can catch it.
func T(lang, key string, args ...any) string {
	s, ok := catalogues[lang][key]
	if !ok {
		s, ok = catalogues["en"][key]
	}
	if !ok {
		return "[" + key + "]"
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Command is the ssh command a user types to come back, "-p" included when
// the port is not 22.
func Command(user, host string, port int) string {
	if port != 0 && port != 22 {
		return fmt.Sprintf("ssh -p %d %s@%s", port, user, host)
	}
	return fmt.Sprintf("ssh %s@%s", user, host)
}

// Error turns an error of a flow operation into a sentence for the user;
// restart is the command that starts over (i18n.Command("activate", …)).
// Unknown errors become a generic sentence: details go to the log only.
func Error(lang string, err error, restart string) string {
	var rl *flow.RateLimitError
	var pr *flow.PasswordRefusedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rl):
		if rl.Mails {
			return T(lang, "err.ratelimit.mails", Wait(lang, rl.Wait))
		}
		return T(lang, "err.ratelimit", Wait(lang, rl.Wait))
	case errors.As(err, &pr):
		return passwordRefused(lang, pr)
	case errors.Is(err, flow.ErrMisconfigured):
		// Before ErrUnavailable, which may wrap it too: waiting will not
		// help. (A dead end: the front ends add the helpdesk.)
		return T(lang, "err.misconfigured")
	}
	for _, e := range []struct {
		err error
		key string
	}{
		{flow.ErrRedirectCodeWrong, "err.verify.wrong"}, // before ErrCodeWrong, which it wraps
		{flow.ErrCodeWrong, "err.code.wrong"},
		{flow.ErrCodeExpired, "err.code.expired"},
		{flow.ErrCodeUsed, "err.code.used"},
		{flow.ErrCodeSuperseded, "err.code.superseded"},
		{flow.ErrCodeRevoked, "err.code.revoked"},
		{flow.ErrCodeFinished, "err.code.finished"},
		{flow.ErrBusy, "err.busy"},
		{flow.ErrClosed, "err.closed"},
		{flow.ErrOrder, "err.order"},
		{flow.ErrNotAccepted, "err.charter"},
		{flow.ErrAddressCharacters, "err.address.characters"},
		{flow.ErrInvalidAddress, "err.address"},
		{flow.ErrRedirectLoop, "err.address.own"},
		{flow.ErrInvalidLogin, "err.login"},
		{flow.ErrLoginIsCode, "err.login.code"},
		{flow.ErrPasswordPolicy, "err.password.policy"},
		{flow.ErrUnavailable, "err.unavailable"},
		{flow.ErrAlreadyActivated, "err.activated"},
		{flow.ErrRedirectConfirmed, "err.redirect.confirmed"},
	} {
		if errors.Is(err, e.err) {
			if strings.Contains(T(lang, e.key), "%s") {
				return T(lang, e.key, restart)
			}
			return T(lang, e.key)
		}
	}
	return T(lang, "err.internal")
}

// passwordRefused says what to change, from the directory's password
// policy, with the directory's own words beside when they say more.
func passwordRefused(lang string, pr *flow.PasswordRefusedError) string {
	var s string
	switch {
	case pr.MinLength > 0:
		s = T(lang, "err.password.short.min", pr.MinLength)
	case pr.Problem == flow.PasswordTooShort:
		s = T(lang, "err.password.short")
	case pr.Problem == flow.PasswordQuality:
		s = T(lang, "err.password.quality")
	case pr.Problem == flow.PasswordInHistory:
		s = T(lang, "err.password.history")
	case pr.Problem == flow.PasswordTooYoung:
		s = T(lang, "err.password.young")
	default:
		return T(lang, "err.password.refused", pr.Reason)
	}
	if pr.Reason != "" {
		s += " " + T(lang, "err.password.said", pr.Reason)
	}
	return s
}

// RuleText is the checklist line of a password rule.
func RuleText(lang string, r flow.Rule, p flow.PasswordPolicy) string {
	switch r {
	case flow.RuleMinLength:
		return T(lang, "pw.rule.min", p.MinLength)
	case flow.RuleMaxLength:
		return T(lang, "pw.rule.max", p.MaxLength)
	case flow.RuleNoLogin:
		return T(lang, "pw.rule.login")
	default:
		return T(lang, "pw.rule.strength")
	}
}

// StepTitle is the title of a step's screen.
func StepTitle(lang string, s flow.Step) string { return T(lang, "step."+s.String()) }

// StepIndicator is "Step 3 of 7" ("Étape 3 sur 7").
func StepIndicator(lang string, s flow.Step) string {
	if s >= flow.StepDone {
		return T(lang, "step.indicator.done")
	}
	return T(lang, "step.indicator", int(s), flow.TotalSteps)
}

// CodeCommand is "ssh CODE@host" in lang, "-p" included when needed.
func CodeCommand(lang, host string, port int) string {
	return Command(T(lang, "code.user"), host, port)
}

// Say is a step's sentence in lang; cmd is the "ssh CODE@host" command
// (CodeCommand) the sentence may carry. A key with a variant for the mode
// (key+"."+mode, e.g. "charter.intro.plain") uses it.
func Say(lang, mode string, s flow.Sentence, cmd string) string {
	key := s.Key
	if _, ok := catalogues[lang][key+"."+mode]; ok && mode != "" {
		key += "." + mode
	}
	switch {
	case s.Command:
		return T(lang, key, cmd)
	case s.Arg != "":
		return T(lang, key, sanitize.Text(s.Arg))
	}
	return T(lang, key)
}

// Finishing is what is said while the directory takes the password: a
// reset saves a new password, it does not activate the account.
func Finishing(lang string, reset bool) string {
	if reset {
		return T(lang, "reset.finishing")
	}
	return T(lang, "pw.finishing")
}

// Ended is the sentence of a session the user left: how to come back, with
// the code from the mail once one was sent (sent), else from the start;
// suffix follows the user name ("+plain" in plain mode).
func Ended(lang string, sent bool, suffix, host string, port int) string {
	user := "activate"
	if sent {
		user = T(lang, "code.user")
	}
	return T(lang, "session.ended", Command(user+suffix, host, port))
}

// Wait is a waiting time in words, rounded up: "58 minutes", "40 seconds".
func Wait(lang string, d time.Duration) string {
	switch {
	case d <= 59*time.Second:
		return T(lang, "wait.seconds", max(1, int((d+time.Second-1)/time.Second)))
	case d <= time.Minute:
		return T(lang, "wait.minute")
	}
	return T(lang, "wait.minutes", int((d+time.Minute-1)/time.Minute))
}

// Explain is Error, followed on a dead end (flow.DeadEnd) by a line
// saying who to ask for help when a helpdesk is configured. Each line is
// sanitized.
func Explain(lang string, err error, restart, helpdesk string) string {
	s := sanitize.Text(Error(lang, err, restart))
	if helpdesk != "" && flow.DeadEnd(err) {
		s += "\n" + sanitize.Text(T(lang, "helpdesk", helpdesk))
	}
	return s
}

// asciiSubst are the non-ASCII signs the screens use, in ASCII.
var asciiSubst = strings.NewReplacer("—", "-", "–", "-", "…", "...", "·", "|", "↑", "^", "↓", "v", "«\u00a0", "\"", "\u00a0»", "\"",
	"«", "\"", "»", "\"", "’", "'", "×", "x", "\u00a0", " ", "▲", "^", "▼", "v", "•", "-", "œ", "oe", "Œ", "OE", "æ", "ae")

// ASCII writes s in ASCII, for a terminal whose charset is not UTF-8:
// the signs above, letters without their accents, anything else as "?".
// Escape sequences pass unchanged.
func ASCII(s string) string {
	s = asciiSubst.Replace(s)
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
