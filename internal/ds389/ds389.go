// Package ds389 owns a throwaway 389 Directory Server for tests: the same
// tree, service account and accounts as internal/slapd, with 389's own
// ways (cn=schema, ACIs, a global password policy in cn=config, TLS with
// the self-signed certificate dscreate makes).
//
// Creating an instance with dscreate takes 15-30 s and, in a container,
// calls systemctl even with systemd = False. So dscreate runs once per
// machine, with a fake systemctl first on PATH and every path below a
// private root (PREFIX and a defaults.inf of our own), into a template
// kept in the user's cache directory. Each server copies the template's
// configuration into its own directory, with an empty database, and runs
// ns-slapd in the foreground as a child process listening on loopback
// ports only, then seeds it over LDAP as the Directory Manager.
package ds389

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/internal/slapd"
)

// SUPANNSchema is the LDIF that loads the SUPANN attributes and classes
// into 389's cn=schema, without redefining what 389 ships.
//
//go:embed supann-389.ldif
var SUPANNSchema string

// Names of the throwaway directory: the same as internal/slapd's.
const (
	BaseDN    = slapd.BaseDN
	PeopleDN  = slapd.PeopleDN
	ServiceDN = slapd.ServiceDN
	AdminDN   = "cn=Directory Manager"
)

// Where Debian puts 389-ds.
const (
	NsSlapdPath  = "/usr/sbin/ns-slapd"
	DscreatePath = "/usr/sbin/dscreate"
	defaultsInf  = "/usr/share/dirsrv/inf/defaults.inf"
)

// InstallHint is what to run when 389-ds is missing.
const InstallHint = "DEBIAN_FRONTEND=noninteractive apt-get install -y 389-ds-base"

// Options says how to start a server.
type Options struct {
	// Dir holds the instance; "" = a new temporary directory Stop removes.
	Dir      string
	Accounts []slapd.Account
	// MinLength is the global password policy's passwordMinLength;
	// 0 = slapd.PolicyMinLength.
	MinLength int
}

// Server is a running ns-slapd.
type Server struct {
	URL             string // ldap://127.0.0.1:PORT (389 refuses Password Modify on it)
	LDAPSURL        string // ldaps://localhost:PORT: the certificate names localhost only
	CAFile          string // the self-signed CA (PEM)
	Dir             string
	BaseDN          string
	PeopleDN        string
	AdminDN         string // the Directory Manager: bypasses ACIs and the policy
	AdminPassword   string
	ServiceDN       string
	ServicePassword string

	ownDir  bool
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	waitErr error
	output  bytes.Buffer
}

// Start prepares an instance from the template (creating the template
// first if needed), runs ns-slapd and seeds it. ctx bounds the start.
func Start(ctx context.Context, opts Options) (*Server, error) {
	for _, p := range []string{NsSlapdPath, DscreatePath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("389-ds not installed (%w): run: %s", err, InstallHint)
		}
	}
	tmpl, err := template(ctx)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: opts.Dir, BaseDN: BaseDN, PeopleDN: PeopleDN, AdminDN: AdminDN, ServiceDN: ServiceDN,
		AdminPassword: tmplAdminPassword, ServicePassword: secret()}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "activated-389-"); err != nil {
			return nil, fmt.Errorf("ds389: %w", err)
		}
		s.ownDir = true
	}
	if err := s.prepare(tmpl); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.run(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.seed(opts); err != nil {
		s.Stop()
		return nil, fmt.Errorf("ds389: seed: %w", err)
	}
	return s, nil
}

// The template's Directory Manager password: the template and every copy
// live in directories only their owner reads, on loopback ports.
const tmplAdminPassword = "activated-389-test-admin"

// rootMark stands for an instance's directory in the template's dse.ldif.
const rootMark = "@ACTIVATED_ROOT@"

