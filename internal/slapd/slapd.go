// Package slapd owns a throwaway OpenLDAP server for tests and the demo: it
// writes a slapd.conf (Debian schemas, the project's minimal eduPerson and
// SUPANN schemas, a ppolicy password policy, the service account's ACLs),
// seeds an mdb database with slapadd and runs slapd as a child process on a
// loopback port until Stop.
package slapd

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

//go:embed schema/*.schema
var schemaFS embed.FS

// Names of the throwaway directory.
const (
	BaseDN    = "dc=example,dc=org"
	PeopleDN  = "ou=people," + BaseDN
	AdminDN   = "cn=admin," + BaseDN
	ServiceDN = "cn=activated,ou=services," + BaseDN
	PolicyDN  = "cn=default,ou=policies," + BaseDN
	// MailDomain is the domain of the seeded institutional addresses.
	MailDomain = "example.org"
)

// Password policy of the throwaway directory (PolicyDN).
const (
	PolicyMinLength = 12
	PolicyInHistory = 3
)

// Where Debian puts OpenLDAP's files.
const (
	SlapdPath   = "/usr/sbin/slapd"
	SlapaddPath = "/usr/sbin/slapadd"
	schemaDir   = "/etc/ldap/schema"
	moduleDir   = "/usr/lib/ldap"
)

// InstallHint is what to run when slapd is missing.
const InstallHint = "DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils"

// Options says how to start a server.
type Options struct {
	// Dir holds the configuration and the database; "" = a new temporary
	// directory that Stop removes.
	Dir string
	// Accounts are seeded under ou=people.
	Accounts []Account
	// Port to listen on (127.0.0.1); 0 = a free port.
	Port int
	// TLS adds a throwaway CA and server certificate (127.0.0.1, localhost):
	// StartTLS on URL, and ldaps:// on LDAPSURL (a free port).
	TLS bool
}

// Server is a running slapd.
type Server struct {
	URL             string // ldap://127.0.0.1:PORT
	Port            int
	Dir             string
	BaseDN          string
	PeopleDN        string
	AdminDN         string // the rootdn: bypasses ACLs and ppolicy
	AdminPassword   string
	ServiceDN       string // the account activated binds as
	ServicePassword string
	PolicyDN        string
	LDAPSURL        string // with Options.TLS: ldaps://127.0.0.1:PORT
	CAFile          string // with Options.TLS: the CA certificate (PEM)

	confPath string
	ownDir   bool

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
	output  bytes.Buffer // slapd's stderr and stdout; read only after exited
}

// Start writes the configuration, seeds the database and runs slapd. ctx
// bounds the start only, not the server's life: call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	for _, p := range []string{SlapdPath, SlapaddPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("slapd not installed (%w): run: %s", err, InstallHint)
		}
	}
	s := &Server{
		Port: opts.Port, Dir: opts.Dir,
		BaseDN: BaseDN, PeopleDN: PeopleDN, AdminDN: AdminDN, ServiceDN: ServiceDN, PolicyDN: PolicyDN,
		AdminPassword: randomSecret(), ServicePassword: randomSecret(),
	}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "activated-slapd-")
		if err != nil {
			return nil, fmt.Errorf("slapd: %w", err)
		}
		s.Dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("slapd: %w", err)
	}
	if err := s.setup(opts.Accounts, opts.TLS); err != nil {
		s.cleanup()
		return nil, err
	}
	// A free port found by listening may be taken again before slapd binds
	// it: try a few.
	var err error
	for range 3 {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				break
			}
		}
		s.Port, s.URL = port, "ldap://127.0.0.1:"+strconv.Itoa(port)
		if opts.TLS {
			var p int
			if p, err = freePort(); err != nil {
				break
			}
			s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(p)
		}
		if err = s.run(ctx); err == nil || opts.Port != 0 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// setup writes the schemas, slapd.conf and the seed, and runs slapadd.
func (s *Server) setup(accounts []Account, withTLS bool) error {
	seed, err := seedLDIF(s, accounts)
	if err != nil {
		return err
	}
	files, err := schemaFS.ReadDir("schema")
	if err != nil {
		return fmt.Errorf("slapd: embedded schemas: %w", err)
	}
	var schemas []string
	for _, f := range files {
		b, err := schemaFS.ReadFile("schema/" + f.Name())
		if err != nil {
			return fmt.Errorf("slapd: embedded schemas: %w", err)
		}
		p := filepath.Join(s.Dir, f.Name())
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("slapd: %w", err)
		}
		schemas = append(schemas, p)
	}
	var tlsConf string
	if withTLS {
		if s.CAFile, tlsConf, err = writeTLS(s.Dir); err != nil {
			return fmt.Errorf("slapd: tls: %w", err)
		}
	}
	db := filepath.Join(s.Dir, "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	s.confPath = filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(s.confPath, []byte(config(s, db, schemas, tlsConf)), 0o600); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	seedPath := filepath.Join(s.Dir, "seed.ldif")
	if err := os.WriteFile(seedPath, []byte(seed), 0o600); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	out, err := exec.Command(SlapaddPath, "-q", "-f", s.confPath, "-l", seedPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapadd: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// run starts slapd on s.URL and waits until it answers an LDAP search.
func (s *Server) run(ctx context.Context) error {
	urls := s.URL + "/"
	if s.LDAPSURL != "" {
		urls += " " + s.LDAPSURL + "/"
	}
	cmd := exec.Command(SlapdPath, "-d", "none", "-f", s.confPath, "-h", urls)
	// Own process group (a Ctrl-C in the terminal is not for it); killed
	// when the process that started it dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.output.Reset()
	cmd.Stdout, cmd.Stderr = &s.output, &s.output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(s.URL) {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			err := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("slapd exited at start (%v): %s", err, bytes.TrimSpace(s.output.Bytes()))
		case <-ctx.Done():
			s.stop()
			return fmt.Errorf("slapd: not ready on %s: %w: %s", s.URL, ctx.Err(), bytes.TrimSpace(s.output.Bytes()))
		case <-tick.C:
		}
	}
}

// ready tells whether slapd answers an anonymous read of the root DSE.
func ready(url string) bool {
	c, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetTimeout(time.Second)
	_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	return err == nil
}

// Stop stops slapd (SIGINT, then waits) and removes the directory Start
// created. Calling it again does nothing.
func (s *Server) Stop() error {
	err := s.stop()
	s.cleanup()
	return err
}

// Restart stops slapd and starts it again on the same port with the same
// data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.stop(); err != nil {
		return err
	}
	return s.run(ctx)
}

func (s *Server) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("slapd: stop: %w", err)
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("slapd: did not stop within 30s of SIGINT; killed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(s.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			return nil
		}
	}
	if s.waitErr != nil {
		return fmt.Errorf("slapd: stop: %w: %s", s.waitErr, bytes.TrimSpace(s.output.Bytes()))
	}
	return nil
}

func (s *Server) cleanup() {
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
		s.ownDir = false
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("slapd: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
