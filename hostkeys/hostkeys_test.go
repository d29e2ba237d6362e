package hostkeys

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestCreateThenReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "host_ed25519")

	first, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.PublicKey().Type(); got != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want %s", got, ssh.KeyAlgoED25519)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dst.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("created directory mode = %04o, want 0700", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("key file is not in OpenSSH format:\n%.60s", data)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key (temporary file left behind?)", len(entries))
	}

	second, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), second.PublicKey().Marshal()) {
		t.Error("reloading gave a different key")
	}
}

func TestTwoKeysDiffer(t *testing.T) {
	a, err := LoadOrCreate(filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) {
		t.Error("two new keys are equal")
	}
}

func TestLoadsKeyFromSSHKeygen(t *testing.T) {
	keygen := sshKeygen(t)
	path := filepath.Join(t.TempDir(), "k")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	signer, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), want.Marshal()) {
		t.Error("loaded key differs from the one ssh-keygen wrote")
	}
}

func TestRefusesOpenKeyFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o602} {
		path := filepath.Join(t.TempDir(), "host_ed25519")
		if _, err := LoadOrCreate(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreate(path)
		if err == nil {
			t.Fatalf("mode %04o: key accepted, want refusal", mode)
		}
		msg := err.Error()
		for _, want := range []string{path, fmt.Sprintf("mode %04o", mode), "chmod 600 " + path} {
			if !strings.Contains(msg, want) {
				t.Errorf("mode %04o: error %q does not contain %q", mode, msg, want)
			}
		}
	}
}

func TestAcceptsOwnerOnlyModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	if _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
}

func TestRefusesWritableDirectory(t *testing.T) {
	for _, mode := range []os.FileMode{0o770, 0o757, 0o777} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "host_ed25519")
		_, err := LoadOrCreate(path)
		if err == nil {
			t.Fatalf("directory mode %04o accepted, want refusal", mode)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("mode %04o", mode)) {
			t.Errorf("error %q does not name the directory and its mode", err)
		}
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("directory mode %04o: a key was created despite the refusal", mode)
		}
	}
}

func TestRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("garbage key: err = %v, want an error naming %s", err, path)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "not a key\n" {
		t.Error("an unparsable key file was overwritten")
	}
}

func TestRefusesDirectoryAsKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("a directory was accepted as key file")
	}
}

func TestFingerprint(t *testing.T) {
	signer, err := LoadOrCreate(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	got := Fingerprint(signer.PublicKey())
	if want := ssh.FingerprintSHA256(signer.PublicKey()); got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
	if !strings.HasPrefix(got, "SHA256:") || strings.HasSuffix(got, "=") {
		t.Errorf("Fingerprint = %q, want SHA256: and unpadded base64", got)
	}
}

func TestFingerprintMatchesSSHKeygen(t *testing.T) {
	keygen := sshKeygen(t)
	path := filepath.Join(t.TempDir(), "k")
	signer, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := writePub(t, path, signer.PublicKey())
	out, err := exec.Command(keygen, "-l", "-f", pubPath).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 || fields[1] != Fingerprint(signer.PublicKey()) {
		t.Errorf("ssh-keygen -l says %q, Fingerprint says %q", out, Fingerprint(signer.PublicKey()))
	}
}

func TestSSHFP(t *testing.T) {
	signer, err := LoadOrCreate(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	pub := signer.PublicKey()
	blob := pub.Marshal()
	s1 := sha1.Sum(blob)
	s256 := sha256.Sum256(blob)
	want := []string{
		"activate.example.org IN SSHFP 4 1 " + hex.EncodeToString(s1[:]),
		"activate.example.org IN SSHFP 4 2 " + hex.EncodeToString(s256[:]),
	}
	got := SSHFP("activate.example.org", pub)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SSHFP =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSSHFPMatchesSSHKeygen(t *testing.T) {
	keygen := sshKeygen(t)
	path := filepath.Join(t.TempDir(), "k")
	signer, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := writePub(t, path, signer.PublicKey())
	out, err := exec.Command(keygen, "-r", "activate.example.org", "-f", pubPath).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -r: %v\n%s", err, out)
	}
	want := strings.TrimSpace(string(out))
	got := strings.Join(SSHFP("activate.example.org", signer.PublicKey()), "\n")
	if got != want {
		t.Errorf("SSHFP =\n%s\nssh-keygen -r =\n%s", got, want)
	}
}

func TestSSHFPUnknownType(t *testing.T) {
	if got := SSHFP("h", fakeKey{}); got != nil {
		t.Errorf("SSHFP of an unknown key type = %q, want nil", got)
	}
}

type fakeKey struct{ ssh.PublicKey }

func (fakeKey) Type() string { return "ssh-unknown" }

// sshKeygen returns the path of ssh-keygen, failing the test when missing.
func sshKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatal("ssh-keygen not found; install it: apt-get install -y openssh-client")
	}
	return p
}

// writePub writes pub next to the key as ssh-keygen would (KEY.pub).
func writePub(t *testing.T, keyPath string, pub ssh.PublicKey) string {
	t.Helper()
	p := keyPath + ".pub"
	if err := os.WriteFile(p, ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
