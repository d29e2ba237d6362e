package directory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/internal/sanitize"
)

// OIDs the adapter relies on, also checked by Check in the root DSE.
const (
	oidPasswordModify = "1.3.6.1.4.1.4203.1.11.1"            // RFC 3062 extended operation
	oidPasswordPolicy = ldap.ControlTypeBeheraPasswordPolicy // draft-behera request/response control
)

// Error values of the draft-behera password policy response control.
const (
	ppExpired           = 0 // passwordExpired
	ppLocked            = 1 // accountLocked
	ppChangeAfterReset  = 2 // changeAfterReset
	ppModNotAllowed     = 3 // passwordModNotAllowed
	ppMustSupplyOld     = 4 // mustSupplyOldPassword
	ppInsufficientQual  = 5 // insufficientPasswordQuality
	ppTooShort          = 6 // passwordTooShort
	ppTooYoung          = 7 // passwordTooYoung
	ppInHistory         = 8 // passwordInHistory
	ppNone              = -1
	genericRefusalLimit = 200 // longest directory text passed to a user
)

// passwordModify sets dn's password with the Password Modify extended
// operation, requesting the password policy control. go-ldap's
// PasswordModify drops response controls on an error result; sent as a
// plain extended request, the result packet stays in the *ldap.Error, and
// the control is read from it. It returns the LDAP error and the policy's
// error value (ppNone when the server sent none).
func passwordModify(c *ldap.Conn, dn, password string) (int, error) {
	val := ber.Encode(ber.ClassContext, ber.TypePrimitive, 1, nil, "Password Modify Request")
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Password Modify Request")
	seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, dn, "User Identity"))
	seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, password, "New Password"))
	val.AppendChild(seq)
	req := ldap.NewExtendedRequest(oidPasswordModify, val)
	req.Controls = []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}
	_, err := c.Extended(req)
	return policyError(err), err
}

// policyError returns the error value of the password policy control in
// the result that err carries (ppNone when there is none).
func policyError(err error) int {
	var le *ldap.Error
	if !errors.As(err, &le) || le.Packet == nil || len(le.Packet.Children) < 3 {
		return ppNone
	}
	for _, p := range le.Packet.Children[2].Children {
		ctl, derr := ldap.DecodeControl(p)
		if pp, ok := ctl.(*ldap.ControlBeheraPasswordPolicy); derr == nil && ok {
			return int(pp.Error)
		}
	}
	return ppNone
}

// unexplained389 is all 389-ds says when its policy refuses a Password
// Modify; it gives the reason on a Modify of userPassword only.
const unexplained389 = "Failed to update password"

// explain389 asks 389-ds why it refused: the same password as a Modify of
// userPassword, which 389 checks against the same policy and hashes (it
// never stores a cleartext value), and refuses with the reason ("password
// must be at least 20 characters long"). Should the Modify pass, the
// password is set, which is what was asked.
func explain389(c *ldap.Conn, dn, password string) (int, error) {
	m := ldap.NewModifyRequest(dn, []ldap.Control{ldap.NewControlBeheraPasswordPolicy()})
	m.Replace("userPassword", []string{password})
	err := c.Modify(m)
	return policyError(err), err
}

// minLengthText finds the length a directory's text requires: 389-ds
// says "password must be at least 20 characters long".
var minLengthText = regexp.MustCompile(`(?i)at least (\d+) (?:characters|chars)`)

// historyText is 389-ds' "password in history".
var historyText = regexp.MustCompile(`(?i)password in history`)

// genericTexts are directory texts that say no more than the policy's
// error value (OpenLDAP's ppolicy, 389-ds' Password Modify).
var genericTexts = []string{
	"failed to update password",
	"password fails quality checking policy",
	"password is too short for policy",
	"password is in history of old passwords",
	"password in history",
	"password is too young to change",
	"invalid password syntax",
	"constraint violation",
}

// refusal turns a result 19 (constraint violation) of Password Modify into
// what the user can act on: a *flow.PasswordRefusedError when another
// password may pass, flow.ErrMisconfigured when the policy refuses any
// change by the service (expired, locked, old password required, changes
// not allowed).
func refusal(pp int, text string) error {
	// The directory's words are shown to the user: fit for a terminal.
	text = strings.TrimSpace(sanitize.Text(text))
	pr := &flow.PasswordRefusedError{Reason: text}
	if m := minLengthText.FindStringSubmatch(text); m != nil {
		pr.MinLength, _ = strconv.Atoi(m[1])
		pr.Problem = flow.PasswordTooShort
	}
	if pp == ppNone && historyText.MatchString(text) { // 389-ds sends no control then
		pp = ppInHistory
	}
	switch pp {
	case ppTooShort:
		pr.Problem = flow.PasswordTooShort
	case ppInsufficientQual:
		if pr.Problem == flow.PasswordUnexplained {
			pr.Problem = flow.PasswordQuality
		}
	case ppInHistory:
		pr.Problem = flow.PasswordInHistory
	case ppTooYoung:
		pr.Problem = flow.PasswordTooYoung
	case ppExpired, ppLocked, ppChangeAfterReset, ppModNotAllowed, ppMustSupplyOld:
		return fmt.Errorf("%w: the password policy refuses the service account's change (%s): "+
			"check the policy that applies to the entry (pwdAllowUserChange, pwdSafeModify, lockout), %s",
			flow.ErrMisconfigured, ppName(pp), text)
	}
	if pr.Problem != flow.PasswordUnexplained && isGeneric(text) {
		pr.Reason = ""
	}
	if r := []rune(pr.Reason); len(r) > genericRefusalLimit {
		pr.Reason = string(r[:genericRefusalLimit]) + "…"
	}
	return pr
}

func isGeneric(text string) bool {
	t := strings.ToLower(strings.TrimRight(text, ". "))
	if t == "" {
		return true
	}
	for _, g := range genericTexts {
		if t == g {
			return true
		}
	}
	return false
}

func ppName(pp int) string {
	if s, ok := ldap.BeheraPasswordPolicyErrorMap[int8(pp)]; ok {
		return s
	}
	return "error " + strconv.Itoa(pp)
}
