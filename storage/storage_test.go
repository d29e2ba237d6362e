package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"activated/flow"
)

// openTest opens a fresh database in a temporary directory.
func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "activated.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func mustUpdate(t testing.TB, db *DB, fn func(flow.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t testing.TB, db *DB, fn func(flow.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestOpenCreatesFilesPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib")
	path := filepath.Join(dir, "activated.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %04o, want 0700", m)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("db mode %04o, want 0600", m)
	}
	if m := mode(t, path+".secret"); m != 0o600 {
		t.Errorf("secret mode %04o, want 0600", m)
	}
	secret, err := os.ReadFile(path + ".secret")
	if err != nil || len(secret) != secretLen {
		t.Fatalf("secret: %d bytes, %v", len(secret), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".secret-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestOpenMkdirFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "db"), Options{}); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestSchemaVersionWritten(t *testing.T) {
	db, _ := openTest(t)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketMeta).Get(keyVersion)
		if len(raw) != 8 || raw[7] != byte(len(migrations)) || len(migrations) != 2 {
			t.Errorf("version bytes %x, migrations %d; want version 2", raw, len(migrations))
		}
		for _, b := range [][]byte{bucketDossiers, bucketCodes, bucketCodeIdx, bucketOutbox,
			bucketMailIdx, bucketQueue, bucketAudit, bucketAuditIdx, bucketMeta} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func setVersion(t *testing.T, db *DB, raw []byte) {
	t.Helper()
	err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, raw) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	db, path := openTest(t)
	setVersion(t, db, u64(uint64(len(migrations)+1)))
	db.Close()
	_, err := Open(path, Options{})
	if want := fmt.Sprintf("schema version %d is newer", len(migrations)+1); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a future schema: %v", err)
	}
}

func TestCorruptSchemaVersionRefused(t *testing.T) {
	db, path := openTest(t)
	setVersion(t, db, []byte{1})
	db.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt schema version") {
		t.Fatalf("Open: %v", err)
	}
}

func TestMigrationRunsOnce(t *testing.T) {
	db, path := openTest(t)
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.PutDossier(flow.Dossier{Login: "alice"}) })
	db.Close()

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	var ran int
	next := func(tx *bolt.Tx) error {
		ran++
		_, err := tx.CreateBucket([]byte("next"))
		return err
	}
	migrations = append(saved[:len(saved):len(saved)], next)
	for range 2 {
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("Open with one more migration: %v", err)
		}
		db.Close()
	}
	if ran != 1 {
		t.Errorf("the new migration ran %d times, want 1", ran)
	}

	migrations = append(saved[:len(saved):len(saved)], next, func(*bolt.Tx) error { return errors.New("boom") })
	want := fmt.Sprintf("migrate to version %d: boom", len(saved)+2)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("failing migration: %v, want %q", err, want)
	}
	migrations = saved
	want = fmt.Sprintf("schema version %d is newer", len(saved)+1)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a newer schema with older code: %v, want %q", err, want)
	}
}

func TestSecondOpenInUse(t *testing.T) {
	_, path := openTest(t)
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open succeeded")
	}
	if !strings.Contains(err.Error(), "database "+path+" is in use by another process") || !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestInsecureSecretRefused(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	for _, m := range []os.FileMode{0o640, 0o604} {
		if err := os.Chmod(path+".secret", m); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		if err == nil || !strings.Contains(err.Error(), "the group or others can access it; run: chmod 600") {
			t.Fatalf("Open with secret mode %04o: %v", m, err)
		}
	}
}

func TestBadSecretRefused(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	secret := path + ".secret"
	for _, content := range [][]byte{nil, make([]byte, 31), make([]byte, 33)} {
		if err := os.WriteFile(secret, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "want exactly 32 bytes") {
			t.Fatalf("Open with a %d-byte secret: %v", len(content), err)
		}
	}
	os.Remove(secret)
	if err := os.Mkdir(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Open with a directory as secret: %v", err)
	}
}

func TestMissingSecretOfExistingDatabaseRefused(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	if err := os.Remove(path + ".secret"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("Open without the secret: %v", err)
	}
	if _, serr := os.Stat(path + ".secret"); serr == nil {
		t.Error("a new secret was created for an existing database")
	}
}

func TestSecretCreatedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	var wg sync.WaitGroup
	got := make([][]byte, 4)
	for i := range got {
		wg.Go(func() {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Error(err)
				return
			}
			k, err := loadKeys(path)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = k.secret
		})
	}
	wg.Wait()
	for i := range got {
		if string(got[i]) != string(got[0]) {
			t.Fatalf("concurrent first opens got different secrets")
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	db, path := openTest(t)
	code := flow.NewCode()
	deadline := time.Date(2030, 1, 2, 23, 59, 59, 0, time.UTC)
	d := flow.Dossier{Login: "alice", DN: "uid=alice,ou=people", RecoveryMails: []string{"a@example.org"}, Deadline: deadline}
	mustUpdate(t, db, func(tx flow.Tx) error {
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		if err := tx.PutCode(code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: deadline}); err != nil {
			return err
		}
		if _, err := tx.Enqueue(flow.Mail{Kind: flow.MailInvitation, To: "a@example.org", Login: "alice", Code: code}); err != nil {
			return err
		}
		return tx.Audit(flow.Event{Actor: "staff", Action: "invite", Login: "alice"})
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustView(t, db, func(tx flow.Tx) error {
		got, err := tx.Dossier("alice")
		if err != nil || got.DN != d.DN || !got.Deadline.Equal(deadline) {
			t.Errorf("dossier after reopen: %+v, %v", got, err)
		}
		c, err := tx.Code(code)
		if err != nil || c.Login != "alice" || c.State != flow.CodeLive {
			t.Errorf("code after reopen: %+v, %v", c, err)
		}
		if _, err := tx.LiveCode("alice", flow.PurposeInvite); err != nil {
			t.Errorf("live code after reopen: %v", err)
		}
		ms, err := tx.Mails("alice")
		if err != nil || len(ms) != 1 || ms[0].Code != code {
			t.Errorf("mails after reopen: %+v, %v", ms, err)
		}
		var n int
		if err := tx.Events(0, func(flow.Event) error { n++; return nil }); err != nil || n != 1 {
			t.Errorf("events after reopen: %d, %v", n, err)
		}
		return nil
	})
	due, err := db.Due(time.Now(), 0)
	if err != nil || len(due) != 1 {
		t.Errorf("due after reopen: %+v, %v", due, err)
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	db, _ := openTest(t)
	boom := errors.New("boom")
	err := db.Update(func(tx flow.Tx) error {
		if err := tx.PutDossier(flow.Dossier{Login: "alice"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want the fn error itself", err)
	}
	mustView(t, db, func(tx flow.Tx) error {
		if _, err := tx.Dossier("alice"); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("dossier after rollback: %v", err)
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	db, _ := openTest(t)
	err := db.View(func(tx flow.Tx) error { return tx.PutDossier(flow.Dossier{Login: "alice"}) })
	if !errors.Is(err, berrors.ErrTxNotWritable) {
		t.Fatalf("PutDossier in View: %v", err)
	}
	err = db.View(func(tx flow.Tx) error { _, err := tx.Enqueue(flow.Mail{Login: "alice"}); return err })
	if !errors.Is(err, berrors.ErrTxNotWritable) {
		t.Fatalf("Enqueue in View: %v", err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	db, _ := openTest(t)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				err := db.Update(func(tx flow.Tx) error {
					return tx.Audit(flow.Event{Actor: "user", Action: "step", Login: string(rune('a' + w))})
				})
				if err != nil {
					t.Error(err)
				}
				if err := db.View(func(tx flow.Tx) error { return tx.Events(0, func(flow.Event) error { return nil }) }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var last uint64
	var n int
	mustView(t, db, func(tx flow.Tx) error {
		return tx.Events(0, func(e flow.Event) error {
			if e.Seq != last+1 {
				t.Errorf("seq %d after %d", e.Seq, last)
			}
			last = e.Seq
			n++
			return nil
		})
	})
	if n != workers*each {
		t.Errorf("%d events, want %d", n, workers*each)
	}
}

// An existing database the group or others can read, or a directory they
// can write to (and so replace the database or its secret), is refused
// with the command that fixes it, like the host key.
func TestOpenRefusesLooseModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib")
	path := filepath.Join(dir, "activated.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, tc := range []struct {
		file string
		mode os.FileMode
		want string
	}{
		{path, 0o644, "chmod 600 " + path},
		{dir, 0o777, "chmod go-w " + dir},
	} {
		if err := os.Chmod(tc.file, tc.mode); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, Options{})
		if err == nil {
			db.Close()
			t.Errorf("Open with %s mode %04o succeeded", tc.file, tc.mode)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with %s mode %04o: %v, want it to say %q", tc.file, tc.mode, err, tc.want)
		}
		private := os.FileMode(0o600)
		if tc.file == dir {
			private = 0o700
		}
		if err := os.Chmod(tc.file, private); err != nil {
			t.Fatal(err)
		}
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open once the modes are fixed: %v", err)
	}
	db.Close()
}

// metaFreelists reads the free-list page id of both meta pages of a closed
// bbolt file (page header 16 bytes, then magic, version, page size, flags,
// root bucket 16 bytes, freelist id).
func metaFreelists(t *testing.T, path string) [2]uint64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.LittleEndian.Uint32(raw[16+8:]))
	var ids [2]uint64
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(raw[i*pageSize+16+32:])
	}
	return ids
}

// TestFreelistNotWritten: commits leave the free-page list out, and a
// database written with it (an earlier release) or without it opens and
// keeps its data both ways (with bbolt's defaults: a downgrade, a tool).
func TestFreelistNotWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "activated.db")
	old, err := bolt.Open(path, 0o600, nil) // an earlier release's database
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("earlier"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), bytes.Repeat([]byte("v"), 20000)) // pages to free later
	}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	if ids := metaFreelists(t, path); ids[0] == noFreelist && ids[1] == noFreelist {
		t.Fatalf("bbolt's defaults wrote no free-page list: %x", ids)
	}
	if err := os.WriteFile(path+".secret", bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustUpdate(t, db, func(tx flow.Tx) error {
			return tx.PutDossier(flow.Dossier{Login: fmt.Sprintf("u%d", i), DN: strings.Repeat("x", 3000)})
		})
	}
	db.Close()
	if ids := metaFreelists(t, path); ids[0] != noFreelist || ids[1] != noFreelist {
		t.Errorf("free-page list still written at each commit: meta pages point to %x", ids)
	}
	plain, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("earlier")).Get([]byte("k")); len(v) != 20000 {
			return fmt.Errorf("earlier value: %d bytes", len(v))
		}
		if v := tx.Bucket(bucketDossiers).Get([]byte("u19")); v == nil {
			return fmt.Errorf("dossier u19 lost")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	plain.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustView(t, db, func(tx flow.Tx) error {
		if _, err := tx.Dossier("u0"); err != nil {
			t.Errorf("after a plain bbolt open: %v", err)
		}
		return nil
	})
}

const noFreelist = 0xffffffffffffffff
