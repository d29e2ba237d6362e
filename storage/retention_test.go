package storage

import (
	"testing"
	"time"

	"activated/flow"
)

// Events older than the cut-off go, with their per-login index entries;
// the others, and the sequence, stay.
func TestDeleteEventsBefore(t *testing.T) {
	db, err := Open(t.TempDir()+"/a.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	err = db.Update(func(tx flow.Tx) error {
		for i, login := range []string{"old1", "old2", "new1"} {
			if err := tx.Audit(flow.Event{Time: t0.Add(time.Duration(i) * 24 * time.Hour), Action: "begin", Login: login}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteEventsBefore(t0.Add(36 * time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	var left []string
	var perLogin int
	err = db.View(func(tx flow.Tx) error {
		if err := tx.Events(0, func(e flow.Event) error { left = append(left, e.Login); return nil }); err != nil {
			return err
		}
		for _, l := range []string{"old1", "old2", "new1"} {
			if err := tx.LoginEvents(l, func(flow.Event) error { perLogin++; return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "new1" || perLogin != 1 {
		t.Fatalf("left %v, %d indexed; want [new1], 1", left, perLogin)
	}
	if n, err := db.DeleteEventsBefore(t0.Add(36 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("second sweep deleted %d, %v", n, err)
	}
	err = db.Update(func(tx flow.Tx) error { return tx.Audit(flow.Event{Time: t0, Action: "x", Login: "z"}) })
	var seqs []uint64
	_ = db.View(func(tx flow.Tx) error {
		return tx.Events(0, func(e flow.Event) error { seqs = append(seqs, e.Seq); return nil })
	})
	if err != nil || len(seqs) != 2 || seqs[1] != 4 {
		t.Fatalf("after the sweep, a new event got seqs %v (%v); want [3 4]", seqs, err)
	}
}
