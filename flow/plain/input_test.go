package plain

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// edit feeds the chunks to a fresh editor and returns the events with the
// line taken at each evLine, and the echo.
func edit(echo bool, chunks ...string) (lines []string, evs []event, out string) {
	e := editor{eol: "\r\n", buf: make([]byte, 0, MaxLine)}
	e.start("P> ", echo)
	for _, c := range chunks {
		p := []byte(c)
		for len(p) > 0 {
			n, ev := e.feed(p)
			p = p[n:]
			if ev != evNone {
				evs = append(evs, ev)
				if ev == evLine {
					lines = append(lines, e.take())
				}
				e.start("P> ", echo)
			}
		}
	}
	return lines, evs, string(e.out)
}

func TestEditorLines(t *testing.T) {
	cases := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"CR", []string{"alice\r"}, []string{"alice"}},
		{"LF", []string{"alice\n"}, []string{"alice"}},
		{"CRLF is one end", []string{"a\r\nb\r\n"}, []string{"a", "b"}},
		{"CR NUL is one end", []string{"a\r\x00b\r"}, []string{"a", "b"}},
		{"CRLF split across reads", []string{"a\r", "\nb\n"}, []string{"a", "b"}},
		{"empty lines count", []string{"\n\n"}, []string{"", ""}},
		{"backspace and DEL", []string{"alicx\x7fe\r", "box\x08b\r"}, []string{"alice", "bob"}},
		{"backspace erases a rune", []string{"caf\u00e9\x7fe\r"}, []string{"cafe"}},
		{"backspace on empty line", []string{"\x7f\x7fa\r"}, []string{"a"}},
		{"ctrl-U kills the line", []string{"wrong\x15right\r"}, []string{"right"}},
		{"arrows and F keys ignored", []string{"a\x1b[A\x1b[1;5Cb\x1bOPcd\r"}, []string{"abcd"}},
		{"a lone Esc does not eat the next key", []string{"\x1bn\r", "o\x1b", "x\r"}, []string{"n", "ox"}},
		{"escape split across reads", []string{"a\x1b", "[", "Bb\r"}, []string{"ab"}},
		{"ESC then Enter", []string{"a\x1b\r"}, []string{"a"}},
		{"controls dropped", []string{"a\x00\x07\x0e\x1fb\r"}, []string{"ab"}},
		{"tab is a space", []string{"a\tb\r"}, []string{"a b"}},
		{"C1 and bidi dropped", []string{"a\u009b31m\u202eb\u2066c\r"}, []string{"a31mbc"}},
		{"UTF-8 split across reads", []string{"\xc3", "\xa9t\xc3", "\xa9\r"}, []string{"été"}},
		{"invalid UTF-8 dropped", []string{"a\xffb\xc3c\r"}, []string{"abc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, _, _ := edit(true, c.chunks...)
			if strings.Join(lines, "|") != strings.Join(c.want, "|") {
				t.Fatalf("lines %q, want %q", lines, c.want)
			}
		})
	}
}

func TestEditorEcho(t *testing.T) {
	_, _, out := edit(true, "ab\x7fc\r")
	// a, b echoed; after the erase the corrected line is printed again on
	// a new line before c.
	if want := "ab\r\nP> ac"; out != want {
		t.Fatalf("echo %q, want %q", out, want)
	}
	_, _, out = edit(true, "abc\x7f\r")
	if want := "abc\r\nP> ab"; out != want {
		t.Fatalf("echo after a final erase %q, want %q", out, want)
	}
	_, _, out = edit(true, "abc\x15d\r")
	if want := "abc\r\nP> d"; out != want {
		t.Fatalf("echo after ctrl-U %q, want %q", out, want)
	}
	lines, _, out := edit(false, "s3cret p4ss\x7fs\x15s3cret p4ss\r")
	if out != "" || lines[0] != "s3cret p4ss" {
		t.Fatalf("secret: echo %q line %q, want no echo", out, lines[0])
	}
	_, _, out = edit(true, "a\x1b[31mb\x07\r")
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("echo %q holds a control byte", out)
	}
}

func TestEditorQuit(t *testing.T) {
	for _, in := range []string{"abc\x03", "\x04", "x\x04\r"} {
		_, evs, _ := edit(true, in)
		if len(evs) == 0 || evs[0] != evQuit {
			t.Errorf("%q: events %v, want quit first", in, evs)
		}
	}
}

func TestEditorTooLong(t *testing.T) {
	e := editor{eol: "\r\n", buf: make([]byte, 0, MaxLine)}
	e.start("P> ", true)
	big := bytes.Repeat([]byte("é"), 1<<19) // 1 MiB
	n, ev := e.feed(big)
	if n != len(big) || ev != evNone {
		t.Fatalf("feed consumed %d of %d, event %v", n, len(big), ev)
	}
	if len(e.buf) > MaxLine || cap(e.buf) != MaxLine {
		t.Fatalf("buffer len %d cap %d, want at most %d", len(e.buf), cap(e.buf), MaxLine)
	}
	if len(e.out) > MaxLine {
		t.Fatalf("echoed %d bytes of an over-long line", len(e.out))
	}
	e.out = e.out[:0]
	if _, ev := e.feed([]byte("\r")); ev != evTooLong {
		t.Fatalf("end of the long line: event %v, want evTooLong", ev)
	}
	e.start("P> ", true)
	if _, ev := e.feed([]byte("ok\r")); ev != evLine || e.take() != "ok" {
		t.Fatal("the line after a long one is not read whole")
	}
	// Exactly MaxLine bytes is allowed.
	e.start("P> ", false)
	if _, ev := e.feed(append(bytes.Repeat([]byte("a"), MaxLine), '\n')); ev != evLine || len(e.take()) != MaxLine {
		t.Fatalf("a line of MaxLine bytes is refused (event %v)", ev)
	}
}

// input hands lines to successive prompts, keeps type-ahead, ends on EOF
// and gives the last unterminated line first.
func TestInputTypeAheadAndEOF(t *testing.T) {
	in := newInput(strings.NewReader("one\ntwo\nthree"), "\n")
	defer in.stop()
	var got []string
	for {
		s, err := in.readLine(context.Background(), nil, "> ", false, func([]byte) {})
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("lines %q", got)
	}
}

func TestInputEndsOnContextAndDone(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	in := newInput(r, "\n")
	defer in.stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := in.readLine(ctx, nil, "> ", false, func([]byte) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	done := make(chan struct{})
	close(done)
	if _, err := in.readLine(context.Background(), done, "> ", false, func([]byte) {}); err == nil || err.Error() != "session: closed" {
		t.Fatalf("closed session: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestInputReadError(t *testing.T) {
	in := newInput(failingReader{}, "\n")
	defer in.stop()
	_, err := in.readLine(context.Background(), nil, "> ", false, func([]byte) {})
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("read error: %v", err)
	}
}
