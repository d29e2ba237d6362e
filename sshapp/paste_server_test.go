package sshapp_test

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

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

// A CSI sequence with more parameters than the terminal decoder holds
// panicked in its reader goroutine and took the whole server down; the
// session now goes on, and so does the server.
func TestManyParametersDoNotCrashTheServer(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	defer c.Close()
	_, in, out := openSession(t, c, "xterm", map[string]string{"LANG": "en_US.UTF-8"})
	waitOutput(t, "the first screen", out, func(o string) bool { return strings.Contains(o, i18n.StepTitle("en", flow.StepLogin)) })
	if _, err := io.WriteString(in, "\x1b["+strings.Repeat("1;", 40)+"1~"+"\x1bP"+strings.Repeat("1;", 40)+"q\x1b\\"+"zzlogin"); err != nil {
		t.Fatal(err)
	}
	// The field echoes each letter between cursor hide and show.
	cursor := strings.NewReplacer("\x1b[?25l", "", "\x1b[?25h", "")
	waitOutput(t, "the login typed after the sequences", out, func(o string) bool { return strings.Contains(cursor.Replace(o), "zzlogin") })
	c2 := f.mustDial(t, "activate")
	c2.Close()
}

// Keys streamed faster than anyone types (a non-bracketed 1 MB paste, a
// script) are passed on up to a burst and a rate, the rest dropped and
// logged: each key passed on costs the server microseconds, and such a
// stream kept a core busy for seconds. The session still answers after.
func TestKeyStreamMetered(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	defer c.Close()
	s, in, out := openSession(t, c, "xterm", map[string]string{"LANG": "en_US.UTF-8"})
	waitOutput(t, "the first screen", out, func(o string) bool { return strings.Contains(o, i18n.StepTitle("en", flow.StepLogin)) })
	chunk := bytes.Repeat([]byte("a\x7f"), 32<<10) // a key and its deletion: the field stays empty
	for range 16 {                                 // 1 MB
		if _, err := in.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	ended := make(chan struct{})
	go func() { s.Wait(); close(ended) }()
	// Ctrl+C, until the session has read through the stream to it (a
	// Ctrl+C read along with the stream's last bytes is dropped with them).
	for quit := time.Tick(100 * time.Millisecond); ; {
		select {
		case <-ended:
		case <-quit:
			io.WriteString(in, "\x03")
			continue
		case <-time.After(waitLimit):
			t.Fatal("the session did not end on Ctrl+C after the stream")
		}
		break
	}
	waitOutput(t, "the log of dropped keys", f.logs, func(o string) bool { return strings.Contains(o, "keys dropped") })
}