// template returns the template's directory, creating it with dscreate
// once (under a lock: test binaries run in parallel).
func template(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	st, err := os.Stat(NsSlapdPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "activated", fmt.Sprintf("ds389-%d-%d", st.Size(), st.ModTime().Unix()))
	if _, err := os.Stat(filepath.Join(dir, "conf", "dse.ldif")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("ds389: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("ds389: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("ds389: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(filepath.Join(dir, "conf", "dse.ldif")); err == nil {
		return dir, nil // made by another test binary meanwhile
	}
	if err := create(ctx, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// create runs dscreate into a private root and keeps its configuration
// directory as dir/conf, with the root's paths replaced by rootMark.
func create(ctx context.Context, dir string) error {
	root, err := os.MkdirTemp(filepath.Dir(dir), "create-")
	if err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	defer os.RemoveAll(root)
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	// dscreate copies sysconf_dir/dirsrv/schema, and PREFIX puts it under root.
	for _, d := range []string{"bin", "share/dirsrv/inf", "etc/dirsrv/schema"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return fmt.Errorf("ds389: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	if b, err := os.ReadFile("/etc/dirsrv/schema/99user.ldif"); err == nil {
		_ = os.WriteFile(filepath.Join(root, "etc/dirsrv/schema/99user.ldif"), b, 0o600)
	}
	defs, err := os.ReadFile(defaultsInf)
	if err != nil {
		return fmt.Errorf("ds389: %w (run: %s)", err, InstallHint)
	}
	r := root
	over := map[string]string{
		"with_systemd": "0", "user": u.Username, "group": g.Name,
		"config_dir": r + "/conf", "cert_dir": r + "/conf", "schema_dir": r + "/conf/schema",
		"local_state_dir": r + "/var", "run_dir": r + "/run", "ldapi": r + "/run/ldapi", "pid_file": r + "/run/pid",
		"lock_dir": r + "/lock", "log_dir": r + "/log", "access_log": r + "/log/access", "audit_log": r + "/log/audit",
		"error_log": r + "/log/errors", "security_log": r + "/log/security",
		"db_dir": r + "/data/db", "db_home_dir": r + "/data/db", "backup_dir": r + "/data/bak", "ldif_dir": r + "/data/ldif",
		"tmp_dir": r + "/tmp",
	}
	var inf strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(defs))
	for sc.Scan() {
		line := sc.Text()
		if k, _, ok := strings.Cut(line, " = "); ok {
			if v, ok := over[k]; ok {
				line = k + " = " + v
			}
		}
		inf.WriteString(line + "\n")
	}
	if err := os.WriteFile(filepath.Join(root, "share/dirsrv/inf/defaults.inf"), []byte(inf.String()), 0o600); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	sport, err := freePort()
	if err != nil {
		return err
	}
	// port = 0: no plain LDAP port (dscreate talks over ldapi); the secure
	// port is needed for the self-signed certificate.
	answers := fmt.Sprintf(`[general]
config_version = 2
full_machine_name = localhost
selinux = False
systemd = False
start = False
strict_host_checking = False
[slapd]
instance_name = tmpl
port = 0
secure_port = %d
root_password = %s
self_sign_cert = True
[backend-userroot]
suffix = %s
sample_entries = no
`, sport, tmplAdminPassword, BaseDN)
	infPath := filepath.Join(root, "instance.inf")
	if err := os.WriteFile(infPath, []byte(answers), 0o600); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, DscreatePath, "from-file", infPath)
	cmd.Env = append(os.Environ(), "PREFIX="+root, "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if bytes.Contains(out, []byte("Permission denied")) {
			hint = " (dscreate reads /etc/dirsrv, which is dirsrv's: run the 389 tests as root)"
		}
		return fmt.Errorf("ds389: dscreate: %w: %s%s", err, bytes.TrimSpace(out), hint)
	}
	// Keep the configuration (certificates included), not the database.
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := copyTree(filepath.Join(root, "conf"), filepath.Join(tmp, "conf")); err != nil {
		return err
	}
	dsePath := filepath.Join(tmp, "conf", "dse.ldif")
	dse, err := os.ReadFile(dsePath)
	if err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	dse = bytes.ReplaceAll(dse, []byte(root), []byte(rootMark))
	if err := os.WriteFile(dsePath, dse, 0o600); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	for _, f := range []string{"dse.ldif.bak", "dse.ldif.startOK", "dse.ldif.tmp"} {
		os.Remove(filepath.Join(tmp, "conf", f))
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// prepare copies the template's configuration into s.Dir with two free
// loopback ports.
func (s *Server) prepare(tmpl string) error {
	conf := filepath.Join(s.Dir, "conf")
	if err := copyTree(filepath.Join(tmpl, "conf"), conf); err != nil {
		return err
	}
	for _, d := range []string{"data/db", "data/bak", "data/ldif", "log", "lock", "run", "tmp", "var"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return fmt.Errorf("ds389: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	sport, err := freePort()
	if err != nil {
		return err
	}
	s.URL = "ldap://127.0.0.1:" + strconv.Itoa(port)
	s.LDAPSURL = "ldaps://localhost:" + strconv.Itoa(sport)
	s.CAFile = filepath.Join(conf, "ca.crt")
	dsePath := filepath.Join(conf, "dse.ldif")
	dse, err := os.ReadFile(dsePath)
	if err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(string(dse), rootMark, s.Dir), "\n") {
		switch {
		case strings.HasPrefix(line, "nsslapd-port:"):
			line = "nsslapd-port: " + strconv.Itoa(port) + "\nnsslapd-listenhost: 127.0.0.1\nnsslapd-securelistenhost: 127.0.0.1"
		case strings.HasPrefix(line, "nsslapd-securePort:"):
			line = "nsslapd-securePort: " + strconv.Itoa(sport)
		case strings.HasPrefix(line, "nsslapd-listenhost:"), strings.HasPrefix(line, "nsslapd-securelistenhost:"):
			continue
		}
		// Small caches (dscreate sizes them for the machine: a 1.5 GB
		// database cache is 90 MB of region files and seconds to start),
		// and no fsync per write: a test server.
		if k, _, ok := strings.Cut(line, ": "); ok && small[k] != "" {
			line = k + ": " + small[k]
		}
		out = append(out, line)
	}
	if err := os.WriteFile(dsePath, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	return nil
}

// small are the tuning values of a test server.
var small = map[string]string{
	"nsslapd-cache-autosize": "0", "nsslapd-dbcachesize": "10485760",
	"nsslapd-cachememsize": "10485760", "nsslapd-dncachememsize": "10485760",
	"nsslapd-db-durable-transaction": "off",
}

// run starts ns-slapd in the foreground and waits until it answers.
func (s *Server) run(ctx context.Context) error {
	cmd := exec.Command(NsSlapdPath, "-D", filepath.Join(s.Dir, "conf"), "-i", filepath.Join(s.Dir, "run", "pid"), "-d", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = &s.output, &s.output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ds389: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(s.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := s.admin(); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("ds389: ns-slapd exited at start (%v): %s", s.waitErr, s.logs())
		case <-ctx.Done():
			s.stop()
			return fmt.Errorf("ds389: not ready on %s: %w: %s", s.URL, ctx.Err(), s.logs())
		case <-tick.C:
		}
	}
}

// logs returns ns-slapd's output and the end of its error log.
func (s *Server) logs() string {
	s.mu.Lock()
	out := string(bytes.TrimSpace(s.output.Bytes()))
	s.mu.Unlock()
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "errors"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return out + " " + string(b)
}

// admin is a connection bound as the Directory Manager, on the plain port.
func (s *Server) admin() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DialTLS connects to LDAPSURL trusting CAFile; the caller closes it.
func (s *Server) DialTLS() (*ldap.Conn, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ds389: no certificate in %s", s.CAFile)
	}
	return ldap.DialURL(s.LDAPSURL, ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}),
		ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "localhost"}))
}

// Admin returns a connection bound as the Directory Manager; the caller
// closes it.
func (s *Server) Admin() (*ldap.Conn, error) { return s.admin() }

// Stop stops ns-slapd (SIGTERM, then waits) and removes the directory
// Start created.
func (s *Server) Stop() error {
	err := s.stop()
	s.cleanup()
	return err
}

func (s *Server) stop() error {
	cmd := s.cmd
	s.cmd = nil
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("ds389: stop: %w", err)
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-s.exited
		return errors.New("ds389: ns-slapd did not stop within 30s of SIGTERM; killed")
	}
	return nil
}

func (s *Server) cleanup() {
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
		s.ownDir = false
	}
}

// copyTree copies the regular files and directories below src to dst.
func copyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		return fmt.Errorf("ds389: copy %s: %w", src, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ds389: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
