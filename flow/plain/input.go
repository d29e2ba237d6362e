package plain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"activated/flow"
	"activated/internal/sanitize"
)

// MaxLine is the longest input line kept, in bytes; the rest of a longer
// line is discarded as it arrives and the line is refused.
const MaxLine = 4096

// readSize is the size of the one buffer the reader goroutine reads into.
const readSize = 4096

var (
	errQuit    = errors.New("plain: the user quit")
	errTooLong = errors.New("plain: input line too long")
)

// chunk is one Read result handed from the reader goroutine.
type chunk struct {
	b   []byte
	err error
}

// input turns the byte stream of rw into lines. A goroutine reads into a
// single buffer and waits until the line editor has consumed it before
// reading again, so memory stays bounded whatever the client sends, and
// only bytes asked for by a prompt are interpreted (type-ahead is kept for
// the next prompt, with that prompt's echo mode).
type input struct {
	chunks  chan chunk
	ack     chan struct{}
	quit    chan struct{}
	pending []byte // unconsumed part of the current chunk
	held    bool   // the reader waits for an ack
	err     error  // sticky read error
	ed      editor
}

func newInput(r io.Reader, eol string) *input {
	in := &input{
		chunks: make(chan chunk),
		ack:    make(chan struct{}),
		quit:   make(chan struct{}),
		ed:     editor{eol: eol, buf: make([]byte, 0, MaxLine)},
	}
	go in.readLoop(r)
	return in
}

// stop lets the reader goroutine end. If it is blocked in Read it ends when
// the connection closes (the SSH server closes the channel after Run).
func (in *input) stop() { close(in.quit) }

func (in *input) readLoop(r io.Reader) {
	buf := make([]byte, readSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case in.chunks <- chunk{b: buf[:n]}:
			case <-in.quit:
				return
			}
			select {
			case <-in.ack:
			case <-in.quit:
				return
			}
		}
		if err != nil {
			select {
			case in.chunks <- chunk{err: err}:
			case <-in.quit:
			}
			return
		}
	}
}

// readLine reads one line after prompt was written. echo says whether
// typed characters are echoed (raw terminal, not a secret); write receives
// the echo. It returns errQuit (Ctrl+C, Ctrl+D), errTooLong, io.EOF,
// ctx.Err(), or flow.ErrClosed when done is closed.
func (in *input) readLine(ctx context.Context, done <-chan struct{}, prompt string, echo bool, write func([]byte)) (string, error) {
	in.ed.start(prompt, echo)
	for {
		if len(in.pending) == 0 {
			if in.held {
				in.held = false
				in.ack <- struct{}{} // the reader is waiting for it
			}
			if in.err != nil {
				if in.ed.tooLong {
					in.ed.buf, in.ed.tooLong = in.ed.buf[:0], false
					return "", errTooLong
				}
				if len(in.ed.buf) > 0 { // a last line without its newline
					return in.ed.take(), nil
				}
				if errors.Is(in.err, io.EOF) {
					return "", io.EOF
				}
				return "", fmt.Errorf("read: %w", in.err)
			}
			select {
			case c := <-in.chunks:
				if c.err != nil {
					in.err = c.err
					continue
				}
				in.pending, in.held = c.b, true
			case <-ctx.Done():
				return "", ctx.Err()
			case <-done:
				return "", flow.ErrClosed
			}
		}
		n, ev := in.ed.feed(in.pending)
		in.pending = in.pending[n:]
		if len(in.ed.out) > 0 {
			write(in.ed.out)
			in.ed.out = in.ed.out[:0]
		}
		switch ev {
		case evLine:
			return in.ed.take(), nil
		case evQuit:
			return "", errQuit
		case evTooLong:
			return "", errTooLong
		}
	}
}

type event int

const (
	evNone event = iota
	evLine
	evQuit
	evTooLong
)

type escState int

const (
	escNone  escState = iota
	escStart          // after ESC
	escCSI            // after ESC [
	escSS3            // after ESC O
)

// editor is the line discipline of a raw terminal, kept to what needs no
// cursor movement: printable runes are echoed, Backspace/DEL erase (the
// corrected line is printed again on a new line before more is echoed or
// when the line ends), Ctrl+U clears the line and prints the prompt again,
// CR, LF or CR LF end the line, Ctrl+C and Ctrl+D quit. Escape sequences
// sent by special keys (arrows, F keys) and control runes are ignored.
// Without a PTY the same rules apply with no echo at all. The end of line
// is not echoed here: the caller ends the prompt line whatever happened.
type editor struct {
	eol     string // "\r\n" or "\n"
	prompt  string
	echo    bool    // echo printable input
	buf     []byte  // the line, at most MaxLine bytes
	part    [4]byte // an incomplete UTF-8 sequence
	npart   int
	esc     escState
	cr      bool // the last byte was CR: a following LF or NUL belongs to it
	tooLong bool // the line overflowed: discard up to its end
	dirty   bool // erased since the last echo: print the line again first
	out     []byte
}

