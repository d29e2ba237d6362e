// Command activated-load puts activated under load side by side with a
// bare wish v2 + bubbletea v2 "hello" server built on the same module
// versions (internal/loadtest/bare), interleaving the two in one run, and
// prints a Markdown table of the figures and their ratios. It builds both
// servers from the source tree, starts them (activated with its own slapd
// holding generated accounts and a maildir), drives them with
// golang.org/x/crypto/ssh clients over loopback, reads their CPU, memory,
// threads and fds from /proc, and stops everything it started. Every mode
// is bounded in count, and the whole run by -timeout.
//
//	go run ./cmd/activated-load [-modes frame,idle,activate,paste] [-c 1,16,64] [-idle 1000] …
//
// Modes:
//   - frame: first screens per second and latency (dial to first screen)
//     at each concurrency of -c;
//   - idle: -idle sessions held open (each list entry in turn): the
//     server's RSS, threads, fds and goroutines per session, and its CPU
//     over -window;
//   - activate: -activations plain-mode walks with invitation codes against
//     the real slapd, the server's CPU per walk beyond the SSH handshake
//     (measured separately);
//   - paste: one TUI session at the password step pastes 100 characters,
//     then changes the field -paste-rate times a second for -paste-for,
//     while another user connects every 250 ms.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	root, host, modes, dir string
	rounds, frames         int
	conc, idle             []int
	window                 time.Duration
	activations, hands     int
	pasteRate              int
	pasteFor               time.Duration
	pprof                  bool
	profileFor             time.Duration
	timeout                time.Duration
}

func main() {
	var o options
	var conc, idle string
	flag.StringVar(&o.root, "root", "", "source tree to build (default: the module around the working directory)")
	flag.StringVar(&o.host, "host", "127.0.0.1", "loopback address the servers listen on")
	flag.StringVar(&o.modes, "modes", "frame,idle,activate", "modes to run: frame, idle, activate, paste")
	flag.StringVar(&o.dir, "dir", "", "keep binaries, logs and profiles here (default: a temporary directory, removed)")
	flag.IntVar(&o.rounds, "rounds", 3, "frame mode: rounds, the two servers alternating")
	flag.IntVar(&o.frames, "frames", 100, "frame mode: sessions per server, concurrency and round")
	flag.StringVar(&conc, "c", "1,16,64", "frame mode: concurrencies")
	flag.StringVar(&idle, "idle", "1000", "idle mode: sessions held, one run per entry")
	flag.DurationVar(&o.window, "window", 10*time.Second, "idle mode: CPU measured over this long")
	flag.IntVar(&o.activations, "activations", 40, "activate mode: walks (at most 1000)")
	flag.IntVar(&o.hands, "handshakes", 200, "activate mode: handshakes measured alone")
	flag.IntVar(&o.pasteRate, "paste-rate", 1000, "paste mode: field changes per second")
	flag.DurationVar(&o.pasteFor, "paste-for", 10*time.Second, "paste mode: how long")
	flag.BoolVar(&o.pprof, "pprof", false, "build activated with -tags pprof and save CPU and heap profiles in -dir")
	flag.DurationVar(&o.profileFor, "profile-for", 5*time.Second, "activate mode with -pprof: CPU profile of the walks' first this long (shorter than the walks)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Parse()
	var err error
	if o.conc, err = parseInts(conc); err == nil {
		o.idle, err = parseInts(idle)
	}
	if err == nil && (o.activations < 1 || o.activations > 1000) {
		err = fmt.Errorf("-activations %d: want 1 to 1000", o.activations)
	}
	if ip := net.ParseIP(o.host); err == nil && (ip == nil || !ip.IsLoopback()) {
		err = fmt.Errorf("-host %q: a loopback address is required", o.host)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "activated-load:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "activated-load:", err)
		os.Exit(1)
	}
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	for err == nil {
		if _, e := os.Stat(filepath.Join(d, "go.mod")); e == nil {
			return d, nil
		}
		if p := filepath.Dir(d); p != d {
			d = p
			continue
		}
		err = fmt.Errorf("no go.mod above the working directory: use -root")
	}
	return "", err
}

// raiseFDs lifts the soft limit on open files to the hard one, for the
// tool and the servers it starts.
func raiseFDs() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}

