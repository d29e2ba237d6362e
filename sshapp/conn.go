package sshapp

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// maxChannelsPerConn caps the sessions one connection may open at once, so
// a single client cannot take every server-wide slot by multiplexing.
const maxChannelsPerConn = 4

// recordKey finds a connection's record in its ssh.Context.
type recordKey struct{}

// connRecord is what the connection log line says when the connection
// closes. It is shared by the connection's goroutines.
type connRecord struct {
	start      time.Time
	remote     string // the client's address
	source     string // what per-client limits count: flow.Source(remote)
	explaining bool   // the source is penalized: told so in the banner, then refused

	mu       sync.Mutex
	class    string // username class of the last authentication attempt
	authOK   bool
	authFail int
	channels int // session channels open now
	sessions int // session channels opened in all
	outcome  string
	done     map[string]bool // see once
	// quit, when set, ends the session's full-screen program with a
	// sentence, after it restores the terminal (see watch).
	quit func(msg string)
}

func (r *connRecord) setQuit(f func(string)) {
	r.mu.Lock()
	r.quit = f
	r.mu.Unlock()
}

func (r *connRecord) quitter() func(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.quit
}

func recordOf(ctx ssh.Context) *connRecord {
	if r, ok := ctx.Value(recordKey{}).(*connRecord); ok {
		return r
	}
	return &connRecord{} // unreachable: ConnCallback sets it first
}

// auth records an authentication attempt and reports whether it is the
// first success.
func (r *connRecord) auth(u user, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.class = u.class()
	if err != nil {
		r.authFail++
		return false
	}
	first := !r.authOK
	r.authOK = true
	return first
}

// once reports whether what has not happened yet on this connection.
func (r *connRecord) once(what string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done[what] {
		return false
	}
	if r.done == nil {
		r.done = map[string]bool{}
	}
	r.done[what] = true
	return true
}

// hasSessions reports whether the connection has opened a session.
func (r *connRecord) hasSessions() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions > 0
}

func (r *connRecord) setOutcome(o string) {
	r.mu.Lock()
	r.outcome = o
	r.mu.Unlock()
}

func (r *connRecord) openChannel() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.channels >= maxChannelsPerConn {
		return false
	}
	r.channels++
	r.sessions++
	return true
}

func (r *connRecord) closeChannel() {
	r.mu.Lock()
	r.channels--
	r.mu.Unlock()
}

// loggedConn writes the connection's log line when it is closed, and
// tells the door what the connection cost: its startup ends, and its source
// is charged for any misbehaviour.
type loggedConn struct {
	net.Conn
	rec     *connRecord
	log     *slog.Logger
	door    *door
	metrics Metrics
	closed  func() // called once, after the log line
	once    sync.Once

	heard   atomic.Int64 // UnixNano of the last byte received; 0: none yet
	readErr atomic.Value // error: the last read's, when it failed
	timer   atomic.Pointer[time.Timer]
}

func (c *loggedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.heard.Store(time.Now().UnixNano())
	}
	if err != nil {
		c.readErr.Store(err)
	}
	return n, err
}

// evict closes a silent or stalled connection to make room for a new one.
func (c *loggedConn) evict() {
	c.rec.setOutcome("evicted-idle")
	_ = c.Close()
}

// closeUnlessSession closes an authenticated connection that has opened no
// session yet.
func (c *loggedConn) closeUnlessSession() {
	if !c.rec.hasSessions() {
		c.rec.setOutcome("no-session-timeout")
		_ = c.Close()
	}
}

// Close records the connection's end, then closes it: a client that sees
// it closed finds its penalty already counted.
func (c *loggedConn) Close() error {
	c.once.Do(func() {
		if t := c.timer.Load(); t != nil {
			t.Stop()
		}
		r := c.rec
		r.mu.Lock()
		defer r.mu.Unlock()
		outcome := r.outcome
		switch {
		case outcome != "":
		case r.explaining:
			outcome = "penalized"
		case r.authOK && r.sessions == 0:
			outcome = "no-session"
		case r.authOK:
			outcome = "closed"
		case r.authFail > 0:
			outcome = "auth-refused"
		default:
			outcome = "no-auth" // handshake failed, timed out, or client left
		}
		class := r.class
		if class == "" {
			class = "-"
		}
		cost := c.cost(outcome)
		c.log.Info("ssh connection", "remote", r.remote, "user", class,
			"sessions", r.sessions, "duration", time.Since(r.start).Round(time.Millisecond), "outcome", outcome,
			"penalty", cost)
		c.door.closed(c, cost)
		if c.metrics != nil { // nil in tests that build a loggedConn by hand
			c.metrics.ConnectionOutcome(outcome)
		}
		c.closed()
	})
	return c.Conn.Close()
}

