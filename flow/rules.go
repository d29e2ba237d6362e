package flow

import (
	"crypto/rand"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"activated/internal/sanitize"
)

// EndOfDay returns the last second (23:59:59.999999999) of the local day
// that is days after the day of t, in loc. It walks the calendar, not a
// fixed 24 h, so it is right across DST changes.
func EndOfDay(t time.Time, loc *time.Location, days int) time.Time {
	l := t.In(loc)
	next := time.Date(l.Year(), l.Month(), l.Day()+days+1, 0, 0, 0, 0, loc)
	return next.Add(-time.Nanosecond)
}

// SameDayDeadline is "until 23:59 the same day".
func SameDayDeadline(t time.Time, loc *time.Location) time.Time { return EndOfDay(t, loc, 0) }

// NextDayDeadline is "until 23:59 the next day".
func NextDayDeadline(t time.Time, loc *time.Location) time.Time { return EndOfDay(t, loc, 1) }

// Crockford base32 alphabet: no I, L, O, U.
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// CodeLen is the number of symbols of a code: 16 × 5 bits = 80 bits.
const CodeLen = 16

// NewCode returns a fresh code from crypto/rand, grouped for reading aloud:
// XXXX-XXXX-XXXX-XXXX.
func NewCode() string {
	var b [CodeLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[c&31])
	}
	return sb.String()
}

// NormalizeCode turns what a person typed into the canonical 16 symbols:
// case folded, separators (dash, space, dot, underscore) dropped, look-alikes
// mapped (O→0, I and L→1). It returns false when the result is not a
// well-formed code.
func NormalizeCode(s string) (string, bool) {
	if len(s) > 4*CodeLen { // a paste of garbage: do not even look
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '.' || r == '_' || r == '\t' || r == '\u2010' || r == '\u2011' || r == '\u2013':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 127 || strings.IndexRune(codeAlphabet, r) < 0 {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != CodeLen {
		return "", false
	}
	return b.String(), true
}

// ValidLogin accepts the logins a directory uses: 1 to 64 characters of
// letters, digits, dot, dash and underscore, starting with a letter or digit.
func ValidLogin(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '-' || r == '_'):
		default:
			return false
		}
	}
	return true
}

// Affiliations are the eduPersonAffiliation values an account created by
// staff may have: eduPerson's vocabulary, then SUPANN 2021's additions.
func Affiliations() []string {
	return []string{"student", "faculty", "staff", "employee", "member", "affiliate", "alum", "library-walk-in",
		"researcher", "retired", "emeritus", "teacher", "registered-reader"}
}

// CheckAffiliation returns s trimmed and in lower case when it is one of
// Affiliations (or empty: none), else ErrInvalidAffiliation.
func CheckAffiliation(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s != "" && !slices.Contains(Affiliations(), s) {
		return "", ErrInvalidAffiliation
	}
	return s, nil
}

// NormalizeLogin trims and lower-cases a typed login.
func NormalizeLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidMail checks a bare address (local@domain, no display name, no
// control characters, a dot in the domain) and returns it trimmed.
func ValidMail(s string) (string, bool) {
	s, err := CheckMail(s)
	return s, err == nil
}

// CheckMail is ValidMail with the reason: ErrAddressCharacters when the
// address holds a control, format (bidi override, zero-width…), invisible
// or space character, which could make it read as another; else
// ErrInvalidAddress when it is not a bare address.
func CheckMail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || !utf8.ValidString(s) {
		return "", ErrInvalidAddress
	}
	for _, r := range s {
		if r < ' ' || r != ' ' && (sanitize.Drop(r) || unicode.IsSpace(r) || !unicode.IsGraphic(r)) {
			return "", ErrAddressCharacters
		}
	}
	// A space typed between words is seen: the address is just not one.
	if strings.ContainsRune(s, ' ') || !validMail(s) {
		return "", ErrInvalidAddress
	}
	return s, nil
}

func validMail(s string) bool {
	for _, r := range s {
		if r == '<' || r == '>' || r == ',' || r == ';' {
			return false
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	dom := s[at+1:]
	if at < 1 || !strings.Contains(dom, ".") || strings.HasPrefix(dom, ".") || strings.HasSuffix(dom, ".") || strings.Contains(dom, "..") {
		return false
	}
	return true
}

func equalFoldMail(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
