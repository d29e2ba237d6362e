package sshapp_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/flowtest"
	"activated/sshapp"

	"activated/internal/sshprobe"
)

// heapBound is what a server under one giant terminal may hold.
const heapBound = 256 << 20

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// waitOutput waits for out to contain want, failing as soon as the heap
// grows past heapBound.
func waitOutput(t *testing.T, what string, out *flowtest.Buffer, want func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !want(out.String()) {
		if h := heapInUse(); h > heapBound {
			t.Fatalf("%s: heap in use %d MB, bound %d MB", what, h>>20, heapBound>>20)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output %q", what, tailOf(out.String(), 300))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGiantTerminalKeepsMemoryBounded(t *testing.T) {
	f := startServer(t, nil)
	title := i18n.StepTitle("en", flow.StepLogin)
	for _, tc := range []struct {
		name                 string
		rows, cols           int
		resizeRows, resizeCo int
	}{
		{"giant pty", 65535, 65535, 65535, 65535},
		{"window change", 24, 80, 65535, 65535},
	} {
		c := f.mustDial(t, "activate")
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out flowtest.Buffer
		s.Stdout, s.Stderr = &out, &out
		if _, err := s.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := s.Setenv("LANG", "en_US.UTF-8"); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestPty("xterm-256color", tc.rows, tc.cols, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, tc.name+": the first screen", &out, func(o string) bool { return strings.Contains(o, title) })
		before := len(out.String())
		if err := s.WindowChange(tc.resizeRows, tc.resizeCo); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, tc.name+": a redraw after the resize", &out, func(o string) bool { return len(o) > before })
		// The session goes on drawing at its clamped size: a second
		// resize is answered too, still within the bound.
		before = len(out.String())
		if err := s.WindowChange(tc.resizeRows-1, tc.resizeCo-1); err != nil {
			t.Fatal(err)
		}
		if err := s.WindowChange(30, 100); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, tc.name+": a redraw after a normal resize", &out, func(o string) bool { return len(o) > before })
		s.Close()
		c.Close()
	}
	runtime.GC()
	if h := heapInUse(); h > heapBound {
		t.Fatalf("heap in use %d MB after the giant terminals left", h>>20)
	}
}

func TestEnvRequestsBounded(t *testing.T) {
	f := startServer(t, nil)
	s, err := f.mustDial(t, "activate").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, kv := range [][2]string{
		{"LANG", strings.Repeat("x", 200_000)},
		{"LC_ALL", strings.Repeat("x", 65)},
		{"PATH", "/bin"},
		{"LD_PRELOAD", "/tmp/x.so"},
		{strings.Repeat("L", 33), "x"},
	} {
		if err := s.Setenv(kv[0], kv[1]); err == nil {
			t.Errorf("env %.20s (%d bytes) accepted", kv[0], len(kv[1]))
		}
	}
	for i := range 16 {
		if err := s.Setenv(fmt.Sprintf("LC_%d", i), "fr_FR.UTF-8"); err != nil {
			t.Fatalf("locale env %d refused: %v", i+1, err)
		}
	}
	if err := s.Setenv("LANG", "fr_FR.UTF-8"); err == nil {
		t.Error("a 17th env request accepted")
	}
}

// dialFrom opens a TCP connection to addr from the loopback address local.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: waitLimit}
	return d.Dial("tcp", addr)
}

// reachStep1 connects as activate from local (any when ""), opens a plain
// session and waits for the login prompt.
func reachStep1(f *sshFixture, local string) error {
	var conn net.Conn
	var err error
	if local == "" {
		conn, err = net.DialTimeout("tcp", f.addr, waitLimit)
	} else {
		conn, err = dialFrom(local, f.addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{
		User: "activate", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
	})
	if err != nil {
		return err
	}
	c := gossh.NewClient(cc, chans, reqs)
	defer c.Close()
	_, err = sshprobe.FirstPrompt(c)
	return err
}

// A lecture hall behind one NAT address: 300 users who connect within a
// minute all reach step 1 with the default limits (100 under the race
// detector, which makes each handshake ten times slower: still far past
// what the old per-minute cap let in).
func TestLectureHallBehindOneAddress(t *testing.T) {
	f := startServer(t, nil)
	users, atOnce := 300, 10
	if raceEnabled {
		users = 100
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, atOnce)
	for range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := reachStep1(f, "127.0.0.1"); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d users behind one address did not reach step 1; first error: %v", n, users, firstErr.Load())
	}
}

// silentConns opens n connections from each of the given local addresses
// that never send a byte, and counts those the server still holds.
type silentConns struct {
	held atomic.Int32
	mu   sync.Mutex
	all  []net.Conn
}

func (s *silentConns) open(t *testing.T, addr string, locals []string, n int) {
	t.Helper()
	t.Cleanup(s.closeAll)
	for _, local := range locals {
		for range n {
			c, err := dialFrom(local, addr)
			if err != nil {
				t.Fatalf("silent connection from %s: %v", local, err)
			}
			s.mu.Lock()
			s.all = append(s.all, c)
			s.mu.Unlock()
			s.held.Add(1)
			go func() {
				defer s.held.Add(-1)
				io.Copy(io.Discard, c) // until the server closes it
			}()
		}
	}
}

