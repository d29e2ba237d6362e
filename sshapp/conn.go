package sshapp

import (
	"context"
	"log/slog"
	"net"
	"sync"
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
	start   time.Time
	remote  string
	limited bool // over the per-address rate: refused with a banner

	mu       sync.Mutex
	class    string // username class of the last authentication attempt
	authOK   bool
	authFail int
	channels int // session channels open now
	sessions int // session channels opened in all
	outcome  string
}

func recordOf(ctx ssh.Context) *connRecord {
	if r, ok := ctx.Value(recordKey{}).(*connRecord); ok {
		return r
	}
	return &connRecord{} // unreachable: ConnCallback sets it first
}

func (r *connRecord) auth(u user, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.class = u.class()
	if err == nil {
		r.authOK = true
	} else {
		r.authFail++
	}
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

// loggedConn writes the connection's log line when it is closed.
type loggedConn struct {
	net.Conn
	rec     *connRecord
	log     *slog.Logger
	metrics Metrics
	closed  func() // called once, after the log line
	once    sync.Once
}

func (c *loggedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		r := c.rec
		r.mu.Lock()
		defer r.mu.Unlock()
		outcome := r.outcome
		switch {
		case outcome != "":
		case r.limited:
			outcome = "rate-limited"
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
		c.log.Info("ssh connection", "remote", r.remote, "user", class,
			"sessions", r.sessions, "duration", time.Since(r.start).Round(time.Millisecond), "outcome", outcome)
		c.metrics.ConnectionOutcome(outcome)
		c.closed()
	})
	return err
}

// maxEnvPerSession caps the environment variables a session may set: each
// one is kept for the session's life.
const maxEnvPerSession = 64

// filteredSession wraps a new session channel so that agent and X11
// forwarding requests are refused (charm.land/ssh accepts the agent request
// by default, though nothing is ever forwarded) and so is an env request
// past maxEnvPerSession.
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
			if req.Type == "env" {
				env++
			}
			switch {
			case req.Type == "auth-agent-req@openssh.com", req.Type == "x11-req", env > maxEnvPerSession:
				_ = req.Reply(false, nil)
			default:
				out <- req
			}
		}
	}()
	return ch, out, nil
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