// cost is what the connection's source is charged, by how it ended
// (c.rec.mu held).
func (c *loggedConn) cost(outcome string) time.Duration {
	r := c.rec
	switch {
	case outcome == "no-session-timeout":
		return penaltyNoSession
	case outcome == "no-session": // authenticated, then left: like leaving mid-handshake
		return penaltyNoAuth
	case r.authOK, outcome == "stopped":
		return 0
	case c.heard.Load() == 0:
		return penaltySilent
	case r.explaining:
		return 0 // told why it was refused: no further charge
	case outcome == "evicted-idle":
		return penaltySilent // spoke, then stalled the handshake
	}
	rerr, _ := c.readErr.Load().(error)
	var ne net.Error
	switch {
	case rerr == nil: // the server gave up on what the client sent
		return penaltyProtocol
	case errors.As(rerr, &ne) && ne.Timeout():
		return penaltyGrace
	default: // the client left (EOF, reset)
		return penaltyNoAuth
	}
}

// What a session may ask for. A terminal larger than 500×200 cells is
// taken to be that size (maxCols×maxRows): the wizard draws at most that many cells whatever
// the client claims. Only locale variables are of use, and a handful of
// short ones is all a client sends; any other env request is refused, like
// OpenSSH's AcceptEnv does.
const (
	maxCols           = 500
	maxRows           = 200
	maxPixels         = 1 << 14
	maxTermName       = 64
	maxEnvPerSession  = 16
	maxEnvName        = 32
	maxEnvValue       = 64
	localeEnvPrefix   = "LC_"
	localeEnvFallback = "LANG"
)

// filteredSession wraps a new session channel so that agent and X11
// forwarding requests are refused (charm.land/ssh accepts the agent request
// by default, though nothing is ever forwarded), the terminal size of
// pty-req and window-change is clamped before charm.land/ssh reads it, and
// env requests are kept to a few short locale variables.
type filteredSession struct{ gossh.NewChannel }

func (c filteredSession) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		env := 0
		for req := range reqs {
			ok := true
			switch req.Type {
			case "auth-agent-req@openssh.com", "x11-req":
				ok = false
			case "env":
				ok = env < maxEnvPerSession && localeEnv(req.Payload)
				if ok {
					env++
				}
			case "pty-req":
				req.Payload, ok = clampPty(req.Payload)
			case "window-change":
				req.Payload, ok = clampWindow(req.Payload)
			}
			if !ok {
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
				continue
			}
			out <- req
		}
	}()
	return ch, out, nil
}

// localeEnv tells whether an env request's payload sets a locale variable
// (LANG, LC_*) to a short value.
func localeEnv(payload []byte) bool {
	var kv struct{ Name, Value string }
	if gossh.Unmarshal(payload, &kv) != nil || len(kv.Name) > maxEnvName || len(kv.Value) > maxEnvValue {
		return false
	}
	return kv.Name == localeEnvFallback || strings.HasPrefix(kv.Name, localeEnvPrefix)
}

// clampPty returns a pty-req payload (TERM, then the window, then the
// modes) with its window clamped; false when it is malformed or its TERM
// is longer than any terminal's name.
func clampPty(p []byte) ([]byte, bool) {
	if len(p) < 4 {
		return p, false
	}
	n := binary.BigEndian.Uint32(p)
	if n > maxTermName || len(p) < 4+int(n)+16 {
		return p, false
	}
	out := append([]byte(nil), p...)
	clampDims(out[4+n:])
	return out, true
}

// clampWindow returns a window-change payload with its size clamped.
func clampWindow(p []byte) ([]byte, bool) {
	if len(p) < 16 {
		return p, false
	}
	out := append([]byte(nil), p...)
	clampDims(out)
	return out, true
}

// clampDims clamps the four uint32 at the start of b: columns, rows,
// width and height in pixels.
func clampDims(b []byte) {
	for i, limit := range []uint32{maxCols, maxRows, maxPixels, maxPixels} {
		if binary.BigEndian.Uint32(b[4*i:]) > limit {
			binary.BigEndian.PutUint32(b[4*i:], limit)
		}
	}
}

// openConns counts the connections open now, so Shutdown can wait for them.
type openConns struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0
}

func (o *openConns) add() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == 0 {
		o.zero = make(chan struct{})
	}
	o.n++
}

func (o *openConns) done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n--
	if o.n == 0 {
		close(o.zero)
	}
}

// wait returns when no connection is open, or ctx's error.
func (o *openConns) wait(ctx context.Context) error {
	o.mu.Lock()
	if o.n == 0 {
		o.mu.Unlock()
		return nil
	}
	zero := o.zero
	o.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
