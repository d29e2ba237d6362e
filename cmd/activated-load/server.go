package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"activated/internal/slapd"
)

// server is a server under load, run as a child process.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // SSH, host:port
	metrics string // host:port serving go_goroutines; "" = none
	pprof   string // host:port of net/http/pprof; "" = none
	marker  string // text of the first screen
	exited  chan struct{}
	log     *os.File
}

// build compiles the packages the run needs into dir.
func build(ctx context.Context, root, dir string, tags string) error {
	for _, p := range []struct{ out, pkg string }{{"activated", "./cmd/activated"}, {"bare", "./internal/loadtest/bare"}} {
		args := []string{"build", "-o", filepath.Join(dir, p.out)}
		if tags != "" && p.out == "activated" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, p.pkg)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", p.pkg, err, out)
		}
	}
	return nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *server) start(dir string, args, env []string) error {
	logf, err := os.Create(filepath.Join(dir, s.name+".log"))
	if err != nil {
		return err
	}
	s.log = logf
	s.cmd = exec.Command(filepath.Join(dir, s.name), args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tool
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("%s exited at start:\n%s", s.name, tailText(string(b), 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s", s.name, s.addr)
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL after a grace.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.log.Close()
}

func (s *server) sample() (procSample, error) {
	pid := s.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	var p procSample
	if p.CPU, err = parseStatCPU(string(stat)); err != nil {
		return p, err
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	if p.RSS, p.Threads, err = parseStatus(bytes.NewReader(st)); err != nil {
		return p, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	p.FDs = len(fds)
	return p, err
}

// goroutines asks the server's metrics (or its pprof endpoint); -1 when it
// exposes neither.
func (s *server) goroutines() int {
	c := http.Client{Timeout: 5 * time.Second}
	if s.metrics != "" {
		if resp, err := c.Get("http://" + s.metrics + "/metrics"); err == nil {
			defer resp.Body.Close()
			if n := parseGoroutines(resp.Body); n >= 0 {
				return n
			}
		}
	}
	if s.pprof != "" {
		if resp, err := c.Get("http://" + s.pprof + "/debug/pprof/goroutine?debug=1"); err == nil {
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(io.LimitReader(resp.Body, 64))
			var n int
			if _, err := fmt.Sscanf(b.String(), "goroutine profile: total %d", &n); err == nil {
				return n
			}
		}
	}
	return -1
}

// profile saves a pprof profile of the server (cpu for d, or heap) in dir.
func (s *server) profile(dir, kind string, d time.Duration) (string, error) {
	if s.pprof == "" {
		return "", errors.New("no pprof endpoint (run with -pprof)")
	}
	url := "http://" + s.pprof + "/debug/pprof/" + kind
	if kind == "profile" {
		url += "?seconds=" + strconv.Itoa(int(d/time.Second))
	}
	c := http.Client{Timeout: d + 30*time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", s.name, kind, time.Now().UnixNano()))
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

// startBare runs the bare wish + bubbletea server.
func startBare(dir, host string) (*server, error) {
	addr, err := freeAddr(host)
	if err != nil {
		return nil, err
	}
	maddr, err := freeAddr(host)
	if err != nil {
		return nil, err
	}
	s := &server{name: "bare", addr: addr, metrics: maddr, marker: "hello"}
	return s, s.start(dir, []string{"-listen", addr, "-hostkey", filepath.Join(dir, "bare_host_ed25519"), "-metrics", maddr}, nil)
}

// activatedRun is activated with its slapd, its staff key and its maildir.
type activatedRun struct {
	*server
	ldap     *slapd.Server
	staffKey gossh.Signer
	maildir  string
	logins   []string
}

// loadAccounts are the pending students the activation mode walks.
func loadAccounts(n int) []slapd.Account {
	out := make([]slapd.Account, n)
	for i := range out {
		out[i] = slapd.Account{
			Login: fmt.Sprintf("load%05d", i), GivenName: "Camille", Surname: fmt.Sprintf("Essai%d", i),
			RecoveryMail: fmt.Sprintf("load%05d@example.net", i), Affiliation: "student",
		}
	}
	return out
}

// optionalEnv are settings of keys that not every version of activated
// has (the front door's limits, the metrics endpoint): a variable the
// server calls unknown is dropped and the start tried again.
var unknownVar = regexp.MustCompile(`(ACTIVATED_[A-Z_]+): unknown variable`)

// startActivated starts slapd with accounts, then activated serve.
func startActivated(ctx context.Context, dir, host string, accounts int, withPprof bool) (*activatedRun, error) {
	r := &activatedRun{}
	ad := filepath.Join(dir, "activated.d")
	if err := os.RemoveAll(ad); err != nil { // a previous run's, with -dir
		return nil, err
	}
	if err := os.MkdirAll(ad, 0o700); err != nil {
		return nil, err
	}
	accs := loadAccounts(accounts)
	for _, a := range accs {
		r.logins = append(r.logins, a.Login)
	}
	var err error
	r.ldap, err = slapd.Start(ctx, slapd.Options{Dir: filepath.Join(ad, "ldap"), Accounts: accs})
	if err != nil {
		return nil, fmt.Errorf("start slapd: %w (install it with: %s)", err, slapd.InstallHint)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return r, err
	}
	if r.staffKey, err = gossh.NewSignerFromKey(priv); err != nil {
		return r, err
	}
	keys := filepath.Join(ad, "staff_keys")
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(r.staffKey.PublicKey()))) + " load tool\n"
	pw := filepath.Join(ad, "ldap.secret")
	r.maildir = filepath.Join(ad, "mail")
	if err := errors.Join(os.WriteFile(keys, []byte(line), 0o600),
		os.WriteFile(pw, []byte(r.ldap.ServicePassword+"\n"), 0o600),
		os.MkdirAll(r.maildir, 0o700)); err != nil {
		return r, err
	}
	addr, err := freeAddr(host)
	if err != nil {
		return r, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`[ssh]
listen = %q
host_key = %q
staff_authorized_keys = %q
max_sessions = 20000
[storage]
path = %q
[ldap]
url = %q
bind_dn = %q
bind_password_file = %q
people_base = %q
mail_domain = %q
[mail]
transport = "maildir"
maildir = %q
from = "Load test <load@example.org>"
[activation]
public_host = %q
public_port = %s
language = "en"
institution = "Université Exemple"
`, addr, filepath.Join(ad, "ssh", "host_ed25519"), keys, filepath.Join(ad, "activated.db"),
		r.ldap.URL, r.ldap.ServiceDN, pw, r.ldap.PeopleDN, slapd.MailDomain, r.maildir, host, port)
	cfgPath := filepath.Join(ad, "activated.toml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		return r, err
	}
	r.server = &server{name: "activated", addr: addr, marker: "Login"}
	env := map[string]string{
		// The load comes from one address: lift the per-address limits.
		"ACTIVATED_SSH_CONNECTIONS_PER_MINUTE":  "0",
		"ACTIVATED_SSH_MAX_STARTUPS":            "2000",
		"ACTIVATED_SSH_MAX_STARTUPS_PER_SOURCE": "2000",
	}
	if env["ACTIVATED_METRICS_LISTEN"], err = freeAddr(host); err != nil {
		return r, err
	}
	if withPprof {
		if r.pprof, err = freeAddr(host); err != nil {
			return r, err
		}
		env["PPROF_LISTEN"] = r.pprof // read only by a -tags pprof build
	}
	for range 8 {
		var kv []string
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		err = r.server.start(dir, []string{"serve", "-config", cfgPath}, kv)
		if err == nil {
			break
		}
		m := unknownVar.FindAllStringSubmatch(err.Error(), -1)
		if len(m) == 0 {
			return r, err
		}
		for _, v := range m {
			delete(env, v[1])
		}
	}
	if err != nil {
		return r, err
	}
	r.metrics = env["ACTIVATED_METRICS_LISTEN"]
	return r, nil
}

func (r *activatedRun) stop() {
	if r.server != nil {
		r.server.stop()
	}
	if r.ldap != nil {
		_ = r.ldap.Stop()
	}
}

func tailText(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
