package sshapp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	charmlog "charm.land/log/v2"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"activated/flow"
	"activated/flow/i18n"
	"activated/hostkeys"
	"activated/internal/flowtest"
	"activated/sshapp"
	"activated/storage"
)

func TestMain(m *testing.M) {
	// wish's bubbletea middleware logs "app exit with error" through charm's
	// global logger each time a client vanishes mid-program.
	charmlog.SetOutput(io.Discard)
	os.Exit(m.Run())
}

const waitLimit = 15 * time.Second

// staffCall is what the staff handler received.
type staffCall struct {
	who  sshapp.Staff
	args []string
}

// sshFixture is a running server with its peers.
type sshFixture struct {
	addr     string
	db       *storage.DB
	svc      *flow.Service
	srv      *sshapp.Server
	keysFile string
	staffKey gossh.Signer // listed in keysFile as "alice@it"
	calls    chan staffCall
	logs     *flowtest.Buffer
	served   chan error
}

func newKey(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizedLine(s gossh.Signer, comment string) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey()))) + " " + comment + "\n"
}

func startServer(t testing.TB, edit func(*sshapp.Config)) *sshFixture {
	t.Helper()
	return startServerWith(t, flow.Config{}, edit)
}

// startServerWith is startServer with the flow settings of fc (its
// charter and language are the fixture's).
func startServerWith(t testing.TB, fc flow.Config, edit func(*sshapp.Config)) *sshFixture {
	t.Helper()
	dir := t.TempDir()
	db, err := storage.Open(filepath.Join(dir, "db", "activated.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	directory := flowtest.NewDirectory(flow.Account{Login: "jdoe", DN: "uid=jdoe,ou=people,dc=example,dc=org", GivenName: "John", Surname: "Doe",
		DisplayName: "John Doe", RecoveryMails: []string{"john@example.net"}, Affiliations: []string{"student"}})
	fc.Charter, fc.DefaultLang = []byte("# Charter\n\nBe nice.\n"), "fr"
	svc, err := flow.New(fc, db, directory, flow.SystemClock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := hostkeys.LoadOrCreate(filepath.Join(dir, "hostkeys", "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	f := &sshFixture{db: db, svc: svc, staffKey: newKey(t), calls: make(chan staffCall, 10),
		keysFile: filepath.Join(dir, "staff_keys"), logs: &flowtest.Buffer{}, served: make(chan error, 1)}
	if err := os.WriteFile(f.keysFile, []byte("# IT staff\n"+authorizedLine(f.staffKey, "alice@it")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := sshapp.Config{
		HostKey: hk, StaffKeysFile: f.keysFile, PublicHost: "activate.example.org", PublicPort: 2222,
		Services: []string{"ENT", "Moodle"},
		Log:      slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	staff := func(ctx context.Context, who sshapp.Staff, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		f.calls <- staffCall{who, args}
		if len(args) > 0 && args[0] == "follow" { // like audit --follow: until ctx ends
			io.WriteString(stdout, "following\n")
			<-ctx.Done()
			if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) { // the key withdrawn
				io.WriteString(stderr, cause.Error()+"\n")
				return 1
			}
			return 0
		}
		io.WriteString(stdout, "hello "+who.Name+"\n")
		return 3
	}
	f.srv, err = sshapp.New(cfg, svc, staff)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	go func() { f.served <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
	})
	return f
}

func (f *sshFixture) dial(t testing.TB, user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	t.Helper()
	c, err := gossh.Dial("tcp", f.addr, &gossh.ClientConfig{
		User: user, Auth: auth, Timeout: waitLimit,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (f *sshFixture) mustDial(t testing.TB, user string, auth ...gossh.AuthMethod) *gossh.Client {
	t.Helper()
	c, err := f.dial(t, user, auth...)
	if err != nil {
		t.Fatalf("dial as %q: %v", user, err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run runs a session (a shell when cmd is "") and returns its output and
// exit status.
func run(t testing.TB, c *gossh.Client, cmd string, env map[string]string) (stdout, stderr string, status int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, v := range env {
		if err := s.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut flowtest.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	if cmd == "" {
		err = s.Shell()
		if err == nil {
			err = s.Wait()
		}
	} else {
		err = s.Run(cmd)
	}
	var exit *gossh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitStatus()
	default:
		t.Fatalf("session %q: %v", cmd, err)
	}
	return out.String(), errOut.String(), status
}

func TestActivateGetsInWithNoAuthentication(t *testing.T) {
	f := startServer(t, nil)
	f.mustDial(t, "activate") // "none" only
}

func TestActivateGetsInWhileOfferingUnrelatedKeys(t *testing.T) {
	f := startServer(t, nil)
	// A default OpenSSH client with an agent full of keys: "none" first, so
	// neither the keys nor a password are ever needed.
	f.mustDial(t, "activate", gossh.PublicKeys(newKey(t), newKey(t)), gossh.Password("x"))
	f.mustDial(t, "activate+plain", gossh.PublicKeys(newKey(t)))
}

func TestStaffAuthentication(t *testing.T) {
	f := startServer(t, nil)
	if _, err := f.dial(t, "staff"); err == nil {
		t.Error("staff got in with no key")
	}
	if _, err := f.dial(t, "staff", gossh.PublicKeys(newKey(t))); err == nil {
		t.Error("staff got in with an unlisted key")
	}
	if _, err := f.dial(t, "staff", gossh.Password("hunter2")); err == nil {
		t.Error("staff got in with a password")
	}
	if _, err := f.dial(t, "staff", gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		return []string{"hunter2"}, nil
	})); err == nil {
		t.Error("staff got in with keyboard-interactive")
	}
	if len(f.calls) != 0 {
		t.Fatal("staff handler called without authentication")
	}

	// An unlisted key offered before the listed one is fine (agent order).
	c := f.mustDial(t, "staff", gossh.PublicKeys(newKey(t), f.staffKey))
	stdout, _, status := run(t, c, `status "jean dupont" --json`, nil)
	if status != 3 || stdout != "hello alice@it\n" {
		t.Errorf("staff command: status %d, output %q; want 3, %q", status, stdout, "hello alice@it\n")
	}
	call := <-f.calls
	want := []string{"status", "jean dupont", "--json"}
	if call.who.Name != "alice@it" || call.who.Fingerprint != gossh.FingerprintSHA256(f.staffKey.PublicKey()) ||
		strings.Join(call.args, "|") != strings.Join(want, "|") {
		t.Errorf("handler got %+v %q; want alice@it, %s, %q", call.who, call.args, gossh.FingerprintSHA256(f.staffKey.PublicKey()), want)
	}
}

func TestStaffKeysFileReloaded(t *testing.T) {
	f := startServer(t, nil)
	bob := newKey(t)
	if _, err := f.dial(t, "staff", gossh.PublicKeys(bob)); err == nil {
		t.Fatal("bob got in before being listed")
	}
	lines := authorizedLine(f.staffKey, "alice@it") + authorizedLine(bob, "bob")
	if err := os.WriteFile(f.keysFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	c := f.mustDial(t, "staff", gossh.PublicKeys(bob))
	if _, _, status := run(t, c, "list", nil); status != 3 {
		t.Errorf("status %d, want 3", status)
	}
	if call := <-f.calls; call.who.Name != "bob" {
		t.Errorf("name %q, want bob", call.who.Name)
	}

	// Removing a key locks its holder out, even on an open connection.
	if err := os.WriteFile(f.keysFile, []byte(authorizedLine(f.staffKey, "alice@it")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, status := run(t, c, "list", nil)
	if status != 1 || !strings.Contains(stderr, i18n.T("fr", "ssh.denied")) {
		t.Errorf("removed key: status %d, stderr %q", status, stderr)
	}
	if len(f.calls) != 0 {
		t.Error("staff handler called for a removed key")
	}
	if _, err := f.dial(t, "staff", gossh.PublicKeys(bob)); err == nil {
		t.Error("bob got in after being removed")
	}
}

func TestUnknownUserGetsExplanation(t *testing.T) {
	f := startServer(t, nil)
	for _, tc := range []struct {
		user string
		env  map[string]string
		lang string
	}{
		{"root", nil, "fr+en"}, // no locale sent: every language, the default first
		{"jdoe", map[string]string{"LANG": "en_GB.UTF-8"}, "en"},
		{"staff+plain", map[string]string{"LANG": "fr_FR.UTF-8"}, "fr"},
		// A locale that names no language (Debian, Docker and WSL default
		// to C.UTF-8) says nothing of what the user reads: every language.
		{"admin", map[string]string{"LANG": "C.UTF-8"}, "fr+en"},
		{"guest", map[string]string{"LC_ALL": "POSIX"}, "fr+en"},
	} {
		c := f.mustDial(t, tc.user)
		stdout, stderr, status := run(t, c, "", tc.env)
		var msgs []string
		for _, lang := range strings.Split(tc.lang, "+") {
			suffix := "" // asked for plain mode: kept
			if strings.HasSuffix(tc.user, "+plain") {
				suffix = "+plain"
			}
			msg := i18n.T(lang, "username.unknown",
				"ssh -p 2222 activate"+suffix+"@activate.example.org", "ssh -p 2222 "+i18n.T(lang, "ssh.code")+suffix+"@activate.example.org")
			msgs = append(msgs, strings.TrimRight(strings.ReplaceAll(msg, "\r\n", "\n"), "\n"))
		}
		want := strings.Join(msgs, "\n\n") + "\n"
		if status != 1 || stdout+stderr != want {
			t.Errorf("%s: status %d, output %q; want 1, %q", tc.user, status, stdout+stderr, want)
		}
	}
}

func TestWizardExecRefused(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	stdout, stderr, status := run(t, c, "ls -la", map[string]string{"LANG": "en_US.UTF-8"})
	want := i18n.T("en", "ssh.noexec", "ssh -p 2222 activate@activate.example.org") + "\n"
	if status != 1 || stdout != "" || stderr != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 1, \"\", %q", status, stdout, stderr, want)
	}
}

func TestSubsystemsAndForwardingRefused(t *testing.T) {
	f := startServer(t, nil)
	for _, c := range []*gossh.Client{f.mustDial(t, "activate"), f.mustDial(t, "staff", gossh.PublicKeys(f.staffKey))} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestSubsystem("sftp"); err == nil {
			t.Error("sftp subsystem accepted")
		}
		s.Close()

		if conn, err := c.Dial("tcp", f.addr); err == nil {
			conn.Close()
			t.Error("direct-tcpip (ssh -L) accepted")
		}
		if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
			l.Close()
			t.Error("tcpip-forward (ssh -R) accepted")
		}

		s, err = c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.RequestAgentForwarding(s); err == nil {
			t.Error("agent forwarding accepted")
		}
		if ok, err := s.SendRequest("x11-req", true, gossh.Marshal(struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})); ok || err != nil {
			t.Errorf("x11-req: ok %v, err %v", ok, err)
		}
		s.Close()
	}
	if len(f.calls) != 0 {
		t.Error("staff handler ran")
	}

}

// loginPrompt opens a plain session as user without a PTY and waits for
// the first prompt.
func loginPrompt(t *testing.T, c *gossh.Client) (*gossh.Session, io.WriteCloser, *flowtest.Buffer) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out flowtest.Buffer
	s.Stdout, s.Stderr = &out, &out
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first prompt", func() bool { return strings.Contains(out.String(), "> ") })
	return s, in, &out
}

func TestPlainWithoutPTYCompletesLogin(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	s, in, out := loginPrompt(t, c)
	defer s.Close()
	if _, err := io.WriteString(in, "jdoe\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the code prompt", func() bool { return strings.Count(out.String(), "> ") >= 2 })
	mails, err := f.db.Due(time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 1 || mails[0].Kind != flow.MailRecovery || mails[0].Login != "jdoe" {
		t.Fatalf("outbox %+v, want one recovery mail for jdoe", mails)
	}
}

func TestMaxSessions(t *testing.T) {
	f := startServer(t, func(c *sshapp.Config) { c.MaxSessions = 1 })
	first, in, _ := loginPrompt(t, f.mustDial(t, "activate"))

	c := f.mustDial(t, "activate")
	_, stderr, status := run(t, c, "", map[string]string{"LANG": "en"})
	if status != 1 || !strings.Contains(stderr, i18n.T("en", "ssh.busy")) {
		t.Errorf("over the cap: status %d, stderr %q", status, stderr)
	}

	in.Close() // end of input ends the plain session
	first.Wait()
	waitFor(t, "a free slot", func() bool {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out flowtest.Buffer
		s.Stdout, s.Stderr = &out, &out
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(waitLimit)
		for !strings.Contains(out.String(), "> ") && !strings.Contains(out.String(), i18n.T("fr", "ssh.busy")) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return strings.Contains(out.String(), "> ")
	})
}

func TestSessionsPerConnectionCapped(t *testing.T) {
	f := startServer(t, nil)
	c := f.mustDial(t, "activate")
	for range 4 {
		s, _, _ := loginPrompt(t, c)
		defer s.Close()
	}
	if s, err := c.NewSession(); err == nil {
		s.Close()
		t.Error("a fifth session opened on one connection")
	}
}

func TestConnectionLogHidesCode(t *testing.T) {
	f := startServer(t, nil)
	code := "K7M2-Q9XV-4TAB-CDEF"
	c := f.mustDial(t, strings.ToLower(code)+"+plain")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out flowtest.Buffer
	s.Stdout, s.Stderr = &out, &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an answer to the unknown code", func() bool { return out.String() != "" })
	c.Close()
	waitFor(t, "the connection log line", func() bool { return strings.Contains(f.logs.String(), "ssh connection") })
	logs := f.logs.String()
	if !strings.Contains(logs, "user=code+plain") || !strings.Contains(logs, "remote=127.0.0.1") || !strings.Contains(logs, "duration=") {
		t.Errorf("connection log lacks class, remote or duration:\n%s", logs)
	}
	norm, _ := flow.NormalizeCode(code)
	for _, secret := range []string{code, strings.ToLower(code), norm} {
		if strings.Contains(strings.ToLower(logs), strings.ToLower(secret)) {
			t.Errorf("the log holds the code:\n%s", logs)
		}
	}
}

func TestShutdown(t *testing.T) {
	f := startServer(t, nil)
	f.mustDial(t, "activate")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The open connection does not end by itself: Shutdown closes it when
	// ctx ends.
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	select {
	case err := <-f.served:
		if !errors.Is(err, sshapp.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", f.addr); err == nil {
		t.Error("still listening after Shutdown")
	}
}

// abruptSession opens a PTY session as user over a fresh connection,
// waits for its first output (the TUI's first frame when tui is set),
// resizes the window twice, then closes the TCP connection without any
// SSH goodbye.
func abruptSession(t *testing.T, f *sshFixture, user string, tui bool) {
	t.Helper()
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{
		User: user, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewClient(cc, chans, reqs).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out flowtest.Buffer
	s.Stdout = &out
	if _, err := s.StdinPipe(); err != nil { // open until the end: no EOF
		t.Fatal(err)
	}
	if err := s.Setenv("LANG", "en_US.UTF-8"); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, user+": the first screen", func() bool {
		return strings.Contains(out.String(), "> ") || tui && strings.Contains(out.String(), "\x1b[")
	})
	if tui == strings.Contains(out.String(), "> ") {
		t.Fatalf("%s: TUI %v, but the output is %q", user, tui, out.String())
	}
	for i := range 2 {
		if err := s.WindowChange(30+i, 100); err != nil {
			t.Fatalf("%s: window change: %v; output %q; log:\n%s", user, err, out.String(), f.logs.String())
		}
	}
}

// openFDs is the number of file descriptors this process has open.
func openFDs(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(fds)
}

// checkNoLeak runs n abrupt sessions and waits for the goroutine and file
// descriptor counts to come back to what they were before them.
func checkNoLeak(t *testing.T, n int, session func()) {
	t.Helper()
	session() // lazily started goroutines exist before counting
	const margin = 5
	var before, fdsBefore int
	waitFor(t, "a stable goroutine count", func() bool {
		n := runtime.NumGoroutine()
		time.Sleep(20 * time.Millisecond)
		before = runtime.NumGoroutine()
		return n == before
	})
	fdsBefore = openFDs(t)
	for range n {
		session()
	}
	waitFor(t, "the open files back to their count before", func() bool { return openFDs(t) <= fdsBefore+margin })
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before+margin {
		if time.Now().After(deadline) {
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines before, %d after %d abrupt disconnects:\n%s", before, runtime.NumGoroutine(), n, stacks.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoGoroutineLeakOnAbruptDisconnects(t *testing.T) {
	f := startServer(t, nil)
	checkNoLeak(t, 50, func() { abruptSession(t, f, "activate", true) })
}

func TestNoGoroutineLeakInPlainModeWithPTY(t *testing.T) {
	f := startServer(t, nil)
	checkNoLeak(t, 20, func() { abruptSession(t, f, "activate+plain", false) })
}

// openSession starts a shell as user, with a PTY of type term unless term
// is "", and returns its output so far (stdout and stderr) as it grows.
func openSession(t *testing.T, c *gossh.Client, term string, env map[string]string) (*gossh.Session, io.WriteCloser, *flowtest.Buffer) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for k, v := range env {
		if err := s.Setenv(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var out flowtest.Buffer
	s.Stdout, s.Stderr = &out, &out
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if term != "" {
		if err := s.RequestPty(term, 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return s, in, &out
}

func TestModeFollowsUsernameAndTerminal(t *testing.T) {
	f := startServer(t, nil)
	loginPrompt := "> "
	for _, tc := range []struct {
		user, term string
		tui        bool
	}{
		{"activate", "xterm-256color", true},
		{"activate", "dumb", false},
		{"activate+plain", "xterm-256color", false},
		{"activate", "", false},
	} {
		_, _, out := openSession(t, f.mustDial(t, tc.user), tc.term, map[string]string{"LANG": "en_US.UTF-8"})
		title := i18n.StepTitle("en", flow.StepLogin)
		waitFor(t, tc.user+" on "+tc.term+": the login screen", func() bool {
			return strings.Contains(out.String(), title) && (tc.tui || strings.Contains(out.String(), loginPrompt))
		})
		if got := strings.Contains(out.String(), "\x1b["); got != tc.tui {
			t.Errorf("%s on %q: escape sequences %v, want TUI %v:\n%q", tc.user, tc.term, got, tc.tui, out.String())
		}
	}
}

// inviteCode invites jdoe and returns the code from the outbox.
func inviteCode(t *testing.T, f *sshFixture) string {
	t.Helper()
	if out, err := f.svc.Invite(context.Background(), "jdoe", false, flow.Client{Actor: "staff:test"}); err != nil || out != flow.Invited {
		t.Fatalf("invite: %v, %v", out, err)
	}
	mails, err := f.db.Due(time.Now(), 100)
	if err != nil || len(mails) != 1 || mails[0].Code == "" {
		t.Fatalf("outbox %+v, %v; want one invitation", mails, err)
	}
	return mails[0].Code
}

func TestCodeUsernameOpensDossierAndReleasesIt(t *testing.T) {
	f := startServer(t, nil)
	code := inviteCode(t, f)
	for _, tc := range []struct {
		user, term string
	}{
		{strings.ToLower(code) + "+plain", ""},
		{code, "xterm-256color"},
	} {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		cc, chans, reqs, err := gossh.NewClientConn(conn, f.addr, &gossh.ClientConfig{
			User: tc.user, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitLimit,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, _, out := openSession(t, gossh.NewClient(cc, chans, reqs), tc.term, map[string]string{"LANG": "en_US.UTF-8"})
		title := i18n.StepTitle("en", flow.StepCharter)
		waitFor(t, tc.term+": the charter", func() bool { return strings.Contains(out.String(), title) })
		if !f.svc.Busy("jdoe") {
			t.Fatalf("%s: the dossier is not held by the session", tc.term)
		}
		conn.Close() // abrupt: the dossier must be released all the same
		waitFor(t, tc.term+": the dossier released", func() bool { return !f.svc.Busy("jdoe") })
	}
}

func TestPlainWithPTYSurvivesResizes(t *testing.T) {
	f := startServer(t, nil)
	s, in, out := openSession(t, f.mustDial(t, "activate"), "dumb", nil)
	waitFor(t, "the login prompt", func() bool { return strings.Contains(out.String(), "> ") })
	// More resizes than the SSH channel buffers: unread, they would stall
	// the connection.
	for i := range 40 {
		if err := s.WindowChange(30+i, 100); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(in, "jdoe\r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the code prompt", func() bool { return strings.Count(out.String(), "> ") >= 2 })
}

func TestNewErrorsAndServeAfterShutdown(t *testing.T) {
	f := startServer(t, nil)
	if _, err := sshapp.New(sshapp.Config{}, f.svc, nil); err == nil {
		t.Error("New without a host key succeeded")
	}
	if _, err := sshapp.New(sshapp.Config{HostKey: newKey(t)}, nil, nil); err == nil {
		t.Error("New without a service succeeded")
	}
	if _, err := sshapp.New(sshapp.Config{HostKey: newKey(t), MaxSessions: -1}, f.svc, nil); err == nil {
		t.Error("New with negative max sessions succeeded")
	}
	srv, err := sshapp.New(sshapp.Config{HostKey: newKey(t)}, f.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); !errors.Is(err, sshapp.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

func TestStaffWithoutHandlerDenied(t *testing.T) {
	f := startServer(t, nil)
	srv, err := sshapp.New(sshapp.Config{HostKey: newKey(t), StaffKeysFile: f.keysFile}, f.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) }) // after the client's cleanup
	g := &sshFixture{addr: l.Addr().String()}
	_, stderr, status := run(t, g.mustDial(t, "staff", gossh.PublicKeys(f.staffKey)), "list", nil)
	if status != 1 || !strings.Contains(stderr, i18n.T("fr", "ssh.denied")) {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
}

// A stop ends wizard sessions at once and cleanly: the TUI quits (its
// terminal restored: the alternate screen left) and the plain prompts
// end, each followed by how to come back; Shutdown does not wait for them.
func TestShutdownTellsWizardUsers(t *testing.T) {
	f := startServer(t, nil)
	en := map[string]string{"LANG": "en_US.UTF-8"}
	tuiClient, plainClient := f.mustDial(t, "activate"), f.mustDial(t, "activate")
	tuiSess, _, tuiOut := openSession(t, tuiClient, "xterm-256color", en)
	plainSess, _, plainOut := openSession(t, plainClient, "", en)
	waitFor(t, "the TUI's first frame", func() bool { return strings.Contains(tuiOut.String(), "Step 1 of 7") })
	waitFor(t, "the plain prompt", func() bool { return strings.HasSuffix(plainOut.String(), "> ") })

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- f.srv.Shutdown(ctx) }()
	for name, c := range map[string]struct {
		c   *gossh.Client
		s   *gossh.Session
		out *flowtest.Buffer
	}{"tui": {tuiClient, tuiSess, tuiOut}, "plain": {plainClient, plainSess, plainOut}} {
		if err := c.s.Wait(); err != nil {
			t.Errorf("%s: exit %v, want 0", name, err)
		}
		c.c.Close() // as OpenSSH does once its session is over
		out := c.out.String()
		back := map[string]string{"tui": "ssh -p 2222 CODE@activate.example.org", "plain": "ssh -p 2222 CODE+plain@activate.example.org"}[name]
		if !strings.Contains(out, "The service is restarting; nothing is lost.") || !strings.Contains(out, back) {
			t.Errorf("%s: no word on the restart:\n%q", name, tailOf(out, 400))
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown waited for the sessions to end by themselves: %v", err)
	}
	if out := tuiOut.String(); !strings.Contains(out, "\x1b[?1049l") {
		t.Error("the TUI did not leave the alternate screen")
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