func run(o options, w io.Writer) error {
	// Ctrl+C or a TERM ends the run early, the servers stopped all the same.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.root == "" {
		var err error
		if o.root, err = moduleRoot(); err != nil {
			return err
		}
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "activated-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	limit := raiseFDs()
	if need := uint64(slices.Max(o.idle)) + 200; limit < need { // per process: the tool and each server
		return fmt.Errorf("open files limit %d, %d needed for -idle %d: raise it (ulimit -Hn)", limit, need, slices.Max(o.idle))
	}
	tags := ""
	if o.pprof {
		tags = "pprof"
	}
	fmt.Fprintf(os.Stderr, "building in %s…\n", o.dir)
	if err := build(ctx, o.root, o.dir, tags); err != nil {
		return err
	}
	modes := map[string]bool{}
	for _, m := range strings.Split(o.modes, ",") {
		modes[strings.TrimSpace(m)] = true
	}
	accounts := 0
	if modes["activate"] || modes["paste"] {
		accounts = o.activations + 1
	}
	bare, err := startBare(o.dir, o.host)
	if bare != nil {
		defer bare.stop()
	}
	if err != nil {
		return err
	}
	act, err := startActivated(ctx, o.dir, o.host, accounts, o.pprof)
	if act != nil {
		defer act.stop()
	}
	if err != nil {
		return err
	}
	both := []*server{act.server, bare}
	var rows []row
	if modes["frame"] {
		r, err := frameMode(ctx, o, both)
		rows = append(rows, r...)
		if err != nil {
			table(w, rows)
			return err
		}
	}
	if modes["idle"] {
		r, err := idleMode(ctx, o, both)
		rows = append(rows, r...)
		if err != nil {
			table(w, rows)
			return err
		}
	}
	var codes []string
	if accounts > 0 {
		if codes, err = invite(ctx, act); err != nil {
			table(w, rows)
			return err
		}
	}
	if modes["activate"] {
		r, err := activateMode(ctx, o, act, bare, codes[:o.activations])
		rows = append(rows, r...)
		if err != nil {
			table(w, rows)
			return err
		}
	}
	if modes["paste"] {
		r, err := pasteMode(ctx, o, act, codes[len(codes)-1])
		rows = append(rows, r...)
		if err != nil {
			table(w, rows)
			return err
		}
	}
	fmt.Fprintf(w, "\nactivated-load: %d cores, -modes %s -rounds %d -frames %d -c %s -idle %s -window %v -activations %d\n\n",
		numCPU(), o.modes, o.rounds, o.frames, joinInts(o.conc), joinInts(o.idle), o.window, o.activations)
	table(w, rows)
	return nil
}

