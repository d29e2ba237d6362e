package sshapp

import (
	"strings"

	"activated/flow"
	"activated/flow/plain"
)

// userKind is what an SSH username asks for.
type userKind int

const (
	userUnknown  userKind = iota // anything else: a short explanation
	userActivate                 // "activate": the wizard at step 1
	userCode                     // a one-time code: the wizard opening it
	userStaff                    // "staff": staff commands, public key only
)

// plainSuffix asks for the line-based prompts instead of the TUI.
const plainSuffix = plain.Suffix

// user is a parsed SSH username. code holds the normalized code and must
// never be logged: class() is what logs see.
type user struct {
	kind  userKind
	code  string
	plain bool
}

// parseUser classifies an SSH username. "activate" and codes accept the
// "+plain" suffix; letter case does not matter for either.
func parseUser(name string) user {
	if name == "staff" {
		return user{kind: userStaff}
	}
	var u user
	name, u.plain = cutPlain(name)
	if strings.EqualFold(name, "activate") {
		u.kind = userActivate
		return u
	}
	if code, ok := flow.NormalizeCode(name); ok {
		u.kind, u.code = userCode, code
		return u
	}
	return user{kind: userUnknown}
}

// cutPlain takes the "+plain" suffix (any letter case) off name.
func cutPlain(name string) (string, bool) {
	if len(name) > len(plainSuffix) && strings.EqualFold(name[len(name)-len(plainSuffix):], plainSuffix) {
		return name[:len(name)-len(plainSuffix)], true
	}
	return name, false
}

// class names the username for the log without revealing a code or what
// an unknown user typed (it may be a password typed in the wrong place).
func (u user) class() string {
	var c string
	switch u.kind {
	case userActivate:
		c = "activate"
	case userCode:
		c = "code"
	case userStaff:
		c = "staff"
	default:
		return "unknown"
	}
	if u.plain {
		c += plainSuffix
	}
	return c
}
