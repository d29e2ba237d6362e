// Command activated-abuse runs the front door's abuse cases against a
// staging activated server and prints, for each, what held:
//
//	activated-abuse -addr 127.0.0.1:2222 -pid $(pidof activated)
//
// It talks to loopback only unless -remote is given, and every case is
// bounded in count and time. With -pid (a server on this machine, same
// user) it also reads the server's memory (RSS) and open files from /proc.
//
// Cases (-cases, comma-separated, default all; staffkeys is skipped
// without its flags): giantpty, winch, nat, flood, stall, nosession, env,
// abrupt, staffkeys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/internal/sshprobe"
)

type options struct {
	addr, user                string
	remote                    bool
	pid                       int
	natUsers, natAtOnce       int
	flood, floodSources       int
	maxStartups, maxFDs       int
	abrupt, abruptAtOnce      int
	rssLimit, rssAbort        int64
	staffKey, staffKeysFile   string
	caseTimeout, sessionWaitT time.Duration
}

func main() {
	var o options
	var cases string
	flag.StringVar(&o.addr, "addr", "127.0.0.1:2222", "the server to try (host:port)")
	flag.StringVar(&o.user, "user", "activate", "the wizard user name")
	flag.BoolVar(&o.remote, "remote", false, "allow a server that is not on loopback (a staging server you run)")
	flag.IntVar(&o.pid, "pid", 0, "the server's process id, to read its RSS and open files from /proc (same machine)")
	flag.StringVar(&cases, "cases", "giantpty,winch,nat,flood,stall,nosession,env,abrupt,staffkeys", "cases to run, comma-separated")
	flag.IntVar(&o.natUsers, "nat-users", 300, "nat: users behind one address, all within a minute")
	flag.IntVar(&o.natAtOnce, "nat-at-once", 10, "nat: connections in flight at once")
	flag.IntVar(&o.flood, "flood", 2000, "flood: silent connections (at most 5000)")
	flag.IntVar(&o.floodSources, "flood-sources", 100, "flood: source addresses 127.0.0.2… (loopback only, at most 250)")
	flag.IntVar(&o.maxStartups, "max-startups", 100, "flood: the server's ssh.max_startups")
	flag.IntVar(&o.maxFDs, "max-fds", 500, "flood: open files the server may hold")
	flag.IntVar(&o.abrupt, "abrupt", 1000, "abrupt: disconnects (at most 5000)")
	flag.IntVar(&o.abruptAtOnce, "abrupt-at-once", 10, "abrupt: connections in flight at once")
	flag.Int64Var(&o.rssLimit, "rss-limit", 400<<20, "giantpty, winch: the RSS the server must stay under (bytes)")
	flag.Int64Var(&o.rssAbort, "rss-abort", 2<<30, "giantpty, winch: leave as soon as the server's RSS passes this (bytes)")
	flag.StringVar(&o.staffKey, "staff-key", "", "staffkeys: a private key listed in the staff keys file")
	flag.StringVar(&o.staffKeysFile, "staff-keys-file", "", "staffkeys: the server's staff keys file (made world-writable for a moment)")
	flag.DurationVar(&o.caseTimeout, "case-timeout", 2*time.Minute, "the longest one case may take")
	flag.DurationVar(&o.sessionWaitT, "session-wait", 30*time.Second, "nosession: how long the server lets an authenticated connection open no session")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "activated-abuse:", err)
		os.Exit(2)
	}
	failed := 0
	for _, name := range strings.Split(cases, ",") {
		run, ok := allCases[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(os.Stderr, "activated-abuse: no case %q\n", name)
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.caseTimeout)
		start := time.Now()
		r := run(ctx, &o)
		cancel()
		verdict := "HELD"
		switch {
		case r.skipped != "":
			verdict = "SKIPPED"
		case !r.held:
			verdict = "FAILED"
			failed++
		}
		fmt.Printf("%-9s %-7s %s (%s)\n", name, verdict, r.String(), time.Since(start).Round(100*time.Millisecond))
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func (o *options) check() error {
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() && !o.remote {
			return fmt.Errorf("%s is not a loopback address: give -remote to try a staging server you run", o.addr)
		}
	}
	if o.flood > 5000 || o.abrupt > 5000 || o.natUsers > 5000 || o.floodSources > 250 || o.floodSources < 1 {
		return errors.New("counts are bounded: -flood, -abrupt and -nat-users at most 5000, -flood-sources 1 to 250")
	}
	return nil
}

