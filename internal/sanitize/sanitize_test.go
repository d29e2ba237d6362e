package sanitize

import (
	"strings"
	"testing"
	"unicode"
)

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"Élodie Dupont", "Élodie Dupont"},
		{"a\x1b[31mred\x1b[0m", "ared"},
		{"x\x1b[2J\x1b[Hy", "xy"},
		{"\x1b[?1049h", ""},
		{"title\x1b]0;pwned\x07end", "titleend"},
		{"osc\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "osclink"},
		{"dcs\x1bPq#0;2;0;0;0\x1b\\done", "dcsdone"},
		{"apc\x1b_secret\x1b\\ok", "apcok"},
		{"two\x1bcbyte", "twobyte"},      // RIS
		{"charset\x1b(Bok", "charsetok"}, // nF
		{"eight\u009b31mbit", "eightbit"},
		{"osc8\u009d0;x\u009cend", "osc8end"},
		{"line\r\nbreak\ttab\x00nul\x7fdel\x08bs", "linebreaktabnuldelbs"},
		{"bidi\u202egnp.exe\u202c", "bidignp.exe"},
		{"iso\u2066late\u2069 \u200emark\u200f", "isolate mark"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"keep \uFFFD", "keep \uFFFD"},
		{"trailing\x1b", "trailing"},
		{"unterminated\x1b]0;title", "unterminated"},
		{"csi cut\x1b[12", "csi cut"},
		{"zero\u200bwidth\u200c\u200d\u2060\ufeffjoin", "zerowidthjoin"},
		{"soft\u00adhyphen", "softhyphen"},
		{"Jeanne\u2028Bcc\u2029x", "JeanneBccx"},
		{"tag\U000E0041\U000E0064\U000E007Fs", "tags"},
		{"hangul\u3164filler\u115f\u1160\uffa0", "hangulfiller"},
		{"cgj\u034fvs\ufe0f\U000E0100", "cgjvs"},
		{"mongolian\u180evowel", "mongolianvowel"},
		{"Élodie Łukasz Ñandú 李 😀", "Élodie Łukasz Ñandú 李 😀"},
	}
	for _, c := range cases {
		if got := Text(c.in); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever the input, the output holds no control rune and no bidi control.
func TestTextNoControls(t *testing.T) {
	var b strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		b.WriteRune(r)
	}
	b.WriteString("\xff\xfe\x1b[")
	out := Text(b.String())
	for _, r := range out {
		if unicode.IsControl(r) || Drop(r) {
			t.Fatalf("output holds %U", r)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("a\x1b[31mb\u202e\x07")
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		for _, r := range out {
			if unicode.IsControl(r) || Drop(r) {
				t.Fatalf("Text(%q) holds %U", s, r)
			}
		}
		if Text(out) != out {
			t.Fatalf("Text is not idempotent on %q", s)
		}
	})
}