func (s *silentConns) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.all {
		c.Close()
	}
}

func loopbacks(from, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("127.0.0.%d", from+i))
	}
	return out
}

func TestStartupCapsAtAccept(t *testing.T) {
	f := startServer(t, func(c *sshapp.Config) { c.MaxStartups, c.MaxStartupsPerSource = 4, 2 })
	var flood silentConns
	flood.open(t, f.addr, loopbacks(2, 1), 3)
	waitFor(t, "the third startup from one address closed", func() bool { return flood.held.Load() == 2 })
	flood.open(t, f.addr, loopbacks(3, 2), 2)
	waitFor(t, "the fifth startup closed", func() bool { return flood.held.Load() == 4 })

	// Past the cap, the refused connection is closed before any SSH
	// traffic, with a line saying why.
	c, err := dialFrom("127.0.0.9", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	got, _ := io.ReadAll(c)
	if strings.Contains(string(got), "SSH-") || !strings.Contains(string(got), i18n.T("en", "ssh.full")) || !strings.Contains(string(got), i18n.T("fr", "ssh.full")) {
		t.Errorf("refused connection got %q, want the explanation in both languages and no SSH version", got)
	}
}

// A silent flood from many addresses is held to max_startups while a real
// user still reaches step 1.
func TestSilentFloodWhileRealUserGetsIn(t *testing.T) {
	const maxStartups = 10
	f := startServer(t, func(c *sshapp.Config) { c.MaxStartups, c.MaxStartupsPerSource = maxStartups, 3 })
	var flood silentConns
	flood.open(t, f.addr, loopbacks(2, 20), 5) // 100 connections from 20 addresses
	waitFor(t, "the flood held to max_startups", func() bool { return flood.held.Load() <= maxStartups })
	waitFor(t, "a real user reaching step 1 during the flood", func() bool {
		err := reachStep1(f, "127.0.0.1")
		return err == nil
	})
	// The flood goes on: the evicted addresses are now penalized and
	// their new connections are closed at once.
	flood.open(t, f.addr, loopbacks(2, 20), 5)
	waitFor(t, "the second wave held to max_startups", func() bool { return flood.held.Load() <= maxStartups })
	if err := reachStep1(f, "127.0.0.1"); err != nil {
		// One try may meet a full door made of startups younger than a
		// second; a real user's next try gets in.
		waitFor(t, "a real user reaching step 1 after the second wave", func() bool { return reachStep1(f, "127.0.0.1") == nil })
	}
}

func TestAuthenticatedWithoutSessionClosed(t *testing.T) {
	f := startServer(t, func(c *sshapp.Config) { c.SessionWait = 100 * time.Millisecond })
	idle := f.mustDial(t, "activate")
	closed := make(chan error, 1)
	go func() { closed <- idle.Wait() }()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("a connection with no session was not closed")
	}
	waitFor(t, "the log line", func() bool { return strings.Contains(f.logs.String(), "outcome=no-session-timeout") })
	// A connection that opens a session in time is kept.
	busy := f.mustDial(t, "activate")
	s, _, _ := loginPrompt(t, busy)
	defer s.Close()
	if _, _, err := busy.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("a connection with a session was closed: %v", err)
	}
}

