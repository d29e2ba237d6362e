package storage

import (
	"fmt"
	"testing"
	"time"

	"activated/flow"
)

// BenchmarkWriteStep writes one step of a dossier: one Update that reads
// the dossier, changes a choice, writes it back and appends an audit event.
func BenchmarkWriteStep(b *testing.B) {
	db, _ := openTest(b)
	now := time.Now()
	mustUpdate(b, db, func(tx flow.Tx) error {
		return tx.PutDossier(flow.Dossier{Login: "alice", DN: "uid=alice,ou=people,dc=example,dc=org",
			RecoveryMails: []string{"alice@example.net"}, Deadline: now.Add(24 * time.Hour), Opened: now, Created: now})
	})
	b.ReportAllocs()
	for b.Loop() {
		err := db.Update(func(tx flow.Tx) error {
			d, err := tx.Dossier("alice")
			if err != nil {
				return err
			}
			d.DirectoryChosen, d.PublicDirectory = true, !d.PublicDirectory
			d.Updated = now
			if err := tx.PutDossier(d); err != nil {
				return err
			}
			return tx.Audit(flow.Event{Time: now, Actor: "user", Remote: "192.0.2.1:40000", Action: "directory", Login: "alice"})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupCode looks a code up among 10,000.
func BenchmarkLookupCode(b *testing.B) {
	db, _ := openTest(b)
	codes := make([]string, 10_000)
	deadline := time.Now().Add(24 * time.Hour)
	mustUpdate(b, db, func(tx flow.Tx) error {
		for i := range codes {
			codes[i] = flow.NewCode()
			login := "user" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
			if err := tx.PutCode(codes[i], flow.Code{Login: login, Purpose: flow.PurposeInvite, Deadline: deadline}); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := db.View(func(tx flow.Tx) error {
			_, err := tx.Code(codes[i%len(codes)])
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLoginEvents reads the events of one login out of 100,000 spread
// over 10,000 logins: through the per-login index, and by walking the
// whole log and filtering (what Status did before the index).
func BenchmarkLoginEvents(b *testing.B) {
	const events, logins = 100_000, 10_000
	db, _ := openTest(b)
	login := func(i int) string { return fmt.Sprintf("user%05d", i%logins) }
	now := time.Now()
	for start := 0; start < events; start += 10_000 {
		mustUpdate(b, db, func(tx flow.Tx) error {
			for i := start; i < start+10_000; i++ {
				e := flow.Event{Time: now, Actor: "user", Remote: "192.0.2.1:40000", Action: "directory", Login: login(i)}
				if err := tx.Audit(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	read := func(b *testing.B, each func(tx flow.Tx, l string, fn func(flow.Event) error) error) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l, n := login(i*7919), 0
			err := db.View(func(tx flow.Tx) error {
				return each(tx, l, func(flow.Event) error { n++; return nil })
			})
			if err != nil || n != events/logins {
				b.Fatalf("%s: %d events, %v", l, n, err)
			}
			i++
		}
	}
	b.Run("LoginEvents", func(b *testing.B) {
		read(b, func(tx flow.Tx, l string, fn func(flow.Event) error) error { return tx.LoginEvents(l, fn) })
	})
	b.Run("EventsFiltered", func(b *testing.B) {
		read(b, func(tx flow.Tx, l string, fn func(flow.Event) error) error {
			return tx.Events(0, func(e flow.Event) error {
				if e.Login == l {
					return fn(e)
				}
				return nil
			})
		})
	})
}

// BenchmarkStaleMailsOfALogin finds a login's mails that a dead code may
// still carry, with 1,000 past mails delivered: QueuedMails (what flow
// reads now) against Mails (what the cancellation read before, in the
// global write transaction).
func BenchmarkStaleMailsOfALogin(b *testing.B) {
	db, _ := openTest(b)
	now := time.Now()
	for range 1000 {
		id := enqueue(b, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: flow.NewCode(), Created: now})
		if err := db.Delivered(id, now); err != nil {
			b.Fatal(err)
		}
	}
	enqueue(b, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: flow.NewCode(), Created: now})
	for _, read := range []struct {
		name string
		fn   func(flow.Tx) ([]flow.Mail, error)
	}{
		{"QueuedMails", func(tx flow.Tx) ([]flow.Mail, error) { return tx.QueuedMails("alice") }},
		{"Mails", func(tx flow.Tx) ([]flow.Mail, error) { return tx.Mails("alice") }},
	} {
		b.Run(read.name, func(b *testing.B) {
			for b.Loop() {
				mustView(b, db, func(tx flow.Tx) error { _, err := read.fn(tx); return err })
			}
		})
	}
}