// result is what a case found.
type result struct {
	held    bool
	skipped string
	facts   []string
}

func (r *result) add(format string, args ...any) {
	r.facts = append(r.facts, fmt.Sprintf(format, args...))
}

func (r result) String() string {
	if r.skipped != "" {
		return r.skipped
	}
	return strings.Join(r.facts, "; ")
}

var allCases = map[string]func(context.Context, *options) result{
	"giantpty": func(ctx context.Context, o *options) result { return giantTerminal(ctx, o, false) },
	"winch":    func(ctx context.Context, o *options) result { return giantTerminal(ctx, o, true) },
	"nat":      nat,
	"flood":    func(ctx context.Context, o *options) result { return flood(ctx, o, "") },
	// stall: the same, each connection sending its SSH version, then
	// nothing (a handshake left hanging).
	"stall":     func(ctx context.Context, o *options) result { return flood(ctx, o, "SSH-2.0-abuse\r\n") },
	"nosession": noSession,
	"env":       envFlood,
	"abrupt":    abrupt,
	"staffkeys": staffKeys,
}

// dial opens an SSH connection as user from local ("" for any).
func dial(ctx context.Context, o *options, local, user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	cc, chans, reqs, err := gossh.NewClientConn(conn, o.addr, &gossh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return gossh.NewClient(cc, chans, reqs), nil
}

// step1 connects from local and waits for the wizard's first prompt (plain
// mode, no PTY).
func step1(ctx context.Context, o *options, local string) error {
	c, err := dial(ctx, o, local, o.user)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := sshprobe.FirstPrompt(c); err != nil {
		return fmt.Errorf("no login prompt: %w", err)
	}
	return nil
}

// proc reads the server's RSS (bytes) and open files, -1 when unknown.
func proc(o *options) (rss int64, fds int) {
	rss, fds = -1, -1
	if o.pid == 0 {
		return
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	if e, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", o.pid)); err == nil {
		fds = len(e)
	}
	return
}

func mb(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%d MB", b>>20)
}

// giantTerminal asks for a 65535×65535 terminal (in the pty request, or by
// a window change after a normal one) and watches the server's RSS while
// it draws, and after the client has left.
func giantTerminal(ctx context.Context, o *options, byResize bool) result {
	var r result
	c, err := dial(ctx, o, "", o.user)
	if err != nil {
		r.add("could not connect: %v", err)
		return r
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		r.add("no session: %v", err)
		return r
	}
	var out atomic.Int64
	pr, err := s.StdoutPipe()
	if err != nil {
		r.add("%v", err)
		return r
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			out.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	in, err := s.StdinPipe()
	if err != nil {
		r.add("%v", err)
		return r
	}
	rows, cols := 65535, 65535
	if byResize {
		rows, cols = 24, 80
	}
	if err := s.RequestPty("xterm-256color", rows, cols, gossh.TerminalModes{}); err != nil {
		r.add("pty refused: %v", err)
	}
	if err := s.Shell(); err != nil {
		r.add("shell refused: %v", err)
		return r
	}
	rss0, _ := proc(o)
	peak := rss0
	watch := func(d time.Duration) bool { // false when the RSS passed rssAbort
		end := time.Now().Add(d)
		for time.Now().Before(end) && ctx.Err() == nil {
			rss, _ := proc(o)
			peak = max(peak, rss)
			if rss > o.rssAbort {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
		return true
	}
	ok := watch(3 * time.Second)
	atResize := out.Load()
	if byResize && ok {
		_ = s.WindowChange(65535, 65535)
		_, _ = io.WriteString(in, "x") // a keystroke: the screen is drawn again
		ok = watch(5 * time.Second)
	} else if ok {
		ok = watch(5 * time.Second)
	}
	c.Close()
	if ok {
		watch(3 * time.Second)
	}
	after, _ := proc(o)
	r.add("server RSS %s before, peak %s, %s 3 s after the client left; %d bytes drawn", mb(rss0), mb(peak), mb(after), out.Load())
	if !ok {
		r.add("left early: RSS passed %s", mb(o.rssAbort))
	}
	if byResize {
		r.add("%d bytes drawn after the resize", out.Load()-atResize)
	}
	// Held: the server kept drawing (after the resize too) within the
	// memory bound.
	r.held = ok && out.Load() > 0 && (!byResize || out.Load() > atResize) && (o.pid == 0 || peak < o.rssLimit)
	if o.pid == 0 {
		r.add("no -pid: memory not measured")
	}
	return r
}

// nat connects natUsers users from one address within a minute, natAtOnce
// at a time, each waiting for step 1.
func nat(ctx context.Context, o *options) result {
	var r result
	var reached, failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, o.natAtOnce)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.natUsers {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := step1(ctx, o, ""); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			reached.Add(1)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r.add("%d of %d users behind one address reached step 1 in %s", reached.Load(), o.natUsers, took.Round(100*time.Millisecond))
	if e := firstErr.Load(); e != nil {
		r.add("first failure: %s", e)
	}
	r.held = int(reached.Load()) == o.natUsers && took <= time.Minute
	return r
}

// silent is a set of connections that never send a byte.
type silent struct {
	held  atomic.Int32
	mu    sync.Mutex
	conns []net.Conn
}

func (s *silent) open(ctx context.Context, o *options, local, say string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return err
	}
	if say != "" {
		_, _ = io.WriteString(c, say)
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	s.held.Add(1)
	go func() {
		defer s.held.Add(-1)
		_, _ = io.Copy(io.Discard, c)
	}()
	return nil
}

func (s *silent) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// flood opens connections from many addresses that send say (nothing when
// "") and then nothing, then has a real user connect (trying again each
// second, as a person would) while they are held.
func flood(ctx context.Context, o *options, say string) result {
	var r result
	var s silent
	defer s.close()
	_, fds0 := proc(o)
	local := func(i int) string {
		if o.remote {
			return ""
		}
		return fmt.Sprintf("127.0.0.%d", 2+i%o.floodSources)
	}
	refusedAtDial := 0
	for i := range o.flood {
		if err := s.open(ctx, o, local(i), say); err != nil {
			refusedAtDial++
		}
	}
	time.Sleep(2 * time.Second) // the server sorts them out
	heldBefore := s.held.Load()
	_, fdsFlood := proc(o)
	start := time.Now()
	var userErr error
	tries := 0
	for time.Since(start) < 15*time.Second && ctx.Err() == nil {
		tries++
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		userErr = step1(attempt, o, "")
		cancel()
		if userErr == nil {
			break
		}
		time.Sleep(time.Second)
	}
	took := time.Since(start)
	heldAfter := s.held.Load()
	_, fdsAfter := proc(o)
	kind := "silent"
	if say != "" {
		kind = "stalled"
	}
	r.add("%d %s connections from %d addresses: the server held %d of them (then %d), %d refused at connect; server fds %d before, %d during",
		o.flood, kind, min(o.floodSources, o.flood), heldBefore, heldAfter, refusedAtDial, fds0, max(fdsFlood, fdsAfter))
	if userErr != nil {
		r.add("a real user did not reach step 1 in %d tries: %v", tries, userErr)
	} else {
		r.add("a real user reached step 1 in %s (%d tries)", took.Round(time.Millisecond), tries)
	}
	tolerance := o.maxStartups / 10
	r.held = userErr == nil && took <= 10*time.Second && int(max(heldBefore, heldAfter)) <= o.maxStartups+tolerance &&
		(o.pid == 0 || max(fdsFlood, fdsAfter) <= o.maxFDs)
	return r
}

// noSession authenticates and opens no session: the server should close
// the connection after its session wait.
func noSession(ctx context.Context, o *options) result {
	var r result
	c, err := dial(ctx, o, "", o.user)
	if err != nil {
		r.add("could not connect: %v", err)
		return r
	}
	defer c.Close()
	start := time.Now()
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	limit := o.sessionWaitT + 15*time.Second
	select {
	case <-done:
		took := time.Since(start)
		r.add("closed by the server after %s with no session", took.Round(100*time.Millisecond))
		r.held = took <= limit
	case <-time.After(limit):
		r.add("still open after %s with no session", limit)
	case <-ctx.Done():
		r.add("still open at the case's time limit")
	}
	return r
}

// envFlood sends a 200 KB LANG and 64 env values of 30 KB each, and counts
// what the server accepts.
func envFlood(ctx context.Context, o *options) result {
	var r result
	c, err := dial(ctx, o, "", o.user)
	if err != nil {
		r.add("could not connect: %v", err)
		return r
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		r.add("no session: %v", err)
		return r
	}
	defer s.Close()
	rss0, _ := proc(o)
	accepted, bytes := 0, 0
	try := func(k, v string) {
		if s.Setenv(k, v) == nil {
			accepted++
			bytes += len(k) + len(v)
		}
	}
	try("LANG", strings.Repeat("x", 200_000))
	for i := range 64 {
		try(fmt.Sprintf("LC_X%d", i), strings.Repeat("y", 30_000))
	}
	small := 0
	for i := range 64 {
		if s.Setenv(fmt.Sprintf("LC_S%d", i), "fr_FR.UTF-8") == nil {
			small++
		}
	}
	rss1, _ := proc(o)
	r.add("large env values accepted: %d (%d bytes); short locale values accepted: %d of 64; server RSS %s → %s", accepted, bytes, small, mb(rss0), mb(rss1))
	r.held = accepted == 0 && small <= 16
	return r
}

// abrupt opens sessions with a PTY and drops their TCP connections without
// any SSH goodbye, then checks the server's open files come back.
func abrupt(ctx context.Context, o *options) result {
	var r result
	_, fds0 := proc(o)
	var ok, failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, o.abruptAtOnce)
	var wg sync.WaitGroup
	for range o.abrupt {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := abruptOne(ctx, o); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	_, fdsEnd := proc(o)
	deadline := time.Now().Add(30 * time.Second)
	for o.pid != 0 && fdsEnd > fds0+5 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		_, fdsEnd = proc(o)
	}
	r.add("%d abrupt disconnects (%d failed to start); server fds %d before, %d after", ok.Load(), failed.Load(), fds0, fdsEnd)
	if e := firstErr.Load(); e != nil {
		r.add("first failure: %s", e)
	}
	r.held = int(ok.Load()) == o.abrupt && (o.pid == 0 || fdsEnd <= fds0+5)
	return r
}

func abruptOne(ctx context.Context, o *options) error {
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return err
	}
	defer conn.Close() // no SSH goodbye
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	cc, chans, reqs, err := gossh.NewClientConn(conn, o.addr, &gossh.ClientConfig{User: o.user, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		return err
	}
	s, err := gossh.NewClient(cc, chans, reqs).NewSession()
	if err != nil {
		return err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		return err
	}
	if _, err := s.StdinPipe(); err != nil {
		return err
	}
	if err := s.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		return err
	}
	if err := s.Shell(); err != nil {
		return err
	}
	if _, err := out.Read(make([]byte, 1)); err != nil { // the first frame
		return err
	}
	_ = s.WindowChange(30, 100)
	return nil
}

// staffKeys runs a staff command, makes the staff keys file world-writable
// and measures how long until staff are refused, then restores its mode.
func staffKeys(ctx context.Context, o *options) result {
	var r result
	if o.staffKey == "" || o.staffKeysFile == "" {
		r.skipped = "give -staff-key and -staff-keys-file"
		return r
	}
	pem, err := os.ReadFile(o.staffKey)
	if err != nil {
		r.add("%v", err)
		return r
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		r.add("%s: %v", o.staffKey, err)
		return r
	}
	staffRuns := func() bool {
		c, err := dial(ctx, o, "", "staff", gossh.PublicKeys(signer))
		if err != nil {
			return false
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return false
		}
		defer s.Close()
		return s.Run("help") == nil
	}
	if !staffRuns() {
		r.add("the staff key is not accepted to begin with")
		return r
	}
	st, err := os.Stat(o.staffKeysFile)
	if err != nil {
		r.add("%v", err)
		return r
	}
	if err := os.Chmod(o.staffKeysFile, 0o666); err != nil {
		r.add("%v", err)
		return r
	}
	defer os.Chmod(o.staffKeysFile, st.Mode().Perm())
	start := time.Now()
	refused := false
	for time.Since(start) < 10*time.Second && ctx.Err() == nil {
		if !staffRuns() {
			refused = true
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	took := time.Since(start)
	if refused {
		r.add("staff refused %s after chmod 666 of the staff keys file", took.Round(time.Millisecond))
	} else {
		r.add("staff still accepted %s after chmod 666 of the staff keys file", took.Round(time.Second))
	}
	r.held = refused && took < 5*time.Second
	return r
}