func frameMode(ctx context.Context, o options, both []*server) ([]row, error) {
	type acc struct {
		lats, dials []time.Duration
		wall        time.Duration
	}
	res := map[string]map[int]*acc{}
	for _, s := range both {
		res[s.name] = map[int]*acc{}
		for _, c := range o.conc {
			res[s.name][c] = &acc{}
		}
	}
	if o.pprof && both[0].pprof != "" { // a CPU profile of the first seconds of frames
		go func() {
			path, err := both[0].profile(o.dir, "profile", 10*time.Second)
			fmt.Fprintf(os.Stderr, "frame profile: %s %v\n", path, err)
		}()
	}
	for round := range o.rounds {
		for _, c := range o.conc {
			order := both
			if round%2 == 1 {
				order = []*server{both[1], both[0]}
			}
			for _, s := range order {
				lats, dials, wall, err := frames(ctx, s, o.frames, c)
				if err != nil {
					return nil, fmt.Errorf("frame %s c=%d: %w", s.name, c, err)
				}
				a := res[s.name][c]
				a.lats, a.dials, a.wall = append(a.lats, lats...), append(a.dials, dials...), a.wall+wall
				fmt.Fprintf(os.Stderr, "round %d c=%d %s: p50 %v (handshake %v), %.0f/s\n", round, c, s.name,
					quantile(lats, .5), quantile(dials, .5), float64(len(lats))/wall.Seconds())
			}
		}
	}
	var rows []row
	for _, c := range o.conc {
		a, b := res[both[0].name][c], res[both[1].name][c]
		pa, pb := quantile(a.lats, .5), quantile(b.lats, .5)
		target := ""
		if c == 1 {
			target = "≤ 0.75×"
		}
		rows = append(rows, row{fmt.Sprintf("first frame p50, c=%d", c), ms(pa), ms(pb), ratio(float64(pa), float64(pb)), target})
		da, db := quantile(a.dials, .5), quantile(b.dials, .5)
		rows = append(rows, row{fmt.Sprintf("of which SSH handshake p50, c=%d", c), ms(da), ms(db), ratio(float64(da), float64(db)), ""})
		ra, rb := float64(len(a.lats))/a.wall.Seconds(), float64(len(b.lats))/b.wall.Seconds()
		target = ""
		if c > 1 {
			target = "≥ 0.9×"
		}
		rows = append(rows, row{fmt.Sprintf("first frames per second, c=%d", c), fmt.Sprintf("%.0f", ra), fmt.Sprintf("%.0f", rb), ratio(ra, rb), target})
	}
	return rows, nil
}

func idleMode(ctx context.Context, o options, both []*server) ([]row, error) {
	var rows []row
	for _, n := range o.idle {
		type fig struct {
			rss, cpu, thr, fds, gor float64
			fail                    string // the server could not hold them
		}
		figs := map[string]fig{}
		for _, s := range both {
			g0 := s.goroutines()
			s0, err := s.sample()
			if err != nil {
				return rows, err
			}
			ts, err := hold(ctx, s, n, 32)
			if err != nil {
				closeAll(ts)
				figs[s.name] = fig{fail: fmt.Sprintf("not held: %d of %d opened", len(ts), n)}
				fmt.Fprintf(os.Stderr, "idle n=%d %s: %d opened, then %v\n", n, s.name, len(ts), err)
				settle(s, s0.FDs)
				continue
			}
			time.Sleep(2 * time.Second) // let the sessions settle
			s1, err1 := s.sample()
			g1 := s.goroutines()
			var prof string
			if o.pprof && s.pprof != "" {
				prof, err = s.profile(o.dir, "profile", o.window)
			} else {
				time.Sleep(o.window)
			}
			s2, err2 := s.sample()
			if o.pprof && s.pprof != "" && err == nil {
				var heap string
				heap, err = s.profile(o.dir, "heap", 0)
				var gor string
				if err == nil {
					gor, err = s.profile(o.dir, "goroutine", 0)
				}
				fmt.Fprintf(os.Stderr, "profiles: %s %s %s\n", prof, heap, gor)
			}
			closeAll(ts)
			if err := firstErr(err, err1, err2); err != nil {
				return rows, err
			}
			f := fig{
				rss: float64(s1.RSS-s0.RSS) / float64(n),
				cpu: 100 * float64(s2.CPU-s1.CPU) / float64(o.window),
				thr: float64(s1.Threads), fds: float64(s1.FDs-s0.FDs) / float64(n), gor: -1,
			}
			if g0 >= 0 && g1 >= 0 {
				f.gor = float64(g1-g0) / float64(n)
			}
			figs[s.name] = f
			fmt.Fprintf(os.Stderr, "idle n=%d %s: RSS %d→%d MB, CPU %.1f%%, threads %d, fds %d, goroutines %d\n",
				n, s.name, s0.RSS>>20, s1.RSS>>20, f.cpu, s1.Threads, s1.FDs, g1)
			settle(s, s0.FDs)
		}
		a, b := figs[both[0].name], figs[both[1].name]
		gor := func(v float64) string {
			if v < 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", v)
		}
		line := func(figure, target string, val func(fig) string, num func(fig) float64) row {
			r := row{Figure: figure, Target: target}
			for i, f := range []fig{a, b} {
				v := f.fail
				if v == "" {
					v = val(f)
				}
				if i == 0 {
					r.Activated = v
				} else {
					r.Bare = v
				}
			}
			r.Ratio = "n/a"
			if a.fail == "" && b.fail == "" && num != nil {
				r.Ratio = ratio(num(a), num(b))
			}
			return r
		}
		rows = append(rows,
			line(fmt.Sprintf("RSS per idle session, %d held", n), "≤ 1.2×",
				func(f fig) string { return fmt.Sprintf("%.0f KB", f.rss/1024) }, func(f fig) float64 { return f.rss }),
			line(fmt.Sprintf("server CPU, %d idle sessions held", n), "≤ 0.25×",
				func(f fig) string { return fmt.Sprintf("%.1f%% of a core", f.cpu) }, func(f fig) float64 { return f.cpu }),
			line(fmt.Sprintf("goroutines per idle session, %d held", n), "",
				func(f fig) string { return gor(f.gor) }, func(f fig) float64 { return f.gor }),
			line(fmt.Sprintf("fds per idle session; threads, %d held", n), "",
				func(f fig) string { return fmt.Sprintf("%.2f; %.0f", f.fds, f.thr) }, nil),
		)
	}
	return rows, nil
}

