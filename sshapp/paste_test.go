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
