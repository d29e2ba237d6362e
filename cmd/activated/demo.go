package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"activated/flow"
	"activated/internal/slapd"
)

// demo runs everything on this machine with no config: a throwaway slapd
// seeded with demo accounts, mail printed on stdout, SSH on listen. The
// pending demo accounts are invited at start, so their codes are printed.
func demo(ctx context.Context, listen string, stdout, stderr io.Writer) error {
	for _, d := range removeDeadDemos() {
		fmt.Fprintf(stdout, "Removed %s, left by a demo that was killed.\n", d)
	}
	dir, unlock, err := demoDir()
	if err != nil {
		return err
	}
	defer func() { os.RemoveAll(dir); unlock() }()
	fmt.Fprintf(stdout, "Demo data in %s (removed on exit).\nStarting slapd…\n", dir)
	accounts := slapd.DemoAccounts()
	ldapSrv, err := slapd.Start(ctx, slapd.Options{Dir: filepath.Join(dir, "ldap"), Accounts: accounts})
	if err != nil {
		return fmt.Errorf("start slapd: %w (install it with: %s)", err, slapd.InstallHint)
	}
	defer ldapSrv.Stop()

	cfg, err := demoConfig(dir, listen, ldapSrv)
	if err != nil {
		return err
	}
	staffKeys, err := demoStaffKeys(dir, os.Getenv)
	if err != nil {
		return err
	}
	cfg.SSH.StaffAuthorizedKeys = staffKeys.file
	a, err := newApp(cfg, options{ephemeral: true}, newLogger(stderr, cfg.Log), stdout)
	if err != nil {
		return err
	}
	return a.run(ctx, func(addr net.Addr) {
		for _, acc := range accounts {
			if !acc.Active {
				if _, err := a.svc.Invite(ctx, acc.Login, true, flow.Client{Actor: "demo"}); err != nil {
					fmt.Fprintf(stderr, "invite %s: %v\n", acc.Login, err)
				}
			}
		}
		// Print the banner after the invitation mails, so it stays in view.
		go func() {
			for range 100 {
				if due, err := a.db.Due(time.Now().Add(time.Hour), 1); err != nil || len(due) == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			fmt.Fprint(stdout, demoBanner(addr, accounts, cfg, staffKeys))
		}()
	})
}

// demoLock is the file a running demo holds locked in its folder.
const demoLock = ".lock"

// demoDir makes the demo's temporary folder and locks it until unlock
// (or the process's end, however it ends).
func demoDir() (dir string, unlock func(), err error) {
	dir, err = os.MkdirTemp("", "activated-demo-")
	if err != nil {
		return "", nil, err
	}
	unlock, ok := lockFile(filepath.Join(dir, demoLock))
	if !ok {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("lock %s", dir)
	}
	return dir, unlock, nil
}

// removeDeadDemos removes the folders of demos that ended without removing
// theirs (kill -9, a crash, a power cut): their lock file is there and
// nobody holds it. It returns what it removed.
func removeDeadDemos() []string {
	var removed []string
	locks, _ := filepath.Glob(filepath.Join(os.TempDir(), "activated-demo-*", demoLock))
	for _, l := range locks {
		if unlock, ok := lockFile(l); ok {
			if os.RemoveAll(filepath.Dir(l)) == nil {
				removed = append(removed, filepath.Dir(l))
			}
			unlock()
		}
	}
	return removed
}

// lockFile takes an exclusive lock on path (created if missing) without
// waiting; the kernel drops it when the process ends.
func lockFile(path string) (unlock func(), ok bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

func demoConfig(dir, listen string, l *slapd.Server) (*Config, error) {
	pwFile := filepath.Join(dir, "ldap-password")
	if err := os.WriteFile(pwFile, []byte(l.ServicePassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: numeric port needed", listen)
	}
	cfg := DefaultConfig()
	cfg.SSH.Listen = listen
	cfg.SSH.HostKey = filepath.Join(dir, "ssh", "host_ed25519")
	cfg.Storage.Path = filepath.Join(dir, "activated.db")
	cfg.LDAP.URL = l.URL
	cfg.LDAP.BindDN = l.ServiceDN
	cfg.LDAP.BindPasswordFile = pwFile
	cfg.LDAP.PeopleBase = l.PeopleDN
	cfg.Mail.Transport = "log"
	cfg.Mail.From = "Université Exemple <informatique@example.org>"
	cfg.Activation.PublicHost = host
	cfg.Activation.PublicPort = p
	cfg.Activation.Institution = "Université Exemple"
	return cfg, cfg.Validate()
}

// demoKeys are the staff keys of the demo.
type demoKeys struct {
	file    string // the authorized_keys file
	private string // the key made for this demo, for ssh -i
	own     int    // how many of the user's own keys it lists
}

// demoStaffKeys writes the demo's staff keys file: a key made for this
// demo (its private half in dir, for `ssh -i`), the user's public keys
// (~/.ssh/*.pub) and the keys ssh-agent holds, so that `ssh staff@…`
// works at once whatever the user has, and works with -i when they have
// nothing.
func demoStaffKeys(dir string, getenv func(string) string) (demoKeys, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return demoKeys{}, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return demoKeys{}, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "activated demo staff")
	if err != nil {
		return demoKeys{}, err
	}
	k := demoKeys{file: filepath.Join(dir, "staff_authorized_keys"), private: filepath.Join(dir, "staff_ed25519")}
	if err := os.WriteFile(k.private, pem.EncodeToMemory(block), 0o600); err != nil {
		return demoKeys{}, err
	}
	// The comment names the staff member in the audit log.
	lines := []string{strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " demo-staff"}
	seen := map[string]bool{}
	add := func(pub gossh.PublicKey, comment string) {
		if seen[string(pub.Marshal())] {
			return
		}
		seen[string(pub.Marshal())] = true
		if comment = strings.Join(strings.Fields(comment), " "); comment == "" {
			comment = "demo-user"
		}
		lines = append(lines, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))+" "+comment)
		k.own++
	}
	if home := getenv("HOME"); home != "" {
		files, _ := filepath.Glob(filepath.Join(home, ".ssh", "*.pub"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if pub, comment, _, _, err := gossh.ParseAuthorizedKey(b); err == nil {
				add(pub, comment)
			}
		}
	}
	if sock := getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			keys, _ := agent.NewClient(c).List()
			c.Close()
			for _, key := range keys {
				if pub, err := gossh.ParsePublicKey(key.Blob); err == nil {
					add(pub, key.Comment)
				}
			}
		}
	}
	return k, os.WriteFile(k.file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

func demoBanner(addr net.Addr, accounts []slapd.Account, cfg *Config, keys demoKeys) string {
	port := strconv.Itoa(cfg.Activation.PublicPort)
	host := cfg.Activation.PublicHost
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== activated demo: SSH on %s ===\n\nDemo accounts (slapd on %s):\n", addr, cfg.LDAP.URL)
	for _, a := range accounts {
		state := "pending: invitation mail printed above, with its code"
		if a.Active {
			state = "already active"
		}
		fmt.Fprintf(&b, "  %-12s %-10s %s %s — %s\n", a.Login, a.Affiliation, a.GivenName, a.Surname, state)
	}
	fmt.Fprintf(&b, "\nIn another terminal:\n")
	fmt.Fprintf(&b, "  ssh -p %s activate@%s              start at step 1 (type a login above; the code is printed here)\n", port, host)
	fmt.Fprintf(&b, "  ssh -p %s CODE@%s                  resume with a code from a mail printed here\n", port, host)
	fmt.Fprintf(&b, "  ssh -p %s activate+plain@%s        the same as line prompts (screen readers)\n", port, host)
	fmt.Fprintf(&b, "\nStaff commands, with the key made for this demo (-t and no command: the dashboard):\n")
	fmt.Fprintf(&b, "  ssh -p %s -i %s staff@%s list\n", port, keys.private, host)
	if keys.own > 0 {
		fmt.Fprintf(&b, "or with your own key (%d found in ~/.ssh and ssh-agent):\n  ssh -p %s staff@%s list\n", keys.own, port, host)
	}
	fmt.Fprintf(&b, "\nCtrl+C stops the demo and deletes its data.\n\n")
	return b.String()
}
