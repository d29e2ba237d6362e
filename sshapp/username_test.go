package sshapp

import "testing"

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  userKind
		code  string
		plain bool
		class string
	}{
		{"activate", userActivate, "", false, "activate"},
		{"Activate", userActivate, "", false, "activate"},
		{"activate+plain", userActivate, "", true, "activate+plain"},
		{"ACTIVATE+PLAIN", userActivate, "", true, "activate+plain"},
		{"k7m2-q9xv-4tab-cdef", userCode, "K7M2Q9XV4TABCDEF", false, "code"},
		{"K7M2Q9XV4TABCDEF+plain", userCode, "K7M2Q9XV4TABCDEF", true, "code+plain"},
		{"staff", userStaff, "", false, "staff"},
		{"Staff", userUnknown, "", false, "unknown"},
		{"staff+plain", userUnknown, "", false, "unknown"},
		{"+plain", userUnknown, "", false, "unknown"},
		{"plain", userUnknown, "", false, "unknown"},
		{"activate+plain+plain", userUnknown, "", false, "unknown"},
		{"root", userUnknown, "", false, "unknown"},
		{"", userUnknown, "", false, "unknown"},
		{"k7m2-q9xv-4tab-cde", userUnknown, "", false, "unknown"}, // 15 symbols
	} {
		u := parseUser(tc.name)
		if u.kind != tc.kind || u.code != tc.code || u.plain != tc.plain || u.class() != tc.class {
			t.Errorf("parseUser(%q) = %+v (class %q); want kind %d, code %q, plain %v, class %q",
				tc.name, u, u.class(), tc.kind, tc.code, tc.plain, tc.class)
		}
	}
}
