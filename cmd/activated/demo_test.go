package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/internal/flowtest"
)

// runEnv names the environment variable that makes the test binary run
// as `activated` itself, with its value as arguments: a test can then
// start the real command in a process of its own and signal it.
const runEnv = "ACTIVATED_TEST_RUN"

func TestMain(m *testing.M) {
	if args := os.Getenv(runEnv); args != "" {
		os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr))
	}
	if path := os.Getenv(nodeEnv); path != "" { // e2e_etcd_test.go
		os.Exit(serveNode(path))
	}
	os.Exit(m.Run())
}

// `activated demo 2>&1 | tee log` as a user runs it, with no key of their
// own: staff get in with the key the demo made and printed; a wizard
// user cut off by the stop is told the demo's data is deleted (not that
// nothing is lost); Ctrl+C once tee is gone still removes the demo's
// folder, and the demo exits cleanly; the folder of a demo killed earlier
// is removed at start.
func TestDemoStaffKeyStopAndCleanup(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tmp := t.TempDir() // the demo's folder goes here
	// A demo killed with -9 left its folder, lock file unheld: the next
	// demo removes it. A folder without a lock file is not a demo's to
	// remove.
	dead, other := filepath.Join(tmp, "activated-demo-1"), filepath.Join(tmp, "activated-demo-2")
	for _, f := range []string{filepath.Join(dead, ".lock"), filepath.Join(dead, "activated.db"), filepath.Join(other, "activated.db")} {
		must(t, os.MkdirAll(filepath.Dir(f), 0o700))
		must(t, os.WriteFile(f, nil, 0o600))
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runEnv+"=demo -listen 127.0.0.1:"+strconv.Itoa(port),
		"HOME="+t.TempDir(), "TMPDIR="+tmp, "SSH_AUTH_SOCK=")
	pr, pw, err := os.Pipe()
	must(t, err)
	cmd.Stdout, cmd.Stderr = pw, pw
	must(t, cmd.Start())
	pw.Close()
	exited := make(chan struct{})
	var exit error
	go func() { exit = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	var out flowtest.Buffer
	go io.Copy(&out, pr) // tee
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(out.String(), "Ctrl+C stops the demo") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := regexp.MustCompile(`ssh -p \d+ -i (\S+) staff@127\.0\.0\.1 list`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the banner gives no staff command with a key:\n%s", out.String())
	}
	pem, err := os.ReadFile(m[1])
	must(t, err)
	key, err := gossh.ParsePrivateKey(pem)
	must(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dial := func(user string, auth ...gossh.AuthMethod) *gossh.Client {
		c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: user, Auth: auth, Timeout: waitLimit, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
		must(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	sc := dial("staff", gossh.PublicKeys(key))
	s, err := sc.NewSession()
	must(t, err)
	if list, err := s.Output("list"); err != nil || !bytes.Contains(list, []byte("hmoreau")) {
		t.Errorf("staff list with the demo's key: %v\n%s", err, list)
	}
	sc.Close() // an open connection would make the stop wait its grace

	wc := dial("activate+plain")
	w, err := wc.NewSession()
	must(t, err)
	must(t, w.Setenv("LANG", "en_US.UTF-8"))
	var said flowtest.Buffer
	w.Stdout, w.Stderr = &said, &said
	stdin, err := w.StdinPipe() // open: the user is still there
	must(t, err)
	defer stdin.Close()
	must(t, w.Shell())
	ended := make(chan struct{})
	go func() { w.Wait(); wc.Close(); close(ended) }() // as OpenSSH does once its session is over
	deadline = time.Now().Add(waitLimit)
	for !strings.HasSuffix(said.String(), "> ") {
		if time.Now().After(deadline) {
			t.Fatalf("no prompt:\n%s", said.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	pr.Close() // tee is gone: the demo's next write to the pipe fails
	must(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-exited:
	case <-time.After(waitLimit):
		t.Fatal("the demo did not stop on SIGINT")
	}
	var ee *exec.ExitError
	if errors.As(exit, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Errorf("the demo was killed by %v", ws.Signal())
		} else {
			t.Errorf("the demo exited with %v", exit)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 1 || left[0].Name() != filepath.Base(other) {
		t.Errorf("in %s after the demo: %v, want only %s", tmp, left, filepath.Base(other))
	}
	if !strings.Contains(out.String(), "Removed "+dead+", left by a demo that was killed") {
		t.Errorf("the demo did not say it removed %s:\n%s", dead, out.String())
	}
	<-ended
	if got := said.String(); !strings.Contains(got, "its data is deleted") || strings.Contains(got, "nothing is lost") {
		t.Errorf("the wizard user was told, at the stop:\n%s", tail(got, 400))
	}
}
