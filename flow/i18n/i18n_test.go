package i18n

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"activated/flow"
)

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	for k := range fr {
		if _, ok := en[k]; !ok {
			t.Errorf("key %q is in fr.go, not in en.go", k)
		}
	}
	for k := range en {
		if _, ok := fr[k]; !ok {
			t.Errorf("key %q is in en.go, not in fr.go", k)
		}
	}
	for k, v := range fr {
		if strings.Count(v, "%") != strings.Count(en[k], "%") {
			t.Errorf("key %q: fr and en take different arguments:\n%s\n%s", k, v, en[k])
		}
	}
}

func TestErrorSentences(t *testing.T) {
	restart := Command("activate", "activate.example.org", 22)
	errs := []error{
		flow.ErrCodeWrong, flow.ErrCodeExpired, flow.ErrCodeUsed, flow.ErrCodeSuperseded, flow.ErrCodeRevoked,
		flow.ErrCodeFinished, flow.ErrBusy, flow.ErrClosed, flow.ErrOrder, flow.ErrNotAccepted, flow.ErrInvalidAddress, flow.ErrAddressCharacters,
		flow.ErrInvalidLogin, flow.ErrLoginIsCode, flow.ErrPasswordPolicy, flow.ErrUnavailable, flow.ErrMisconfigured, flow.ErrAlreadyActivated,
		&flow.RateLimitError{Wait: 90 * time.Second}, &flow.PasswordRefusedError{Reason: "too short"},
		fmt.Errorf("wrapped: %w", flow.ErrCodeExpired), errors.New("boom"),
	}
	for _, lang := range Langs {
		seen := map[string]error{}
		for _, err := range errs {
			s := Error(lang, err, restart)
			if s == "" || strings.Contains(s, "%!") || strings.Contains(s, "[err.") {
				t.Errorf("%s %v: %q", lang, err, s)
			}
			if prev, ok := seen[s]; ok && !errors.Is(err, prev) && !errors.Is(prev, err) && err.Error() != "wrapped: code: expired" {
				t.Errorf("%s: %v and %v read the same: %q", lang, prev, err, s)
			}
			seen[s] = err
		}
		if s := Error(lang, flow.ErrCodeExpired, restart); !strings.Contains(s, restart) {
			t.Errorf("%s: the expired-code sentence does not say how to get a new code: %q", lang, s)
		}
		// An old invitation typed again once the account is active: its
		// owner may have come back for a new password, which step 1 gives.
		if s := Error(lang, flow.ErrCodeFinished, restart); !strings.Contains(s, restart) {
			t.Errorf("%s: the finished-code sentence does not say how to get a new password: %q", lang, s)
		}
		if s := Error(lang, errors.New("ldap: 10.0.0.1 secret"), restart); strings.Contains(s, "10.0.0.1") {
			t.Errorf("%s: an internal error leaks its details: %q", lang, s)
		}
	}
	if Error("fr", nil, restart) != "" {
		t.Error("nil error gives a sentence")
	}
}

func TestPickAndCommand(t *testing.T) {
	for in, want := range map[string]string{"fr_FR.UTF-8": "fr", "en_US.UTF-8": "en", "C": "fr", "": "fr", "EN": "en", "de_DE": "fr"} {
		if got := Pick(in, "fr"); got != want {
			t.Errorf("Pick(%q) = %q, want %q", in, got, want)
		}
	}
	if Pick("", "en") != "en" || Pick("xx", "zz") != "fr" {
		t.Error("default language")
	}
	if Other("fr") != "en" || Other("en") != "fr" {
		t.Error("Other")
	}
	if got := Command("activate", "h.example", 22); got != "ssh activate@h.example" {
		t.Error(got)
	}
	if got := Command("ABCD", "h.example", 2222); got != "ssh -p 2222 ABCD@h.example" {
		t.Error(got)
	}
	if T("fr", "no.such.key") != "[no.such.key]" {
		t.Error("a missing key does not show itself")
	}
	if StepIndicator("en", flow.StepCharter) != "Step 3 of 7" || StepIndicator("fr", flow.StepDone) == "" {
		t.Error(StepIndicator("en", flow.StepCharter))
	}
	for _, r := range []flow.Rule{flow.RuleMinLength, flow.RuleMaxLength, flow.RuleNoLogin, flow.RuleStrength} {
		if s := RuleText("fr", r, flow.DefaultPasswordPolicy); strings.Contains(s, "%!") || s == "" {
			t.Errorf("rule %s: %q", r, s)
		}
	}
}

