package directory

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"activated/flow"
)

func TestRefusal(t *testing.T) {
	for _, tc := range []struct {
		pp     int
		text   string
		want   flow.PasswordRefusedError
		config bool
	}{
		{ppTooShort, "Password fails quality checking policy", flow.PasswordRefusedError{Problem: flow.PasswordTooShort}, false},
		{ppInsufficientQual, "invalid password syntax - password must be at least 20 characters long",
			flow.PasswordRefusedError{Problem: flow.PasswordTooShort, MinLength: 20, Reason: "invalid password syntax - password must be at least 20 characters long"}, false},
		{ppInsufficientQual, "invalid password syntax - password based off of user entry",
			flow.PasswordRefusedError{Problem: flow.PasswordQuality, Reason: "invalid password syntax - password based off of user entry"}, false},
		{ppInsufficientQual, "Failed to update password\n", flow.PasswordRefusedError{Problem: flow.PasswordQuality}, false},
		{ppInHistory, "Password is in history of old passwords", flow.PasswordRefusedError{Problem: flow.PasswordInHistory}, false},
		{ppNone, "password in history", flow.PasswordRefusedError{Problem: flow.PasswordInHistory}, false},
		{ppTooYoung, "Password is too young to change", flow.PasswordRefusedError{Problem: flow.PasswordTooYoung}, false},
		{ppNone, "some server's own words", flow.PasswordRefusedError{Reason: "some server's own words"}, false},
		{ppMustSupplyOld, "Must supply old password to be changed as well as new one", flow.PasswordRefusedError{}, true},
		{ppLocked, "", flow.PasswordRefusedError{}, true},
	} {
		err := refusal(tc.pp, tc.text)
		var pr *flow.PasswordRefusedError
		switch {
		case tc.config:
			if !errors.Is(err, flow.ErrMisconfigured) {
				t.Errorf("refusal(%d, %q) = %v, want ErrMisconfigured", tc.pp, tc.text, err)
			}
		case !errors.As(err, &pr) || *pr != tc.want:
			t.Errorf("refusal(%d, %q) = %+v, want %+v", tc.pp, tc.text, err, tc.want)
		}
	}
}

// The directory's own words reach the user's terminal: escape sequences,
// controls and bidi overrides are dropped, and a long text is cut on a
// rune, never inside one.
func TestRefusalReasonIsSafeToPrint(t *testing.T) {
	err := refusal(ppNone, "bad \x1b]0;owned\x07pass\x1b[2Jword\u202e \r\nagain")
	var pr *flow.PasswordRefusedError
	if !errors.As(err, &pr) {
		t.Fatalf("refusal = %v", err)
	}
	if pr.Reason != "bad password again" {
		t.Errorf("Reason = %q, want %q", pr.Reason, "bad password again")
	}
	err = refusal(ppNone, "a"+strings.Repeat("é", genericRefusalLimit))
	if !errors.As(err, &pr) || !utf8.ValidString(pr.Reason) {
		t.Errorf("a long text cut inside a rune: %q", pr.Reason)
	}
}
