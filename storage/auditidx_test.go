package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"activated/flow"
)

// loginSeqs returns the seqs LoginEvents gives for login, in its order.
func loginSeqs(t *testing.T, db *DB, login string) (out []uint64) {
	t.Helper()
	mustView(t, db, func(tx flow.Tx) error {
		return tx.LoginEvents(login, func(e flow.Event) error {
			if e.Login != login {
				t.Errorf("LoginEvents(%q) gave event %d of %q", login, e.Seq, e.Login)
			}
			out = append(out, e.Seq)
			return nil
		})
	})
	return out
}

// walkSeqs returns the seqs of login's events found by walking the whole log.
func walkSeqs(t *testing.T, db *DB, login string) (out []uint64) {
	t.Helper()
	mustView(t, db, func(tx flow.Tx) error {
		return tx.Events(0, func(e flow.Event) error {
			if e.Login == login {
				out = append(out, e.Seq)
			}
			return nil
		})
	})
	return out
}

// indexKeys returns the raw auditidx keys.
func indexKeys(t *testing.T, db *DB) (out []string) {
	t.Helper()
	err := db.bolt.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketAuditIdx).ForEach(func(k, v []byte) error {
			if len(v) != 0 {
				t.Errorf("index key %q has a value %q", k, v)
			}
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditIndexWritten(t *testing.T) {
	db, _ := openTest(t)
	mustUpdate(t, db, func(tx flow.Tx) error {
		if err := tx.Audit(flow.Event{Action: "begin", Login: "jdupont"}); err != nil {
			return err
		}
		return tx.Audit(flow.Event{Seq: 7, Action: "start"})
	})
	want := []string{"\x00" + string(u64(7)), "jdupont\x00" + string(u64(1))}
	if got := indexKeys(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("index keys %q, want %q", got, want)
	}
	// An event rolled back takes its index key with it.
	boom := errors.New("boom")
	err := db.Update(func(tx flow.Tx) error {
		if err := tx.Audit(flow.Event{Action: "open", Login: "jdupont"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update: %v", err)
	}
	if got := indexKeys(t, db); len(got) != 2 {
		t.Errorf("index keys after a rollback: %q", got)
	}
	// A refused rewrite indexes nothing either.
	if err := db.Update(func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 1, Login: "amartin"}) }); err == nil {
		t.Fatal("rewriting event 1 succeeded")
	}
	if got := loginSeqs(t, db, "amartin"); len(got) != 0 {
		t.Errorf("refused rewrite indexed: %v", got)
	}
}

func TestLoginEvents(t *testing.T) {
	db, _ := openTest(t)
	// Logins sharing a prefix, an empty login (system events), one with a
	// 0x00 inside, interleaved over several transactions; explicit seqs
	// out of order.
	logins := []string{"jdupont", "jdupont2", "jdupon", "", "jdupont\x00x", "amartin"}
	for round := range 4 {
		mustUpdate(t, db, func(tx flow.Tx) error {
			for i, l := range logins {
				if (round+i)%3 == 2 {
					continue
				}
				e := flow.Event{Time: t0.Add(time.Duration(round) * time.Minute), Action: fmt.Sprintf("a%d", round), Login: l}
				if err := tx.Audit(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 100, Action: "late", Login: "jdupont"}) })
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 50, Action: "gap", Login: "jdupont"}) })
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Action: "after", Login: "jdupont2"}) })

	for _, l := range append(logins, "jdupont3", "jdupont\x00", "JDUPONT") {
		got, want := loginSeqs(t, db, l), walkSeqs(t, db, l)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("LoginEvents(%q) = %v, the full walk finds %v", l, got, want)
		}
	}
	jd := loginSeqs(t, db, "jdupont")
	if len(jd) < 4 || jd[len(jd)-2] != 50 || jd[len(jd)-1] != 100 {
		t.Errorf("jdupont events %v: want oldest first, ending with 50, 100", jd)
	}
	for i := 1; i < len(jd); i++ {
		if jd[i] <= jd[i-1] {
			t.Errorf("jdupont events not in seq order: %v", jd)
		}
	}
	if got := loginSeqs(t, db, "jdupont2"); len(got) == 0 || got[len(got)-1] != 101 {
		t.Errorf("jdupont2 events %v: want the last one to be 101", got)
	}
	if got := loginSeqs(t, db, "nobody"); len(got) != 0 {
		t.Errorf("unknown login: %v", got)
	}
	// The events come back whole.
	mustView(t, db, func(tx flow.Tx) error {
		return tx.LoginEvents("amartin", func(e flow.Event) error {
			if !strings.HasPrefix(e.Action, "a") || e.Time.IsZero() {
				t.Errorf("event %+v", e)
			}
			return nil
		})
	})
	stop := errors.New("stop")
	var n int
	err := db.View(func(tx flow.Tx) error { return tx.LoginEvents("jdupont", func(flow.Event) error { n++; return stop }) })
	if err != stop || n != 1 {
		t.Errorf("LoginEvents with fn error: %v after %d", err, n)
	}
}

