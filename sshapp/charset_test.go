package sshapp

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLatinCharset(t *testing.T) {
	for _, c := range []struct {
		lang, want string
	}{
		{"fr_FR.ISO-8859-1", "ISO 8859-1"},
		{"fr_FR.iso88591", "ISO 8859-1"},
		{"fr_FR.ISO-8859-15@euro", "ISO 8859-15"},
		{"fr_FR@euro", "ISO 8859-15"},
		{"fr_FR.CP1252", "Windows 1252"},
		{"fr_FR.UTF-8", ""},
		{"fr_FR", ""},
		{"ru_RU.KOI8-R", ""}, // not Latin: left alone
	} {
		got := ""
		if cm := latinCharset([]string{"LANG=" + c.lang}); cm != nil {
			got = cm.String()
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.lang, got, c.want)
		}
	}
}

// chunks reads one given chunk per Read, as a client's packets come.
type chunks [][]byte

func (c *chunks) Read(b []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(b, (*c)[0])
	if n == len((*c)[0]) {
		*c = (*c)[1:]
	} else {
		(*c)[0] = (*c)[0][n:]
	}
	return n, nil
}

func TestTypedInputLatin1(t *testing.T) {
	env := []string{"LANG=fr_FR.ISO-8859-1"}
	read := func(in ...[]byte) string {
		c := chunks(in)
		b, err := io.ReadAll(typedInput(&c, env))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Latin-1 keys, one packet each: each decoded at once (an "é" is
	// not held back for the next key, as the start of UTF-8 would be).
	if got := read([]byte("caf"), []byte{0xe9}, []byte(" cr"), []byte{0xe8}, []byte("me\r")); got != "café crème\r" {
		t.Errorf("latin-1 keys: %q", got)
	}
	// UTF-8 from a terminal whose LANG says otherwise passes as it is,
	// escape sequences too.
	if got := read([]byte("café \x1b[A crème\r")); got != "café \x1b[A crème\r" {
		t.Errorf("UTF-8: %q", got)
	}
	// A long UTF-8 paste that a full read cuts inside a character is
	// joined again ("x" first: the 4,096th byte starts an "é").
	long := "x" + strings.Repeat("é", 3000)
	if got := read([]byte(long)); got != long {
		t.Errorf("a cut UTF-8 paste came out as %d bytes, want %d", len(got), len(long))
	}
	// A UTF-8 client is read untouched.
	var b bytes.Buffer
	if r := typedInput(iotest.OneByteReader(strings.NewReader("x\xe9y")), []string{"LANG=fr_FR.UTF-8"}); r != nil {
		if _, err := io.Copy(&b, r); err != nil || b.String() != "x\xe9y" {
			t.Errorf("UTF-8 client: %q %v", b.String(), err)
		}
	}
}
