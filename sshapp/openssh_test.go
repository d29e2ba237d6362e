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
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("the OpenSSH client is needed: apt-get install openssh-client")
	}
	_, port, _ := net.SplitHostPort(f.addr)
	args := []string{"-F", "/dev/null", "-p", port, "-T",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "SendEnv=LANG", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"}
	for _, k := range keys {
		args = append(args, "-i", k)
	}
	args = append(append(args, user+"@127.0.0.1"), command...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8")
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

	// Keys on offer, yet "none" comes first: in without a prompt.
	out, status := openssh(t, f, "activate", []string{k1, k2})
	if status != 0 || !strings.Contains(out, i18n.StepTitle("en", 1)) || !strings.Contains(out, "> ") || !strings.Contains(out, i18n.T("en", "session.ended")) {
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
