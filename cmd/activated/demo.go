package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"activated/flow"
	"activated/internal/slapd"
)

// demo runs everything on this machine with no config: a throwaway slapd
// seeded with demo accounts, mail printed on stdout, SSH on listen. The
// pending demo accounts are invited at start, so their codes are printed.
func demo(ctx context.Context, listen string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "activated-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
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
	a, err := newApp(cfg, newLogger(stderr, cfg.Log), stdout)
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
			fmt.Fprint(stdout, demoBanner(addr, accounts, cfg))
		}()
	})
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
	cfg.SSH.StaffAuthorizedKeys = demoStaffKeys(dir)
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

// demoStaffKeys lists the public keys of the user running the demo as
// staff keys, so `ssh staff@…` works at once; "" when there are none.
func demoStaffKeys(dir string) string {
	home, _ := os.UserHomeDir()
	var keys []string
	for _, name := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
		b, err := os.ReadFile(filepath.Join(home, ".ssh", name))
		if err == nil {
			f := strings.Fields(string(b))
			switch { // the comment names the staff member in the audit log
			case len(f) >= 3:
				keys = append(keys, strings.Join(f[:3], " "))
			case len(f) == 2:
				keys = append(keys, f[0]+" "+f[1]+" demo-staff")
			}
		}
	}
	if len(keys) == 0 {
		return ""
	}
	path := filepath.Join(dir, "staff_authorized_keys")
	if os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600) != nil {
		return ""
	}
	return path
}

func demoBanner(addr net.Addr, accounts []slapd.Account, cfg *Config) string {
	port := strconv.Itoa(cfg.Activation.PublicPort)
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
	fmt.Fprintf(&b, "  ssh -p %s activate@%s              start at step 1 (type a login above; the code is printed here)\n", port, cfg.Activation.PublicHost)
	fmt.Fprintf(&b, "  ssh -p %s CODE@%s                  resume with a code from a mail printed here\n", port, cfg.Activation.PublicHost)
	fmt.Fprintf(&b, "  ssh -p %s activate+plain@%s        the same as line prompts (screen readers)\n", port, cfg.Activation.PublicHost)
	if cfg.SSH.StaffAuthorizedKeys != "" {
		fmt.Fprintf(&b, "  ssh -p %s staff@%s list            staff commands with your own key (-t and no command: dashboard)\n", port, cfg.Activation.PublicHost)
	} else {
		fmt.Fprintf(&b, "  (no ~/.ssh/id_*.pub found: create one with ssh-keygen and restart the demo to try the staff commands)\n")
	}
	fmt.Fprintf(&b, "\nCtrl+C stops the demo.\n\n")
	return b.String()
}
