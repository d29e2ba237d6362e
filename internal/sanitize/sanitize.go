// Package sanitize owns the cleaning of untrusted strings (names from LDAP,
// typed addresses, anything a user or a directory controls) before they
// reach a terminal or a log line: escape sequences are stripped, then every
// control rune, format character (bidi overrides, zero-width characters),
// default-ignorable code point and line separator is dropped.
package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text returns s fit to print on one line of a terminal: ANSI/ECMA-48
// escape sequences (CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and 8-bit
// forms, and two-byte ESC sequences) are removed whole, then control runes
// (C0, DEL, C1, so also newlines and tabs) and every other rune Drop
// names (format characters such as bidi controls and zero-width ones,
// default-ignorable code points, U+2028, U+2029) are dropped. Invalid
// UTF-8 becomes U+FFFD.
func Text(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
			i++
		case r == 0x1b:
			i += escapeLen(s[i:])
		case r == 0x9b: // 8-bit CSI
			i += n + csiLen(s[i+n:])
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // 8-bit DCS, SOS, OSC, PM, APC
			i += n + stringLen(s[i+n:])
		case Drop(r):
			i += n
		default:
			b.WriteString(s[i : i+n])
			i += n
		}
	}
	return b.String()
}

// clean reports whether s has nothing to remove (the common case).
func clean(s string) bool {
	for i, r := range s {
		if (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) || Drop(r) {
			return false
		}
	}
	return true
}

// Drop tells whether Text drops the rune r wherever it stands: a control
// rune (C0, DEL, C1); a format character (category Cf: bidi controls,
// zero-width space and joiners U+200B–U+200D, word joiner U+2060, BOM
// U+FEFF, soft hyphen U+00AD, tag characters U+E0000–U+E007F…); another
// default-ignorable code point (Hangul fillers U+115F, U+1160, U+3164,
// U+FFA0, combining grapheme joiner U+034F, variation selectors…); or the
// line and paragraph separators U+2028, U+2029. All of these are invisible
// or break a line, so a name or an address holding one could pass for
// another. Line editors use Drop to filter typed input one rune at a time.
func Drop(r rune) bool {
	if r < 0xa0 {
		return r < 0x20 || r >= 0x7f // C0, DEL, C1
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// escapeLen is the length of the escape sequence at the start of s (s[0]
// is ESC), ESC alone included.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		return 2 + csiLen(s[2:])
	case ']', 'P', 'X', '^', '_':
		return 2 + stringLen(s[2:])
	}
	// nF sequences: intermediates 0x20–0x2F, then one final byte 0x30–0x7E.
	i := 1
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// csiLen is the length of a CSI body: parameter bytes 0x30–0x3F,
// intermediate bytes 0x20–0x2F, one final byte 0x40–0x7E. A malformed body
// ends at the first byte that does not fit.
func csiLen(s string) int {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// stringLen is the length of a control string body (OSC, DCS...) up to and
// including its terminator: BEL, ESC \ or 8-bit ST; or the whole rest of s
// when it is not terminated.
func stringLen(s string) int {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == 0x07:
			return i + 1
		case s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\':
			return i + 2
		case s[i] == 0x1b:
			return i // a new sequence starts: let the caller strip it
		case strings.HasPrefix(s[i:], "\u009c"):
			return i + 2
		}
	}
	return len(s)
}