func TestLoginEventsReportsBrokenRecords(t *testing.T) {
	db, _ := openTest(t)
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		idx := btx.Bucket(bucketAuditIdx)
		if err := idx.Put(idxKey("ghost", u64(9)), nil); err != nil {
			return err
		}
		if err := btx.Bucket(bucketAudit).Put(u64(3), []byte("{not json")); err != nil {
			return err
		}
		return idx.Put(idxKey("corrupt", u64(3)), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	for login, want := range map[string]string{"ghost": "indexed event 9 is missing", "corrupt": "events of corrupt"} {
		err := db.View(func(tx flow.Tx) error { return tx.LoginEvents(login, func(flow.Event) error { return nil }) })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoginEvents(%s): %v, want %q", login, err, want)
		}
	}
}

// openV1 creates a database at path with the version 1 schema only and
// the given events written as version 1 wrote them (no index).
func openV1(t *testing.T, path string, events []flow.Event) {
	t.Helper()
	saved := migrations
	migrations = saved[:1]
	db, err := Open(path, Options{})
	migrations = saved
	if err != nil {
		t.Fatalf("Open v1: %v", err)
	}
	err = db.bolt.Update(func(btx *bolt.Tx) error {
		if btx.Bucket(bucketAuditIdx) != nil {
			return errors.New("a v1 database has an audit index")
		}
		b := btx.Bucket(bucketAudit)
		for _, e := range events {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			e.Seq = seq
			raw, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(u64(seq), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationIndexesAudit(t *testing.T) {
	path := t.TempDir() + "/activated.db"
	var events []flow.Event
	for i := range 30 {
		events = append(events, flow.Event{Time: t0.Add(time.Duration(i) * time.Second), Actor: "user",
			Action: fmt.Sprintf("step%d", i), Login: []string{"jdupont", "jdupont2", "amartin", ""}[i%4]})
	}
	openV1(t, path, events)

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open a v1 database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.bolt.View(func(btx *bolt.Tx) error {
		if v := binary.BigEndian.Uint64(btx.Bucket(bucketMeta).Get(keyVersion)); v != 2 {
			t.Errorf("schema version %d after migration, want 2", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := indexKeys(t, db); len(got) != len(events) {
		t.Errorf("%d index keys for %d events", len(got), len(events))
	}
	// New events go on after the migrated ones, in order.
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Action: "new", Login: "jdupont"}) })
	for _, l := range []string{"jdupont", "jdupont2", "amartin", ""} {
		got, want := loginSeqs(t, db, l), walkSeqs(t, db, l)
		if !reflect.DeepEqual(got, want) || len(got) < 7 {
			t.Errorf("LoginEvents(%q) after migration = %v, want %v", l, got, want)
		}
	}
	if got := loginSeqs(t, db, "jdupont"); got[0] != 1 || got[len(got)-1] != 31 {
		t.Errorf("jdupont after migration: %v, want 1 … 31", got)
	}
	mustView(t, db, func(tx flow.Tx) error {
		var first flow.Event
		err := tx.LoginEvents("jdupont", func(e flow.Event) error {
			if first.Seq == 0 {
				first = e
			}
			return nil
		})
		want := events[0]
		want.Seq = 1
		if err != nil || first != want {
			t.Errorf("first jdupont event %+v, %v; want %+v", first, err, want)
		}
		return nil
	})
}

func TestMigrationRefusesCorruptAudit(t *testing.T) {
	path := t.TempDir() + "/activated.db"
	openV1(t, path, []flow.Event{{Action: "begin", Login: "jdupont"}})
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketAudit).Put(u64(2), []byte("{not json")) })
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "migrate to version 2: index audit event 0000000000000002") {
		t.Fatalf("Open over a corrupt audit event: %v", err)
	}
	// Nothing half-done: the database is still at version 1, without index.
	b, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.View(func(btx *bolt.Tx) error {
		if v := binary.BigEndian.Uint64(btx.Bucket(bucketMeta).Get(keyVersion)); v != 1 || btx.Bucket(bucketAuditIdx) != nil {
			t.Errorf("after a failed migration: version %d, index %v", v, btx.Bucket(bucketAuditIdx) != nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