// settle waits (bounded) for the server to close the sessions just left.
func settle(s *server, fds int) {
	for range 100 {
		if p, err := s.sample(); err != nil || p.FDs <= fds+5 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

var codeRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\b`)

// invite has staff invite every generated account and reads the codes
// from the maildir.
func invite(ctx context.Context, r *activatedRun) ([]string, error) {
	for i := 0; i < len(r.logins); i += 100 {
		out, err := staff(r, "invite "+strings.Join(r.logins[i:min(i+100, len(r.logins))], " "))
		if err != nil {
			return nil, fmt.Errorf("staff invite: %w\n%s", err, out)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		files, _ := filepath.Glob(filepath.Join(r.maildir, "new", "*"))
		if len(files) >= len(r.logins) {
			return readCodes(files)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%d invitation mails of %d in %s", len(files), len(r.logins), r.maildir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readCodes(files []string) ([]string, error) {
	var codes []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := mail.ReadMessage(strings.NewReader(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		body, _ := io.ReadAll(m.Body)
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body, _ = io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(body))))
		}
		c := codeRE.FindString(string(body))
		if c == "" {
			return nil, fmt.Errorf("%s: no code", f)
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// cpuNS is the CPU time of every thread of the server, in nanoseconds
// (schedstat: finer than the 10 ms ticks of /proc/PID/stat).
func cpuNS(s *server) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum), nil
}

func handshakeCost(s *server, n int) (time.Duration, error) {
	c0, err := cpuNS(s)
	if err != nil {
		return 0, err
	}
	if err := handshakes(s, n); err != nil {
		return 0, fmt.Errorf("handshakes %s: %w", s.name, err)
	}
	time.Sleep(200 * time.Millisecond) // the server closes its side
	c1, err := cpuNS(s)
	return (c1 - c0) / time.Duration(n), err
}

func activateMode(ctx context.Context, o options, act *activatedRun, bare *server, codes []string) ([]row, error) {
	ha, err := handshakeCost(act.server, o.hands)
	if err != nil {
		return nil, err
	}
	hb, err := handshakeCost(bare, o.hands)
	if err != nil {
		return nil, err
	}
	profiled := make(chan struct{})
	if o.pprof && act.pprof != "" { // a CPU profile of the first -profile-for of walks
		go func() {
			defer close(profiled)
			path, err := act.profile(o.dir, "profile", o.profileFor)
			fmt.Fprintf(os.Stderr, "activation profile: %s %v\n", path, err)
		}()
	} else {
		close(profiled)
	}
	defer func() { <-profiled }() // the server stays up until the profile is saved
	mails := func() int { f, _ := filepath.Glob(filepath.Join(act.maildir, "new", "*")); return len(f) }
	var per []time.Duration
	s0, err := act.sample()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for i, code := range codes {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		before := mails()
		c0, err := cpuNS(act.server)
		if err != nil {
			return nil, err
		}
		if err := plainWalk(act.addr, code, fmt.Sprintf("Plum-Violin-Harbor-%04d-%x", i, time.Now().UnixNano()&0xffff), ""); err != nil {
			return nil, fmt.Errorf("activation %d: %w", i, err)
		}
		for range 500 { // the notice mail: the walk's last work
			if mails() > before {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		c1, err := cpuNS(act.server)
		if err != nil {
			return nil, err
		}
		per = append(per, c1-c0-ha)
	}
	wall := time.Since(start)
	s1, err := act.sample()
	if err != nil {
		return nil, err
	}
	mean := (s1.CPU-s0.CPU)/time.Duration(len(codes)) - ha
	fmt.Fprintf(os.Stderr, "activations: %d in %v, median %v beyond the handshake\n", len(codes), wall, quantile(per, .5))
	return []row{
		{"server CPU per SSH handshake", ms(ha), ms(hb), ratio(float64(ha), float64(hb)), ""},
		{fmt.Sprintf("server CPU per plain activation beyond the handshake, median of %d (mean from /proc/PID/stat)", len(per)),
			fmt.Sprintf("%s (%s)", ms(quantile(per, .5)), ms(mean)), "", "", "≤ 5 ms"},
	}, nil
}

func pasteMode(ctx context.Context, o options, act *activatedRun, code string) ([]row, error) {
	pw := "Plum-Violin-Harbor-paste"
	if err := plainWalk(act.addr, code, pw, "New password"); err != nil {
		return nil, fmt.Errorf("paste: walk to the password step: %w", err)
	}
	t, _, err := openTUI(act.addr, code, "password")
	if err != nil {
		return nil, fmt.Errorf("paste: TUI at the password step: %w", err)
	}
	defer t.close()
	paste := "\x1b[200~" + strings.Repeat("Correct-Horse-", 8)[:100] + "\x1b[201~"
	if _, err := io.WriteString(t.stdin, paste); err != nil {
		return nil, err
	}
	probeCtx, stop := context.WithCancel(ctx)
	probes := make(chan []time.Duration, 1)
	go func() {
		var lats []time.Duration
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-probeCtx.Done():
				probes <- lats
				return
			case <-tick.C:
			}
			p, d, err := openTUI(act.addr, "activate", act.marker)
			if err != nil {
				d = 30 * time.Second
			} else {
				p.close()
			}
			lats = append(lats, d)
		}
	}()
	s0, err := act.sample()
	if err != nil {
		stop()
		return nil, err
	}
	start := time.Now()
	period := time.Second / time.Duration(o.pasteRate)
	sent := 0
	for time.Since(start) < o.pasteFor && ctx.Err() == nil {
		key := "x"
		if sent%2 == 1 {
			key = "\x7f"
		}
		if _, err := io.WriteString(t.stdin, key); err != nil {
			stop()
			return nil, err
		}
		sent++
		if ahead := time.Duration(sent)*period - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	took := time.Since(start)
	s1, err := act.sample()
	stop()
	lats := <-probes
	if err != nil {
		return nil, err
	}
	cpu := 100 * float64(s1.CPU-s0.CPU) / float64(took)
	fmt.Fprintf(os.Stderr, "paste: %d changes in %v, CPU %.0f%%, probes %v\n", sent, took, cpu, lats)
	return []row{
		{fmt.Sprintf("another user's first frame during a paste + %d changes/s, p50 / max of %d", o.pasteRate, len(lats)),
			ms(quantile(lats, .5)) + " / " + ms(quantile(lats, 1)), "", "", "≤ 2 s"},
		{"server CPU during that storm", fmt.Sprintf("%.0f%% of a core", cpu), "", "", ""},
	}, nil
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
