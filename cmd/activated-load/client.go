package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func dial(addr, user string, signer gossh.Signer) (*gossh.Client, error) {
	cfg := &gossh.ClientConfig{
		User:            user,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // loopback servers started by this tool
		Timeout:         30 * time.Second,
	}
	if signer != nil {
		cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(signer)}
	}
	return gossh.Dial("tcp", addr, cfg)
}

// watcher collects a session's output and wakes whoever waits for a text.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
	keep bool // keep everything (plain mode); else only a tail
}

func newWatcher(keep bool) *watcher { return &watcher{wake: make(chan struct{}, 1), keep: keep} }

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	if !w.keep && w.buf.Len() > 64<<10 {
		b := bytes.Clone(w.buf.Bytes()[w.buf.Len()-4096:])
		w.buf.Reset()
		w.buf.Write(b)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns once ok(output) holds, or fails after limit.
func (w *watcher) wait(limit time.Duration, ok func(string) bool) (string, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		out := w.String()
		if ok(out) {
			return out, nil
		}
		select {
		case <-w.wake:
		case <-t.C:
			return out, fmt.Errorf("timed out after %v; output ends %q", limit, tailText(out, 300))
		}
	}
}

// tuiSession is an open session with a PTY.
type tuiSession struct {
	client *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	out    *watcher
	dialed time.Duration // the SSH handshake and authentication
}

func (t *tuiSession) close() {
	if t.client != nil {
		t.client.Close()
	}
}

// openTUI connects as user with an 80×24 PTY and waits for marker on the
// first screen; it returns the time from the dial to that screen.
func openTUI(addr, user, marker string) (*tuiSession, time.Duration, error) {
	start := time.Now()
	c, err := dial(addr, user, nil)
	if err != nil {
		return nil, 0, err
	}
	t := &tuiSession{client: c, out: newWatcher(false), dialed: time.Since(start)}
	if t.sess, err = c.NewSession(); err != nil {
		c.Close()
		return nil, 0, err
	}
	_ = t.sess.Setenv("LANG", "en_US.UTF-8")
	t.sess.Stdout, t.sess.Stderr = t.out, t.out
	if t.stdin, err = t.sess.StdinPipe(); err != nil {
		c.Close()
		return nil, 0, err
	}
	if err := t.sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		c.Close()
		return nil, 0, err
	}
	if err := t.sess.Shell(); err != nil {
		c.Close()
		return nil, 0, err
	}
	if _, err := t.out.wait(30*time.Second, func(s string) bool { return strings.Contains(s, marker) }); err != nil {
		c.Close()
		return nil, 0, err
	}
	return t, time.Since(start), nil
}

// frames opens n TUI sessions, c at a time, each closed at its first
// screen; it returns each latency, each handshake's share of it, and the
// wall time.
func frames(ctx context.Context, s *server, n, c int) ([]time.Duration, []time.Duration, time.Duration, error) {
	var (
		mu    sync.Mutex
		lats  []time.Duration
		dials []time.Duration
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if ctx.Err() != nil {
					return
				}
				t, d, err := openTUI(s.addr, "activate", s.marker)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					lats = append(lats, d)
					dials = append(dials, t.dialed)
				}
				mu.Unlock()
				if t != nil {
					t.close()
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if len(errs) > 0 {
		return lats, dials, wall, fmt.Errorf("%d of %d sessions failed, first: %w", len(errs), n, errs[0])
	}
	return lats, dials, wall, ctx.Err()
}

// hold opens n idle TUI sessions, c at a time; close them with closeAll
// (on an error too: it returns those it opened).
func hold(ctx context.Context, s *server, n, c int) ([]*tuiSession, error) {
	var (
		mu   sync.Mutex
		out  []*tuiSession
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if ctx.Err() != nil {
					return
				}
				t, _, err := openTUI(s.addr, "activate", s.marker)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out = append(out, t)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return out, fmt.Errorf("%d of %d sessions failed, first: %w", len(errs), n, errs[0])
	}
	return out, ctx.Err()
}

func closeAll(ts []*tuiSession) {
	var wg sync.WaitGroup
	for i := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); ts[i].close() }()
	}
	wg.Wait()
}

// handshakes connects as activate n times with no session. A connection
// that opens no session is a misbehaviour the server may penalise its
// source for: each comes from its own loopback address (127.0.0.2 to
// 127.0.0.251 in turn).
func handshakes(s *server, n int) error {
	cfg := &gossh.ClientConfig{User: "activate", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}
	for i := range n {
		d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%250))}}
		nc, err := d.Dial("tcp", s.addr)
		if err != nil {
			return err
		}
		c, chans, reqs, err := gossh.NewClientConn(nc, s.addr, cfg)
		if err != nil {
			nc.Close()
			return err
		}
		gossh.NewClient(c, chans, reqs).Close()
	}
	return nil
}

// staff runs a staff command and returns its output.
func staff(r *activatedRun, cmd string) (string, error) {
	c, err := dial(r.addr, "staff", r.staffKey)
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// plainWalk runs the plain-mode procedure with code, answering each prompt
// of a student who keeps no redirect, up to the prompt stopAt ("" = to
// the end).
func plainWalk(addr, code, password, stopAt string) error {
	c, err := dial(addr, code+"+plain", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	_ = s.Setenv("LANG", "en_US.UTF-8")
	w := newWatcher(true)
	s.Stdout, s.Stderr = w, w
	in, err := s.StdinPipe()
	if err != nil {
		return err
	}
	if err := s.Shell(); err != nil {
		return err
	}
	answers := []struct{ prompt, answer string }{
		{"Confirm the password", password},
		{"New password", password},
		{"accept the IT charter", "y"},
		{"public directory", "yes"},
		{"Redirect my mail", "n"},
		{"Keep a copy", ""},
	}
	seen := 0
	for range 20 {
		out, err := w.wait(30*time.Second, func(out string) bool {
			if strings.Contains(out, "Your account is active.") {
				return true
			}
			last := out[strings.LastIndexByte(out, '\n')+1:]
			return len(out) > seen && strings.HasSuffix(last, "> ")
		})
		if err != nil {
			return err
		}
		if strings.Contains(out, "Your account is active.") {
			return nil
		}
		seen = len(out)
		last := out[strings.LastIndexByte(out, '\n')+1:]
		found := false
		for _, a := range answers {
			if strings.Contains(last, a.prompt) {
				if stopAt != "" && strings.Contains(last, stopAt) {
					return nil
				}
				if _, err := io.WriteString(in, a.answer+"\n"); err != nil {
					return err
				}
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("unexpected prompt %q; output ends %q", last, tailText(out, 600))
		}
	}
	return errors.New("too many prompts")
}