func TestPenalizedSourceIsToldWhy(t *testing.T) {
	const helpdesk = "Assistance : 04 67 00 00 00"
	f := startServerWith(t, flow.Config{Helpdesk: helpdesk}, func(c *sshapp.Config) { c.SessionWait = 10 * time.Millisecond })
	for range 2 { // two connections that never open a session: 20 s owed
		c := f.mustDial(t, "activate")
		c.Wait()
	}
	var banner string
	_, err := gossh.Dial("tcp", f.addr, &gossh.ClientConfig{
		User: "activate", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
		BannerCallback: func(m string) error { banner = m; return nil },
	})
	if err == nil {
		t.Fatal("a penalized address got in")
	}
	if !strings.Contains(banner, i18n.T("en", "ssh.penalized")) || !strings.Contains(banner, i18n.T("fr", "ssh.penalized")) {
		t.Errorf("banner %q, want the penalty explained in both languages", banner)
	}
	if !strings.Contains(banner, helpdesk) {
		t.Errorf("banner %q, want the helpdesk (a dead end for now)", banner)
	}
	// Another address is not affected.
	if err := reachStep1(f, "127.0.0.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestStaffKeysFileMadeUnsafeRefused(t *testing.T) {
	f := startServer(t, nil)
	staffRuns := func() bool {
		c, err := f.dial(t, "staff", gossh.PublicKeys(f.staffKey))
		if err != nil {
			return false
		}
		defer c.Close()
		_, _, status := run(t, c, "list", nil)
		if status == 3 {
			<-f.calls
		}
		return status == 3
	}
	if !staffRuns() {
		t.Fatal("staff refused with a safe file")
	}
	// A chmod changes neither the size nor the modification time.
	for _, tc := range []struct {
		path string
		mode os.FileMode
	}{
		{f.keysFile, 0o666},
		{f.keysFile, 0o620},
		{filepath.Dir(f.keysFile), 0o777},
	} {
		st, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tc.path, tc.mode); err != nil {
			t.Fatal(err)
		}
		if staffRuns() {
			t.Errorf("staff accepted with %s mode %04o", tc.path, tc.mode)
		}
		if err := os.Chmod(tc.path, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if !staffRuns() {
			t.Errorf("staff refused after %s was made safe again", tc.path)
		}
	}
	if !strings.Contains(f.logs.String(), "chmod go-w") {
		t.Errorf("the log does not say how to fix the mode:\n%s", f.logs.String())
	}
}

// follow starts a staff session that runs until the server ends it, and
// returns its stderr and a channel closed when it ends.
func follow(t *testing.T, f *sshFixture, key gossh.Signer) (*flowtest.Buffer, <-chan struct{}) {
	t.Helper()
	c := f.mustDial(t, "staff", gossh.PublicKeys(key))
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr flowtest.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start("follow"); err != nil {
		t.Fatal(err)
	}
	<-f.calls
	waitFor(t, "the follow command running", func() bool { return strings.Contains(stdout.String(), "following") })
	ended := make(chan struct{})
	go func() { s.Wait(); close(ended) }()
	return &stderr, ended
}

func TestStaffKeyRemovedEndsItsSessions(t *testing.T) {
	f := startServer(t, nil)
	bob := newKey(t)
	both := authorizedLine(f.staffKey, "alice@it") + authorizedLine(bob, "bob")
	if err := os.WriteFile(f.keysFile, []byte(both), 0o600); err != nil {
		t.Fatal(err)
	}
	_, aliceEnded := follow(t, f, f.staffKey)
	bobErr, bobEnded := follow(t, f, bob)

	if err := os.WriteFile(f.keysFile, []byte(authorizedLine(f.staffKey, "alice@it")), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bobEnded:
	case <-time.After(waitLimit):
		t.Fatal("bob's session outlived the removal of his key")
	}
	if !strings.Contains(bobErr.String(), i18n.T("fr", "ssh.keyremoved")) {
		t.Errorf("bob was told %q", bobErr.String())
	}
	select {
	case <-aliceEnded:
		t.Fatal("alice's session ended though her key is still listed")
	default:
	}

	// A file made world-writable ends every staff session.
	if err := os.Chmod(f.keysFile, 0o666); err != nil {
		t.Fatal(err)
	}
	select {
	case <-aliceEnded:
	case <-time.After(waitLimit):
		t.Fatal("a staff session outlived the file being made world-writable")
	}
}

// One address holding every place with idle sessions does not keep others
// out: when the server is full, a newcomer from another address takes the
// place of the one idle longest, which is told why and how to come back
// (a TUI, restored first), while that address's own newcomers stay out.
func TestFullServerIdleSessionGivesWay(t *testing.T) {
	const idle = 3 * time.Second // a session idle for idle/5 may give way
	f := startServer(t, func(c *sshapp.Config) { c.MaxSessions, c.IdleTimeout = 2, idle })
	title := i18n.StepTitle("en", flow.StepLogin)
	var outs []*flowtest.Buffer
	for range 2 {
		conn, err := dialFrom("127.0.0.70", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{
			User: "activate", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
		})
		if err != nil {
			t.Fatal(err)
		}
		c := gossh.NewClient(cc, chans, reqs)
		t.Cleanup(func() { c.Close() })
		_, _, out := openSession(t, c, "xterm-256color", map[string]string{"LANG": "en_US.UTF-8"})
		waitOutput(t, "an idle session's first screen", out, func(s string) bool { return strings.Contains(s, title) })
		outs = append(outs, out)
	}
	if err := reachStep1(f, "127.0.0.70"); err == nil {
		t.Fatal("a third session from the address holding both places got in")
	}
	// Staff still get in on a full server (an incident is when they are
	// needed), taking no one's place.
	if _, _, status := run(t, f.mustDial(t, "staff", gossh.PublicKeys(f.staffKey)), "list", nil); status != 3 {
		t.Errorf("staff on a full server: exit status %d, want the command's 3", status)
	}
	time.Sleep(idle/5 + 100*time.Millisecond) // the two sessions become idle enough to give way
	if err := reachStep1(f, "127.0.0.2"); err != nil {
		t.Fatalf("a user from another address was kept out by idle sessions: %v", err)
	}
	said, _, _ := strings.Cut(i18n.T("en", "ssh.evicted", ""), ",") // before the TUI wraps it
	waitFor(t, "one idle session told it gave way", func() bool {
		return strings.Contains(outs[0].String(), said) != strings.Contains(outs[1].String(), said)
	})
	if !strings.Contains(f.logs.String(), "closed for a newcomer") {
		t.Errorf("no log line for the session that gave way:\n%s", f.logs.String())
	}
}
