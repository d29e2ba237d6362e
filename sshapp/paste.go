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

// maxSeparators is the most parameter separators (';', ':') a CSI or DCS
// sequence from the client keeps: the terminal decoder under bubbletea
// holds 32 parameters and panics, killing the whole server, on a 33rd
// (charmbracelet/x/ansi v0.11.9, parser_decode.go).
const maxSeparators = 16

// maxString is the most bytes of a control string (OSC, DCS, APC, PM,
// SOS) from the client that are passed on: the rest, up to its
// terminator, is dropped. The decoder keeps an unfinished string and scans
// it again at each read: one that never ends would cost the server CPU
// that grows with its length.
const maxString = 512

// pasteCap passes a session's input on with each bracketed paste cut to
// maxPaste bytes (its end marker always passed on), and the parameter
// separators of a CSI or DCS sequence past maxSeparators dropped.
type pasteCap struct {
	r       io.Reader
	buf     [4096]byte
	out     []byte // filtered, not yet read: at most len(buf)+len(pasteEnd)
	inside  bool   // between the start and end markers
	started int    // outside: bytes of the start marker matched
	held    int    // inside: bytes of the end marker matched, not yet passed on
	n       int    // inside: paste bytes passed on
	seq     seqState
	seps    int  // separators in the current CSI or DCS parameters
	str     bool // in a control string, until BEL, ST or ESC
	strN    int  // its bytes passed on
	cont    int  // UTF-8 continuation bytes still expected: not a C1 control
}

type seqState int

const (
	seqNone   seqState = iota
	seqEsc             // after ESC
	seqParams          // in the parameters of a CSI or DCS
)

func newPasteCap(r io.Reader) *pasteCap { return &pasteCap{r: r} }

func (p *pasteCap) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		n, err := p.r.Read(p.buf[:])
		p.filter(p.buf[:n])
		p.out = p.out[:p.params(p.out)]
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

// params drops, in place, the separators of CSI and DCS parameters past
// maxSeparators, and returns the length kept.
func (p *pasteCap) params(b []byte) int {
	w := 0
	for _, c := range b {
		keep := true
		inRune := p.cont > 0 && c >= 0x80 && c < 0xc0
		switch {
		case inRune:
			p.cont--
		case c >= 0xf0:
			p.cont = 3
		case c >= 0xe0:
			p.cont = 2
		case c >= 0xc0:
			p.cont = 1
		default:
			p.cont = 0
		}
		if p.str && !inRune {
			switch c {
			case 0x07, 0x9c, 0x1b, 0x18, 0x1a: // BEL, ST, ESC (of ESC \), CAN, SUB end it
				p.str = false
			}
		}
		if p.str {
			if p.strN++; p.strN > maxString {
				keep = false
			}
		}
		switch {
		case inRune:
			p.seq = seqNone
		case p.seq == seqParams && (c >= '0' && c <= '9' || c >= '<' && c <= '?'):
		case p.seq == seqParams && (c == ';' || c == ':'):
			p.seps++
			keep = p.seps <= maxSeparators
		case c == 0x1b:
			p.seq = seqEsc
		case p.seq == seqEsc && (c == '[' || c == 'P'), c == 0x9b, c == 0x90: // 7- and 8-bit CSI, DCS
			p.seq, p.seps = seqParams, 0
			p.str, p.strN = c == 'P' || c == 0x90, 0
		case p.seq == seqEsc && (c == ']' || c == '_' || c == '^' || c == 'X'), c == 0x9d, c == 0x9f, c == 0x9e, c == 0x98: // OSC, APC, PM, SOS
			p.seq = seqNone
			p.str, p.strN = true, 0
		default:
			p.seq = seqNone
		}
		if keep {
			b[w] = c
			w++
		}
	}
	return w
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