func TestPasswordRefusedSays(t *testing.T) {
	for _, tc := range []struct {
		err  *flow.PasswordRefusedError
		want []string // in English
		not  string
	}{
		{&flow.PasswordRefusedError{Problem: flow.PasswordQuality, MinLength: 20, Reason: "password must be at least 20 characters long"},
			[]string{"at least 20 characters", `says: "password must be at least 20 characters long"`}, ""},
		{&flow.PasswordRefusedError{Problem: flow.PasswordTooShort}, []string{"too short"}, "says"},
		{&flow.PasswordRefusedError{Problem: flow.PasswordInHistory}, []string{"already used"}, "says"},
		{&flow.PasswordRefusedError{Problem: flow.PasswordQuality, Reason: "password based off of user entry"},
			[]string{"too close to your name", "password based off of user entry"}, ""},
		{&flow.PasswordRefusedError{Problem: flow.PasswordTooYoung}, []string{"too recently"}, ""},
		{&flow.PasswordRefusedError{Reason: "no reason known"}, []string{"refused this password: no reason known"}, ""},
	} {
		s := Error("en", fmt.Errorf("set password: %w", tc.err), "")
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("%+v: %q does not say %q", tc.err, s, w)
			}
		}
		if tc.not != "" && strings.Contains(s, tc.not) {
			t.Errorf("%+v: %q says %q", tc.err, s, tc.not)
		}
		if fr := Error("fr", tc.err, ""); fr == s || strings.Contains(fr, "%!") {
			t.Errorf("French: %q", fr)
		}
	}
	if s := Error("fr", &flow.PasswordRefusedError{MinLength: 20}, ""); !strings.Contains(s, "au moins 20 caractères") {
		t.Errorf("French min length: %q", s)
	}
}

func TestMisconfiguredIsNotAnOutage(t *testing.T) {
	// The session wraps what the directory says in ErrUnavailable: the
	// configuration error wins, for waiting will not cure it.
	err := fmt.Errorf("%w: set password: %w", flow.ErrUnavailable,
		fmt.Errorf("%w: the directory demands an encrypted connection", flow.ErrMisconfigured))
	for _, lang := range Langs {
		s := Error(lang, err, "")
		if s != T(lang, "err.misconfigured") || s == T(lang, "err.unavailable") {
			t.Errorf("%s: %q", lang, s)
		}
		if strings.Contains(s, "encrypted") {
			t.Errorf("%s: the user reads the log's details: %q", lang, s)
		}
	}
}

// The mail limit speaks of mails and of minutes, not of attempts and
// "57m58s"; dead ends give the helpdesk, other errors do not.
func TestMailLimitAndHelpdesk(t *testing.T) {
	err := &flow.RateLimitError{Wait: 57*time.Minute + 58*time.Second, Mails: true}
	got := Explain("en", err, "ssh activate@host", "Call 1234")
	want := T("en", "err.ratelimit.mails", "58 minutes") + "\n" + T("en", "helpdesk", "Call 1234")
	if got != want {
		t.Errorf("mail limit: %q, want %q", got, want)
	}
	if got := Error("fr", &flow.RateLimitError{Wait: 40 * time.Second}, ""); got != T("fr", "err.ratelimit", "40 secondes") {
		t.Errorf("attempts: %q", got)
	}
	for _, e := range []error{flow.ErrCodeRevoked, flow.ErrCodeExpired, flow.ErrUnavailable, flow.ErrClosed} {
		if got := Explain("fr", e, "x", "Call 1234"); !strings.HasSuffix(got, "\nCall 1234") {
			t.Errorf("%v: no helpdesk in %q", e, got)
		}
	}
	if got := Explain("en", flow.ErrCodeWrong, "x", "Call 1234"); strings.Contains(got, "1234") {
		t.Errorf("a typo is no dead end: %q", got)
	}
}

// A session closed by a staff revoke says the same in every language, and
// tells the user the way back the revoked code tells them when they come
// again: only IT staff can start it again.
func TestClosedSessionSaysWhoCanRestart(t *testing.T) {
	for _, lang := range Langs {
		closed, revoked := Error(lang, flow.ErrClosed, ""), Error(lang, flow.ErrCodeRevoked, "")
		if !strings.Contains(closed, revoked) {
			t.Errorf("%s: a session closed by a revoke reads %q, without the way back %q", lang, closed, revoked)
		}
	}
}

// The helpdesk is free text that carries its own words (SPEC's example is
// "Assistance : 04 67 00 00 00 · assistance@univ.fr"): it is shown as
// written, never behind a second label ("Assistance : Assistance : …").
func TestHelpdeskShownAsWritten(t *testing.T) {
	const h = "Assistance : 04 67 00 00 00 · assistance@univ.fr"
	for _, lang := range []string{"fr", "en"} {
		got := Explain(lang, flow.ErrCodeRevoked, "x", h)
		if !strings.HasSuffix(got, "\n"+h) || strings.Count(got, "Assistance") != 1 {
			t.Errorf("%s: %q", lang, got)
		}
	}
}
