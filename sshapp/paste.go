package sshapp

import "io"

// maxPaste is the most of one bracketed paste the wizard is given: its
// longest field takes 1,024 characters. The terminal decoder under
// bubbletea keeps a whole paste in memory until its end marker, however
// long: a client that starts a paste and never ends it would grow the
// server's memory for as long as it sends.
const maxPaste = 16 << 10

var (
	pasteStart = []byte("\x1b[200~")
	pasteEnd   = []byte("\x1b[201~")
)

// pasteCap passes a session's input on with each bracketed paste cut to
// maxPaste bytes; its end marker is always passed on.
type pasteCap struct {
	r       io.Reader
	buf     [4096]byte
	out     []byte // filtered, not yet read: at most len(buf)+len(pasteEnd)
	inside  bool   // between the start and end markers
	started int    // outside: bytes of the start marker matched
	held    int    // inside: bytes of the end marker matched, not yet passed on
	n       int    // inside: paste bytes passed on
}

func newPasteCap(r io.Reader) *pasteCap { return &pasteCap{r: r} }

func (p *pasteCap) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		n, err := p.r.Read(p.buf[:])
		p.filter(p.buf[:n])
		if err != nil && len(p.out) == 0 {
			return 0, err
		}
		if n == 0 && err == nil && len(p.out) == 0 {
			return 0, nil
		}
	}
	k := copy(b, p.out)
	p.out = p.out[k:]
	return k, nil
}

func (p *pasteCap) filter(in []byte) {
	p.out = p.out[:0]
	for _, c := range in {
		if !p.inside {
			p.out = append(p.out, c)
			p.started = advance(pasteStart, p.started, c)
			if p.started == len(pasteStart) {
				p.inside, p.started, p.n = true, 0, 0
			}
			continue
		}
		if c == pasteEnd[p.held] {
			if p.held++; p.held == len(pasteEnd) {
				p.out = append(p.out, pasteEnd...)
				p.inside, p.held = false, 0
			}
			continue
		}
		for _, h := range pasteEnd[:p.held] { // not the end marker after all
			p.content(h)
		}
		p.held = 0
		if c == pasteEnd[0] {
			p.held = 1
		} else {
			p.content(c)
		}
	}
}

// content passes on one byte of a paste while under maxPaste.
func (p *pasteCap) content(c byte) {
	if p.n < maxPaste {
		p.out = append(p.out, c)
		p.n++
	}
}

// advance is the number of marker bytes matched after c, m before.
func advance(marker []byte, m int, c byte) int {
	if c == marker[m] {
		return m + 1
	}
	if c == marker[0] {
		return 1
	}
	return 0
}
