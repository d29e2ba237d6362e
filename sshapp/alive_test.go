package sshapp_test

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/flow/i18n"
	"activated/sshapp"
)

// freezer forwards one TCP connection to a target until frozen; then it
// forwards nothing more, either way, and closes nothing: a client whose
// network vanished.
type freezer struct {
	addr   string
	frozen chan struct{}
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezer{addr: l.Addr().String(), frozen: make(chan struct{})}
	conns := make(chan []net.Conn, 1)
	go func() {
		defer close(conns)
		c, err := l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			return
		}
		conns <- []net.Conn{c, u}
		go p.pipe(u, c)
		go p.pipe(c, u)
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range <-conns {
			c.Close()
		}
	})
	return p
}

func (p *freezer) freeze() { close(p.frozen) }

func (p *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return // what was read is lost, and nothing reads any more
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestVanishedClientReleasesDossier(t *testing.T) {
	f := startServer(t, func(c *sshapp.Config) { c.KeepAlive = 50 * time.Millisecond })
	code := inviteCode(t, f)
	p := startFreezer(t, f.addr)
	c, err := gossh.Dial("tcp", p.addr, &gossh.ClientConfig{
		User: code, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, _, out := openSession(t, c, "xterm-256color", map[string]string{"LANG": "en_US.UTF-8"})
	title := i18n.StepTitle("en", flow.StepCharter)
	waitFor(t, "the charter", func() bool { return strings.Contains(out.String(), title) })
	if !f.svc.Busy("jdoe") {
		t.Fatal("the dossier is not held by the session")
	}
	p.freeze()
	waitFor(t, "the dossier released", func() bool { return !f.svc.Busy("jdoe") })
	waitFor(t, "the log line", func() bool { return strings.Contains(f.logs.String(), "ssh client gone") })
}

// dialCounting connects as user with a client that counts the server's
// keepalives (and answers them, as OpenSSH does).
func dialCounting(t *testing.T, f *sshFixture, user string) (*gossh.Client, *atomic.Int32) {
	t.Helper()
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{
		User: user, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pings atomic.Int32
	go func() {
		for r := range reqs {
			if r.Type == "keepalive@openssh.com" {
				pings.Add(1)
			}
			r.Reply(false, nil)
		}
	}()
	none := make(chan *gossh.Request)
	close(none)
	c := gossh.NewClient(cc, chans, none)
	t.Cleanup(func() { c.Close() })
	return c, &pings
}

// idleWizard opens a TUI wizard session on a server with the given idle
// timeout and keepalive period; ended receives once the session is over.
// A keepalive without reply for two periods closes the connection: on a
// loaded machine (-race, a build beside) 50 ms ones were lost that way.
func idleWizard(t *testing.T, idle, keepAlive time.Duration) (f *sshFixture, in func(string), out func() string, pings *atomic.Int32, ended <-chan error) {
	t.Helper()
	f = startServer(t, func(c *sshapp.Config) { c.KeepAlive, c.IdleTimeout = keepAlive, idle })
	c, pings := dialCounting(t, f, "activate")
	s, w, buf := openSession(t, c, "xterm-256color", map[string]string{"LANG": "en_US.UTF-8"})
	title := i18n.StepTitle("en", flow.StepLogin)
	waitFor(t, "the login screen", func() bool { return strings.Contains(buf.String(), title) })
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	in = func(keys string) {
		if _, err := w.Write([]byte(keys)); err != nil {
			t.Fatalf("typing: %v", err)
		}
	}
	return f, in, buf.String, pings, done
}

// idleSaid is the start of the idle message, before its command.
var idleSaid, _, _ = strings.Cut(i18n.T("en", "ssh.idle", ""), ";")

func TestIdleSessionClosedDespiteKeepalives(t *testing.T) {
	f, _, out, pings, ended := idleWizard(t, 300*time.Millisecond, 100*time.Millisecond)
	select {
	case <-ended:
	case <-time.After(waitLimit):
		t.Fatalf("an idle session still open; output:\n%q", tailOf(out(), 300))
	}
	if pings.Load() == 0 {
		t.Error("no keepalive was sent before the idle close")
	}
	waitFor(t, "the idle message", func() bool { return strings.Contains(out(), idleSaid) })
	if !strings.Contains(f.logs.String(), "ssh session idle") {
		t.Errorf("no idle log line:\n%s", f.logs.String())
	}
}

func TestTypingSessionStaysOpen(t *testing.T) {
	// Generous: a loaded machine (-race, other tests) may pause the
	// server for a few hundred milliseconds between two keys.
	const idle = 1500 * time.Millisecond
	_, in, out, pings, ended := idleWizard(t, idle, idle/5)
	for until := time.Now().Add(4 * idle); time.Now().Before(until) || pings.Load() < 10; {
		select {
		case err := <-ended:
			t.Fatalf("session closed while the user typed (%v); output:\n%q", err, tailOf(out(), 300))
		case <-time.After(20 * time.Millisecond):
		}
		in("x\x7f") // a letter, then backspace
	}
	// Once the typing stops, the idle timeout applies again.
	select {
	case <-ended:
	case <-time.After(waitLimit):
		t.Fatal("the session outlived its idle timeout once typing stopped")
	}
}
