package sshapp

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func pubKey(t *testing.T) gossh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func keyLine(pk gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk)))
}

func TestStaffKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staff_keys")
	var logs bytes.Buffer
	k := newStaffKeys(path, slog.New(slog.NewTextHandler(&logs, nil)))
	alice, bob, carol, dave, eve := pubKey(t), pubKey(t), pubKey(t), pubKey(t), pubKey(t)

	if _, ok := k.lookup(alice); ok {
		t.Fatal("a missing file lets someone in")
	}
	if !strings.Contains(logs.String(), "no staff access") {
		t.Errorf("missing file not logged: %s", logs.String())
	}

	content := strings.Join([]string{
		"# staff",
		"",
		keyLine(alice) + " Alice Martin",
		"restrict,no-pty " + keyLine(bob) + " bob\x1b[31m",
		`from="10.0.0.0/8" ` + keyLine(carol) + " carol",
		"ssh-ed25519 AAAAnotbase64 broken",
		keyLine(dave),
	}, "\n")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  gossh.PublicKey
		name string
		ok   bool
	}{
		{alice, "Alice Martin", true},
		{bob, "bob", true}, // escape sequence stripped
		{carol, "", false}, // from= is not enforced here, so the line is skipped
		{dave, gossh.FingerprintSHA256(dave), true},
		{eve, "", false},
		{nil, "", false},
	} {
		name, ok := k.lookup(tc.key)
		if ok != tc.ok || name != tc.name {
			t.Errorf("lookup = %q, %v; want %q, %v", name, ok, tc.name, tc.ok)
		}
	}
	if !strings.Contains(logs.String(), "option not supported") || !strings.Contains(logs.String(), "line=6") {
		t.Errorf("skipped lines not logged: %s", logs.String())
	}

	if err := os.WriteFile(path, []byte(keyLine(eve)+" eve\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.lookup(alice); ok {
		t.Error("alice still in after the file changed")
	}
	if name, ok := k.lookup(eve); !ok || name != "eve" {
		t.Errorf("eve: %q, %v", name, ok)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.lookup(eve); ok {
		t.Error("eve still in after the file was removed")
	}

	if err := os.WriteFile(path, bytes.Repeat([]byte("#"), maxKeysFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.lookup(eve); ok {
		t.Error("an oversized file was used")
	}

	if _, ok := newStaffKeys("", k.log).lookup(eve); ok {
		t.Error("no file configured lets someone in")
	}
}

// A keys file the group or others can write would let them make
// themselves staff: it is refused until its mode is fixed.
func TestStaffKeysFileWritableByOthersRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "staff_keys")
	var logs bytes.Buffer
	k := newStaffKeys(path, slog.New(slog.NewTextHandler(&logs, nil)))
	alice := pubKey(t)
	if err := os.WriteFile(path, []byte(keyLine(alice)+" alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.lookup(alice); !ok {
		t.Fatal("a 0644 keys file (readable by others) is refused")
	}
	for _, mode := range []os.FileMode{0o664, 0o646} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		now := time.Now().Add(time.Duration(mode) * time.Second) // a new mtime: the file is read again
		os.Chtimes(path, now, now)
		if _, ok := k.lookup(alice); ok {
			t.Errorf("mode %04o: the key is accepted", mode)
		}
	}
	if !strings.Contains(logs.String(), "chmod go-w") {
		t.Errorf("the refusal does not say how to fix it: %s", logs.String())
	}
}

func TestSafePathLikeStrictModes(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "sub", "staff_keys")
	if err := os.MkdirAll(filepath.Dir(keys), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, []byte("# none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := safePath(keys)
	if err != nil {
		t.Fatalf("a safe file refused: %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(keys, link); err != nil {
		t.Fatal(err)
	}
	if _, err := safePath(link); err != nil {
		t.Errorf("a symlink to a safe file refused: %v", err)
	}
	// A directory above it that the group can write: whoever is in the
	// group could replace the file.
	if err := os.Chmod(filepath.Dir(keys), 0o775); err != nil {
		t.Fatal(err)
	}
	if _, err := safePath(keys); err == nil || !strings.Contains(err.Error(), "chmod go-w "+filepath.Dir(keys)) {
		t.Errorf("group-writable directory: %v", err)
	}
	if err := os.Chmod(filepath.Dir(keys), 0o755); err != nil {
		t.Fatal(err)
	}
	// Any change shows in the state, a chmod that keeps it safe included.
	if err := os.Chmod(keys, 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := safePath(keys)
	if err != nil || after == before {
		t.Errorf("a chmod left the state unchanged (%v)", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dirfile"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := safePath(filepath.Join(dir, "dirfile")); err == nil {
		t.Error("a directory accepted as the keys file")
	}
}
