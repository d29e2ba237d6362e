package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"activated/storage"
)

// backup -o pointed at a database a process has open (the service's own
// storage.path, or another instance's) is refused and leaves that file as
// it was: renaming a copy over it would leave the service writing to a
// deleted file, and every step taken from then on lost at its restart.
func TestBackupRefusesADatabaseInUse(t *testing.T) {
	h := newHarness(t)
	other := filepath.Join(t.TempDir(), "other.db")
	otherDB, err := storage.Open(other, storage.Options{})
	must(t, err)
	defer otherDB.Close()
	for _, out := range []string{h.cfg.Storage.Path, other} {
		before, err := os.Stat(out)
		must(t, err)
		secret, err := os.ReadFile(out + ".secret")
		must(t, err)
		rc, stdout, stderr := runCmd("backup", "-config", h.writeConfig(nil), "-o", out)
		if rc == 0 || !strings.Contains(stderr, "-o "+out) || !strings.Contains(stderr, "elsewhere") {
			t.Errorf("backup -o %s: exit %d, %q %q; want a refusal naming -o and saying to write elsewhere", out, rc, stdout, stderr)
		}
		after, err := os.Stat(out)
		must(t, err)
		if !os.SameFile(before, after) {
			t.Errorf("backup -o %s replaced the database in use", out)
		}
		if s, err := os.ReadFile(out + ".secret"); err != nil || string(s) != string(secret) {
			t.Errorf("backup -o %s changed %s.secret (%v)", out, out, err)
		}
		if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("%s.tmp left behind: %v", out, err)
		}
	}
}
