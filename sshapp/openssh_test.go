package sshapp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"activated/flow/i18n"
)

// writeOpenSSHKey writes a new ed25519 private key for the ssh command and
// returns its path and signer.
func writeOpenSSHKey(t *testing.T, dir, name string) (string, gossh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, signer
}

// openssh runs the OpenSSH client against f with the given identities,
// never prompting (BatchMode), and returns its output and exit status.
func openssh(t *testing.T, f *sshFixture, user string, keys []string, command ...string) (string, int) {
	t.Helper()
	return runOpenSSH(t, f, []string{"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}, user, keys, command...)
}

// runOpenSSH runs the OpenSSH client against f with the given options.
func runOpenSSH(t *testing.T, f *sshFixture, opts []string, user string, keys []string, command ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("the OpenSSH client is needed: apt-get install openssh-client")
	}
	_, port, _ := net.SplitHostPort(f.addr)
	args := append([]string{"-F", "/dev/null", "-p", port, "-T",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "SendEnv=LANG", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"}, opts...)
	for _, k := range keys {
		args = append(args, "-i", k)
	}
	args = append(append(args, user+"@127.0.0.1"), command...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8", "LC_CTYPE=C.UTF-8") // C.UTF-8: built into glibc
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("ssh %s: %v\n%s", user, err, out)
	return "", 0
}

func TestOpenSSHClient(t *testing.T) {
	f := startServer(t, nil)
	dir := t.TempDir()
	k1, _ := writeOpenSSHKey(t, dir, "id_one")
	k2, _ := writeOpenSSHKey(t, dir, "id_two")
	staffPath, staffKey := writeOpenSSHKey(t, dir, "id_staff")
	if err := os.WriteFile(f.keysFile, []byte(authorizedLine(staffKey, "alice@it")), 0o600); err != nil {
		t.Fatal(err)
	}

	// Keys on offer, yet "none" comes first: in without a prompt (the
	// input ends at once: the user left, status 2).
	out, status := openssh(t, f, "activate", []string{k1, k2})
	if status != 2 || !strings.Contains(out, i18n.StepTitle("en", 1)) || !strings.Contains(out, "> ") || !strings.Contains(out, i18n.Ended("en", false, "+plain", "activate.example.org", 2222)) {
		t.Errorf("activate: status %d, output:\n%s", status, out)
	}

	out, status = openssh(t, f, "activate", []string{k1}, "id")
	if status != 1 || !strings.Contains(out, i18n.T("en", "ssh.noexec", "ssh -p 2222 activate@activate.example.org")) {
		t.Errorf("exec: status %d, output:\n%s", status, out)
	}

	out, status = openssh(t, f, "administrator", nil)
	if status != 1 || !strings.Contains(out, "ssh -p 2222 activate@activate.example.org") {
		t.Errorf("unknown user: status %d, output:\n%s", status, out)
	}

	out, status = openssh(t, f, "staff", []string{k1, k2})
	if status != 255 || !strings.Contains(out, "Permission denied") {
		t.Errorf("staff with unlisted keys: status %d, output:\n%s", status, out)
	}

	out, status = openssh(t, f, "staff", []string{k1, staffPath}, "list", "--state", "pending")
	if status != 3 || out != "hello alice@it\n" {
		t.Errorf("staff: status %d, output:\n%s", status, out)
	}
	if call := <-f.calls; strings.Join(call.args, " ") != "list --state pending" {
		t.Errorf("staff args %q", call.args)
	}
}

// What a refused user sees with OpenSSH's default log level: the reason,
// in both languages, before "Permission denied".
func TestOpenSSHRefusalsExplained(t *testing.T) {
	f := startServer(t, nil)
	k1, _ := writeOpenSSHKey(t, t.TempDir(), "id_one")
	interactive := []string{"-o", "BatchMode=no"}

	out, status := runOpenSSH(t, f, interactive, "staff", []string{k1}, "list")
	for _, lang := range []string{"fr", "en"} {
		want := i18n.T(lang, "ssh.staffkey")
		if lang == "fr" { // OpenSSH escapes anything beyond ASCII there
			want = "L'acces du personnel demande une cle inscrite"
		}
		if status != 255 || !strings.Contains(out, want) {
			t.Errorf("staff with an unlisted key: status %d, want the reason (%s):\n%s", status, lang, out)
		}
	}

	for range 4 { // silent connections: the address is penalized
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitFor(t, "the silent connections counted", func() bool { return strings.Count(f.logs.String(), "penalty=5s") >= 4 })
	out, status = runOpenSSH(t, f, interactive, "activate", nil)
	if status != 255 || !strings.Contains(out, i18n.T("fr", "ssh.penalized")) || !strings.Contains(out, i18n.T("en", "ssh.penalized")) {
		t.Errorf("penalized address: status %d, want the reason in both languages:\n%s", status, out)
	}
}
