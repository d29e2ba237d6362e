package sshapp_test

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"

	"activated/flow"
	"activated/flow/i18n"
)

// A client that starts a bracketed paste and never ends it does not grow
// the server's memory with what it sends: the wizard gets maxPaste bytes
// of it, then still answers.
func TestEndlessPasteKeepsMemoryBounded(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	defer c.Close()
	_, in, out := openSession(t, c, "xterm", map[string]string{"LANG": "en_US.UTF-8"})
	waitOutput(t, "the first screen", out, func(o string) bool { return strings.Contains(o, i18n.StepTitle("en", flow.StepLogin)) })
	runtime.GC()
	before := heapInUse()
	const sent = 24 << 20
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	if _, err := io.WriteString(in, "\x1b[200~"); err != nil {
		t.Fatal(err)
	}
	for range sent / len(chunk) { // returns once the server has read all but its window
		if _, err := in.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	if grown := int64(heapInUse()) - int64(before); grown > sent/2 {
		t.Errorf("an endless paste of %d MB grew the heap by %d MB", sent>>20, grown>>20)
	}
	if _, err := io.WriteString(in, "\x1b[201~"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, "the pasted login", out, func(o string) bool { return strings.Contains(o, "aaaaaaaa") })
}