func (e *editor) start(prompt string, echo bool) {
	e.prompt, e.echo = prompt, echo
	e.buf, e.npart, e.esc, e.tooLong, e.dirty = e.buf[:0], 0, escNone, false, false
}

// take returns the line and empties the buffer.
func (e *editor) take() string {
	s := string(e.buf)
	e.buf = e.buf[:0]
	return s
}

// feed interprets p up to the first event; it returns how many bytes it
// consumed.
func (e *editor) feed(p []byte) (int, event) {
	for i, c := range p {
		if ev := e.byte(c); ev != evNone {
			return i + 1, ev
		}
	}
	return len(p), evNone
}

func (e *editor) byte(c byte) event {
	wasCR := e.cr
	e.cr = false
	if e.esc != escNone && e.escape(c) {
		return evNone
	}
	switch {
	case c == '\r':
		e.cr = true
		return e.endLine()
	case c == '\n':
		if wasCR {
			return evNone
		}
		return e.endLine()
	case c == 0x03 || c == 0x04: // Ctrl+C, Ctrl+D
		return evQuit
	case c == 0x7f || c == 0x08: // DEL, Backspace
		e.erase()
	case c == 0x15: // Ctrl+U
		e.kill()
	case c == 0x1b:
		e.esc = escStart
	case c == '\t':
		e.add(' ')
	case c < 0x20: // other controls, NUL after CR included
	default:
		e.add(c)
	}
	return evNone
}

// escape swallows c when it belongs to an escape sequence; a control byte
// ends the sequence and is interpreted normally, and so is a plain key
// after a lone ESC.
func (e *editor) escape(c byte) bool {
	if c < 0x20 || c == 0x7f {
		e.esc = escNone
		return false
	}
	switch e.esc {
	case escStart:
		switch c {
		case '[':
			e.esc = escCSI
		case 'O':
			e.esc = escSS3
		default: // ESC then a key (Esc pressed by habit, or Alt+key): keep the key
			e.esc = escNone
			return false
		}
	case escCSI:
		if c >= 0x40 && c <= 0x7e {
			e.esc = escNone
		}
	case escSS3:
		e.esc = escNone
	}
	return true
}

func (e *editor) endLine() event {
	e.npart = 0
	if e.echo && e.dirty && !e.tooLong {
		e.reprint()
	}
	if e.tooLong {
		e.buf, e.tooLong = e.buf[:0], false
		return evTooLong
	}
	return evLine
}

// reprint shows the line as it is now on a new line.
func (e *editor) reprint() {
	e.out = append(e.out, e.eol...)
	e.out = append(e.out, e.prompt...)
	e.out = append(e.out, e.buf...)
	e.dirty = false
}

func (e *editor) erase() {
	if e.npart > 0 {
		e.npart = 0
		return
	}
	if e.tooLong || len(e.buf) == 0 {
		return
	}
	_, n := utf8.DecodeLastRune(e.buf)
	e.buf = e.buf[:len(e.buf)-n]
	e.dirty = e.echo
}

func (e *editor) kill() {
	e.buf, e.npart, e.tooLong, e.dirty = e.buf[:0], 0, false, false
	if e.echo {
		e.out = append(e.out, e.eol...)
		e.out = append(e.out, e.prompt...)
	}
}

// add takes one byte of a UTF-8 rune; a complete rune that is not a control
// or bidi rune joins the line.
func (e *editor) add(c byte) {
	if e.tooLong {
		return
	}
	e.part[e.npart] = c
	e.npart++
	for e.npart > 0 && utf8.FullRune(e.part[:e.npart]) {
		r, n := utf8.DecodeRune(e.part[:e.npart])
		if !(r == utf8.RuneError && n == 1) && !sanitize.Drop(r) {
			e.put(e.part[:n])
		}
		copy(e.part[:], e.part[n:e.npart])
		e.npart -= n
	}
}

func (e *editor) put(b []byte) {
	if e.tooLong || len(e.buf)+len(b) > MaxLine {
		e.tooLong = true
		return
	}
	if e.echo && e.dirty {
		e.reprint()
	}
	e.buf = append(e.buf, b...)
	if e.echo {
		e.out = append(e.out, b...)
	}
}
