package sshapp

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// A bracketed paste is cut to maxPaste bytes, its end marker kept, and
// what follows passed on; everything else goes through untouched, however
// the input is split into reads.
func TestPasteCap(t *testing.T) {
	long := strings.Repeat("a\x1b[20", maxPaste/2) // holds end-marker prefixes
	in := "x\x1b[A" + "\x1b[200~" + long + "\x1b[201~" + "y" + "\x1b[200~short\x1b[201~" + "\x1b[201~z"
	want := "x\x1b[A" + "\x1b[200~" + long[:maxPaste] + "\x1b[201~" + "y" + "\x1b[200~short\x1b[201~" + "\x1b[201~z"
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
	} {
		got, err := io.ReadAll(newPasteCap(r()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s: got %d bytes, want %d", name, len(got), len(want))
		}
	}
}

// A CSI or DCS sequence keeps at most maxSeparators parameter separators,
// in a paste or not; other bytes pass.
func TestSequenceParametersCapped(t *testing.T) {
	many := strings.Repeat("1;", 40) + "1"
	capped := strings.Repeat("1;", maxSeparators) + strings.Repeat("1", 40-maxSeparators) + "1"
	in := "a;b\x1b[" + many + "m\x1bP" + many + "q\x1b[200~\x1b[" + many + "~\x1b[201~\u011b" + many + "\x1b[1;2H"
	want := "a;b\x1b[" + capped + "m\x1bP" + capped + "q\x1b[200~\x1b[" + capped + "~\x1b[201~\u011b" + many + "\x1b[1;2H"
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
	} {
		got, err := io.ReadAll(newPasteCap(r()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}

// A control string (OSC, DCS, APC…) that never ends is cut to maxString
// bytes: the decoder, which scans an unfinished string again at each
// read, never holds more. Its terminator and what follows pass on.
func TestControlStringCapped(t *testing.T) {
	body := strings.Repeat("a", 100_000)
	for _, intro := range []string{"\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX"} {
		in := "x" + intro + body + "\x07" + "y" + intro + "short\x1b\\" + "z"
		want := "x" + intro + body[:maxString] + "\x07" + "y" + intro + "short\x1b\\" + "z"
		for name, r := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return strings.NewReader(in) },
			"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		} {
			got, err := io.ReadAll(newPasteCap(r()))
			if err != nil {
				t.Fatalf("%q %s: %v", intro, name, err)
			}
			if string(got) != want {
				t.Errorf("%q %s: got %d bytes, want %d", intro, name, len(got), len(want))
			}
		}
	}
}
