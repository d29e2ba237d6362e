package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeConfig writes h's configuration as a TOML file, as an operator would.
func (h *harness) writeConfig(edit func(c *Config)) string {
	h.t.Helper()
	c := *h.cfg
	if edit != nil {
		edit(&c)
	}
	text := fmt.Sprintf(`[ssh]
listen = %q
host_key = %q
[storage]
path = %q
[ldap]
url = %q
bind_dn = %q
bind_password_file = %q
people_base = %q
ca_file = %q
[mail]
transport = %q
smtp_url = %q
from = %q
[activation]
public_host = %q
public_port = %d
`, c.SSH.Listen, c.SSH.HostKey, c.Storage.Path, c.LDAP.URL, c.LDAP.BindDN, c.LDAP.BindPasswordFile, c.LDAP.PeopleBase, c.LDAP.CAFile,
		c.Mail.Transport, c.Mail.SMTPURL, c.Mail.From, c.Activation.PublicHost, c.Activation.PublicPort)
	path := filepath.Join(h.dir, fmt.Sprintf("activated-%d.toml", len(text)))
	must(h.t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckReportsEachDependency(t *testing.T) {
	h := newHarness(t)
	h.stop() // the running server holds the database
	code, out, _ := runCmd("check", "-config", h.writeConfig(nil))
	if code != 0 {
		t.Fatalf("check exit %d:\n%s", code, out)
	}
	for _, dep := range []string{"config", "charter", "host key", "storage", "ldap", "mail"} {
		if !strings.Contains(out, fmt.Sprintf("%-10s OK", dep)) {
			t.Errorf("no OK line for %s:\n%s", dep, out)
		}
	}

	// With the service running, its database is in use: that is fine.
	h.start()
	code, out, _ = runCmd("check", "-config", h.writeConfig(nil))
	if code != 0 || !strings.Contains(out, "storage    OK    in use by the running service") {
		t.Errorf("check while serving: exit %d\n%s", code, out)
	}
	h.stop()

	bad := filepath.Join(h.dir, "wrong.secret")
	must(t, os.WriteFile(bad, []byte("not the password\n"), 0o600))
	h.smtp.Stop()
	code, out, _ = runCmd("check", "-config", h.writeConfig(func(c *Config) { c.LDAP.BindPasswordFile = bad }))
	if code != 1 || !strings.Contains(out, "ldap       FAIL") || !strings.Contains(out, "mail       FAIL") || !strings.Contains(out, "config     OK") {
		t.Errorf("check with a wrong LDAP password and SMTP down: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "not the password") {
		t.Error("check prints the password")
	}

	code, out, _ = runCmd("check", "-config", h.writeConfig(func(c *Config) { c.LDAP.URL = "ldap://ldap.example.org" }))
	if code != 1 || !strings.Contains(out, "config     FAIL") || !strings.Contains(out, "loopback") {
		t.Errorf("plain ldap:// to a remote host: exit %d\n%s", code, out)
	}
}

func TestHostkeyAndVersion(t *testing.T) {
	h := newHarness(t)
	code, out, errs := runCmd("hostkey", "-config", h.writeConfig(nil))
	if code != 0 || !strings.Contains(out, "ssh-ed25519 SHA256:") || !strings.Contains(out, "activate.example.org IN SSHFP 4 2 ") ||
		!strings.Contains(out, "activate.example.org IN SSHFP 4 1 ") {
		t.Errorf("hostkey: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "activated ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCmd("serve"); code != 2 || !strings.Contains(errs, "-config FILE is required") {
		t.Errorf("serve without config: %d %q", code, errs)
	}
	if code, _, errs := runCmd("serve", "-config", h.writeConfig(func(c *Config) { c.Mail.Transport = "log" })); code != 1 || !strings.Contains(errs, "demo only") {
		t.Errorf("serve with the log transport: %d %q", code, errs)
	}
	if code, _, errs := runCmd("frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	if code, _, _ := runCmd(); code != 2 {
		t.Errorf("no command: %d", code)
	}
}

// Each subcommand's -h lists the flags it takes and no other, exits 0, and
// a flag of another subcommand is refused rather than silently ignored.
func TestSubcommandFlags(t *testing.T) {
	all := []string{"-config", "-listen", "-o", "-from"}
	for cmd, want := range map[string][]string{
		"serve": {"-config"}, "check": {"-config"}, "hostkey": {"-config"},
		"demo": {"-listen"}, "backup": {"-config", "-o"}, "migrate": {"-config", "-from"},
	} {
		rc, stdout, stderr := runCmd(cmd, "-h")
		if rc != 0 {
			t.Errorf("%s -h: exit %d, want 0", cmd, rc)
		}
		help := stdout + stderr
		for _, f := range all {
			if has, w := strings.Contains(help, "  "+f+" "), slices.Contains(want, f); has != w {
				t.Errorf("%s -h lists %s: %v, want %v:\n%s", cmd, f, has, w, help)
			}
		}
	}
	if rc, _, stderr := runCmd("check", "-config", "x.toml", "-listen", "127.0.0.1:1"); rc != 2 || !strings.Contains(stderr, "-listen") {
		t.Errorf("check -listen: exit %d %q, want 2 and the flag named", rc, stderr)
	}
}
