package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"activated/flow"
)

func enqueue(t testing.TB, db *DB, m flow.Mail) uint64 {
	t.Helper()
	var id uint64
	mustUpdate(t, db, func(tx flow.Tx) error { var err error; id, err = tx.Enqueue(m); return err })
	return id
}

func mails(t *testing.T, db *DB, login string) []flow.Mail {
	t.Helper()
	var ms []flow.Mail
	mustView(t, db, func(tx flow.Tx) error { var err error; ms, err = tx.Mails(login); return err })
	return ms
}

func ids(ms []flow.Mail) (out []uint64) {
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func sameIDs(got []flow.Mail, want ...uint64) bool {
	return slices.Equal(ids(got), want)
}

func TestEnqueueAndMails(t *testing.T) {
	db, _ := openTest(t)
	a1 := enqueue(t, db, flow.Mail{Kind: flow.MailInvitation, To: "a@example.net", Login: "alice", Code: flow.NewCode(), State: flow.MailSent, Attempts: 0})
	b1 := enqueue(t, db, flow.Mail{Kind: flow.MailInvitation, To: "b@example.net", Login: "alice.b", Created: t0})
	a2 := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice"})
	if a1 != 1 || b1 != 2 || a2 != 3 {
		t.Fatalf("ids %d %d %d", a1, b1, a2)
	}
	ms := mails(t, db, "alice")
	if !sameIDs(ms, a1, a2) {
		t.Fatalf("Mails(alice) = %v", ids(ms))
	}
	if ms[0].State != flow.MailQueued || !ms[0].Created.IsZero() || ms[0].Kind != flow.MailInvitation {
		t.Errorf("enqueued mail = %+v: queued, its time as given (flow's clock sets it)", ms[0])
	}
	if got := mails(t, db, "alice.b"); len(got) != 1 || !got[0].Created.Equal(t0) {
		t.Errorf("Mails(alice.b) = %+v; Created must be kept", got)
	}
	if got := mails(t, db, "nobody"); len(got) != 0 {
		t.Errorf("Mails(nobody) = %+v", got)
	}
	if err := db.Update(func(tx flow.Tx) error { _, err := tx.Enqueue(flow.Mail{To: "x@example.net"}); return err }); err == nil {
		t.Error("Enqueue without a login succeeded")
	}
}

func TestEnqueuedSignal(t *testing.T) {
	db, _ := openTest(t)
	select {
	case <-db.Enqueued():
		t.Fatal("signalled before any mail")
	default:
	}
	boom := errors.New("boom")
	err := db.Update(func(tx flow.Tx) error {
		if _, err := tx.Enqueue(flow.Mail{Login: "alice"}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatal(err)
	}
	select {
	case <-db.Enqueued():
		t.Fatal("signalled after a rolled-back Update")
	default:
	}
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.PutDossier(flow.Dossier{Login: "alice"}) })
	select {
	case <-db.Enqueued():
		t.Fatal("signalled after an Update without Enqueue")
	default:
	}
	enqueue(t, db, flow.Mail{Login: "alice"})
	enqueue(t, db, flow.Mail{Login: "alice"}) // the buffer of one does not block
	select {
	case <-db.Enqueued():
	default:
		t.Fatal("no signal after a committed Enqueue")
	}
}

func TestOutboxLifecycle(t *testing.T) {
	db, _ := openTest(t)
	now := t0
	m1 := enqueue(t, db, flow.Mail{Kind: flow.MailInvitation, To: "a@example.net", Login: "alice", Code: flow.NewCode()})
	m2 := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "b@example.net", Login: "bob", Code: flow.NewCode(), NextAttempt: now.Add(time.Hour)})
	m3 := enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "c@example.net", Login: "carol", NextAttempt: now})

	due := func(at time.Time, limit int) []flow.Mail {
		t.Helper()
		ms, err := db.Due(at, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	if got := due(now, 0); !sameIDs(got, m1, m3) {
		t.Errorf("Due(now) = %v, want [%d %d]", ids(got), m1, m3)
	}
	if got := due(now, 1); !sameIDs(got, m1) {
		t.Errorf("Due(now, 1) = %v", ids(got))
	}
	if got := due(now.Add(time.Hour), 0); !sameIDs(got, m1, m2, m3) {
		t.Errorf("Due(now+1h) = %v", ids(got))
	}

	if err := db.Retry(m1, now.Add(10*time.Minute), "421 try later"); err != nil {
		t.Fatal(err)
	}
	if got := due(now, 0); !sameIDs(got, m3) {
		t.Errorf("Due(now) after Retry = %v", ids(got))
	}
	got := due(now.Add(10*time.Minute), 0)
	if !sameIDs(got, m1, m3) || got[0].Attempts != 1 || got[0].LastError != "421 try later" || got[0].Code == "" {
		t.Errorf("Due after Retry = %+v", got)
	}

	sentAt := now.Add(11 * time.Minute)
	if err := db.Delivered(m1, sentAt); err != nil {
		t.Fatal(err)
	}
	a := mails(t, db, "alice")[0]
	if a.State != flow.MailSent || !a.Sent.Equal(sentAt) || a.Code != "" || a.Attempts != 2 { // one failed try, then the one that went through
		t.Errorf("delivered mail = %+v", a)
	}
	if err := db.Delivered(m1, sentAt); err == nil || !strings.Contains(err.Error(), "not queued") {
		t.Errorf("second Delivered: %v", err)
	}
	if err := db.Retry(m1, sentAt, "x"); err == nil {
		t.Error("Retry of a sent mail succeeded")
	}

	if err := db.GiveUp(m2, now.Add(48*time.Hour), "550 no such user"); err != nil {
		t.Fatal(err)
	}
	b := mails(t, db, "bob")[0]
	if b.State != flow.MailFailed || b.Code != "" || b.LastError != "550 no such user" || b.Attempts != 1 {
		t.Errorf("failed mail = %+v", b)
	}
	if got := due(now.Add(100*time.Hour), 0); !sameIDs(got, m3) {
		t.Errorf("Due after Delivered and GiveUp = %v", ids(got))
	}

	var evs []flow.Event
	mustView(t, db, func(tx flow.Tx) error {
		return tx.Events(0, func(e flow.Event) error { evs = append(evs, e); return nil })
	})
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if e := evs[0]; e.Action != "mail-sent" || e.Actor != "system" || e.Login != "alice" || !e.Time.Equal(sentAt) ||
		!strings.Contains(e.Detail, "invitation") || !strings.Contains(e.Detail, "a@example.net") {
		t.Errorf("mail-sent event = %+v", e)
	}
	if e := evs[1]; e.Action != "mail-failed" || e.Actor != "system" || e.Login != "bob" ||
		!strings.Contains(e.Detail, "recovery") || !strings.Contains(e.Detail, "b@example.net") {
		t.Errorf("mail-failed event = %+v", e)
	}

	for name, err := range map[string]error{
		"Delivered": db.Delivered(99, now), "Retry": db.Retry(99, now, ""), "GiveUp": db.GiveUp(99, now, ""),
	} {
		if !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("%s of an unknown mail: %v", name, err)
		}
	}
}

// rawContains tells whether any key or value of bucket holds one of needles.
func rawContains(t *testing.T, db *DB, bucket []byte, needles ...string) bool {
	t.Helper()
	found := false
	err := db.bolt.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucket).ForEach(func(k, v []byte) error {
			for _, n := range needles {
				if bytes.Contains(k, []byte(n)) || bytes.Contains(v, []byte(n)) {
					found = true
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestNoCodeInClear(t *testing.T) {
	db, path := openTest(t)
	code := flow.NewCode()
	norm, _ := flow.NormalizeCode(code)
	var id uint64
	mustUpdate(t, db, func(tx flow.Tx) error {
		if err := tx.PutCode(code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Target: "a@example.net"}); err != nil {
			return err
		}
		var err error
		id, err = tx.Enqueue(flow.Mail{Kind: flow.MailInvitation, To: "a@example.net", Login: "alice", Code: code})
		return err
	})
	check := func(when string) {
		t.Helper()
		for _, b := range [][]byte{bucketCodes, bucketCodeIdx, bucketOutbox, bucketMailIdx} {
			if rawContains(t, db, b, code, norm) {
				t.Errorf("%s: bucket %s holds the code in clear", when, b)
			}
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(file, []byte(code)) || bytes.Contains(file, []byte(norm)) {
			t.Errorf("%s: the database file holds the code in clear", when)
		}
	}
	check("queued")
	// The sealed mail does carry the code (the worker needs it) ...
	if rawContains(t, db, bucketOutbox, "a@example.net") {
		t.Error("the outbox is not sealed: the recipient is readable")
	}
	if ms := mails(t, db, "alice"); ms[0].Code != code {
		t.Fatalf("unsealed mail has code %q", ms[0].Code)
	}
	// ... until it is sent: then the plaintext has none either.
	if err := db.Delivered(id, t0); err != nil {
		t.Fatal(err)
	}
	check("sent")
	err := db.bolt.View(func(btx *bolt.Tx) error {
		key := u64(id)
		plain, err := db.keys.open(key, btx.Bucket(bucketOutbox).Get(key))
		if err != nil {
			return err
		}
		if bytes.Contains(plain, []byte(code)) || bytes.Contains(plain, []byte(`"code"`)) {
			t.Errorf("sent mail still holds the code: %s", plain)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSealedMailBoundToItsID(t *testing.T) {
	db, _ := openTest(t)
	enqueue(t, db, flow.Mail{Login: "alice", Code: flow.NewCode()})
	enqueue(t, db, flow.Mail{Login: "alice"})
	// Moving a sealed value under another id must not pass.
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketOutbox)
		return b.Put(u64(2), bytes.Clone(b.Get(u64(1))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx flow.Tx) error { _, err := tx.Mails("alice"); return err }); err == nil {
		t.Error("a sealed value moved to another id was accepted")
	}
	if _, err := db.Due(time.Now(), 0); err == nil {
		t.Error("Due accepted a moved sealed value")
	}
	err = db.bolt.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketOutbox).Put(u64(2), []byte("short")) })
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Retry(2, time.Now(), ""); err == nil {
		t.Error("a truncated sealed value was accepted")
	}
}

func TestSweep(t *testing.T) {
	db, _ := openTest(t)
	now := t0
	old, recent, future, oldUsed := flow.NewCode(), flow.NewCode(), flow.NewCode(), flow.NewCode()
	putCode(t, db, oldUsed, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: now.Add(-72 * time.Hour), State: flow.CodeUsed})
	putCode(t, db, old, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: now.Add(-48 * time.Hour)})
	putCode(t, db, recent, flow.Code{Login: "bob", Purpose: flow.PurposeRecovery, Deadline: now.Add(-time.Hour)})
	putCode(t, db, future, flow.Code{Login: "carol", Purpose: flow.PurposeInvite, Deadline: now.Add(time.Hour)})

	n, err := db.Sweep(now, 24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	mustView(t, db, func(tx flow.Tx) error {
		for _, c := range []string{old, oldUsed} {
			if _, err := tx.Code(c); !errors.Is(err, flow.ErrNotFound) {
				t.Errorf("swept code still found: %v", err)
			}
		}
		for _, c := range []string{recent, future} {
			if _, err := tx.Code(c); err != nil {
				t.Errorf("kept code: %v", err)
			}
		}
		if _, err := tx.LiveCode("alice", flow.PurposeRecovery); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("LiveCode of a swept code: %v", err)
		}
		return nil
	})
	db.bolt.View(func(btx *bolt.Tx) error {
		if n := btx.Bucket(bucketCodeIdx).Stats().KeyN; n != 2 {
			t.Errorf("codeidx has %d entries after Sweep, want 2", n)
		}
		return nil
	})
	if n, err := db.Sweep(now, 24*time.Hour); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v", n, err)
	}
	if n, err := db.Sweep(now.Add(48*time.Hour), 0); err != nil || n != 2 {
		t.Errorf("late Sweep = %d, %v", n, err)
	}
}

// QueuedMails finds a login's queued mails only; PutMail changes a
// mail's state and takes it out of the queue and the index.
func TestQueuedMailsAndPutMail(t *testing.T) {
	db, _ := openTest(t)
	now := time.Now()
	a1 := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: "AAAA-AAAA-AAAA-AAA1", Created: now})
	b1 := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "b@example.net", Login: "alice.b", Created: now})
	a2 := enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "a@example.net", Login: "alice", Created: now})
	queued := func(login string) []flow.Mail {
		var ms []flow.Mail
		mustView(t, db, func(tx flow.Tx) error { var err error; ms, err = tx.QueuedMails(login); return err })
		return ms
	}
	if ms := queued("alice"); !sameIDs(ms, a1, a2) || ms[0].Code != "AAAA-AAAA-AAAA-AAA1" {
		t.Fatalf("queued alice: %+v", ms)
	}
	m := queued("alice")[0]
	m.State, m.Code, m.LastError = flow.MailCancelled, "", "cancelled"
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.PutMail(m) })
	if ms := queued("alice"); !sameIDs(ms, a2) {
		t.Errorf("queued alice after cancel: %v", ids(ms))
	}
	if ms := queued("alice.b"); !sameIDs(ms, b1) {
		t.Errorf("queued alice.b: %v", ids(ms))
	}
	if due, err := db.Due(now, 0); err != nil || !sameIDs(due, b1, a2) {
		t.Errorf("due: %v, %v", ids(due), err)
	}
	if err := db.Delivered(a2, now); err != nil {
		t.Fatal(err)
	}
	if ms := queued("alice"); len(ms) != 0 {
		t.Errorf("queued alice after delivery: %v", ids(ms))
	}
	if ms := mails(t, db, "alice"); !sameIDs(ms, a1, a2) || ms[0].State != flow.MailCancelled || ms[1].State != flow.MailSent {
		t.Errorf("all mails of alice: %+v", ms)
	}
	if err := db.Update(func(tx flow.Tx) error { return tx.PutMail(flow.Mail{ID: 999, Login: "alice"}) }); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("PutMail of an unknown ID: %v", err)
	}
}

// Mails that left the queue are deleted once past the retention, with
// their index entries; queued and recent ones stay; the audit keeps the
// facts.
func TestPrune(t *testing.T) {
	db, _ := openTest(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	old := now.Add(-40 * 24 * time.Hour)
	sent := enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "a@example.net", Login: "alice", Created: old})
	mustUpdate(t, db, func(tx flow.Tx) error {
		return tx.PutCode("AAAA-AAAA-AAAA-AAA1", flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: old.Add(time.Hour)})
	})
	cancelled := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: "AAAA-AAAA-AAAA-AAA1", Created: old})
	queued := enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "b@example.net", Login: "bob", Created: old})
	recent := enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "a@example.net", Login: "alice", Created: now.Add(-time.Hour)})
	if err := db.Delivered(sent, old); err != nil {
		t.Fatal(err)
	}
	if err := db.Delivered(recent, now); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx flow.Tx) error {
		ms, err := tx.QueuedMails("alice")
		if err != nil || len(ms) != 1 {
			return fmt.Errorf("queued: %v, %v", ms, err)
		}
		ms[0].State, ms[0].Code = flow.MailCancelled, ""
		if err := tx.PutMail(ms[0]); err != nil {
			return err
		}
		return tx.Audit(flow.Event{Time: old, Actor: "system", Action: "mail-cancelled", Login: "alice"}) // as flow does
	})
	if ms := mails(t, db, "alice"); !sameIDs(ms, sent, cancelled, recent) || ms[1].State != flow.MailCancelled {
		t.Fatalf("before: %+v", ms)
	}
	n, err := db.Prune(now, 30*24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if ms := mails(t, db, "alice"); !sameIDs(ms, recent) {
		t.Errorf("alice after prune: %v", ids(ms))
	}
	if ms := mails(t, db, "bob"); !sameIDs(ms, queued) {
		t.Errorf("bob after prune: %v", ids(ms))
	}
	if err := db.bolt.View(func(btx *bolt.Tx) error {
		if n := btx.Bucket(bucketOutbox).Stats().KeyN; n != 2 {
			t.Errorf("%d outbox entries left, want 2", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustView(t, db, func(ftx flow.Tx) error {
		var facts []string
		err := ftx.LoginEvents("alice", func(e flow.Event) error { facts = append(facts, e.Action); return nil })
		if !slices.Contains(facts, "mail-sent") || !slices.Contains(facts, "mail-cancelled") {
			t.Errorf("the audit lost the facts: %v", facts)
		}
		return err
	})
	if n, err := db.Prune(now, 30*24*time.Hour); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v", n, err)
	}
}

// QueuedMails reads the queued mails only: a login's past mails, however
// many (here unreadable), are not unsealed.
func TestQueuedMailsSkipPastOnes(t *testing.T) {
	db, _ := openTest(t)
	now := time.Now()
	var past []uint64
	for range 50 {
		past = append(past, enqueue(t, db, flow.Mail{Kind: flow.MailActivated, To: "a@example.net", Login: "alice", Created: now}))
	}
	for _, id := range past {
		if err := db.Delivered(id, now); err != nil {
			t.Fatal(err)
		}
	}
	// The past mails become unreadable: any read of them fails.
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		for _, id := range past {
			if err := btx.Bucket(bucketOutbox).Put(u64(id), []byte("garbage")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, db, flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: "AAAA-AAAA-AAAA-AAA1", Created: now})
	var ms []flow.Mail
	mustView(t, db, func(tx flow.Tx) error { var err error; ms, err = tx.QueuedMails("alice"); return err })
	if !sameIDs(ms, id) {
		t.Errorf("queued: %v", ids(ms))
	}
}

// A database written before the queueidx index (queue values empty) gets
// its queued mails indexed at Open.
func TestQueuedMailsIndexedAtOpen(t *testing.T) {
	db, path := openTest(t)
	now := time.Now()
	var id uint64
	mustUpdate(t, db, func(tx flow.Tx) error {
		if err := tx.PutCode("AAAA-AAAA-AAAA-AAA1", flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: now.Add(time.Hour)}); err != nil {
			return err
		}
		var err error
		id, err = tx.Enqueue(flow.Mail{Kind: flow.MailRecovery, To: "a@example.net", Login: "alice", Code: "AAAA-AAAA-AAAA-AAA1", Created: now})
		return err
	})
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		if err := btx.DeleteBucket(bucketQueueIdx); err != nil {
			return err
		}
		return btx.Bucket(bucketQueue).Put(u64(id), nil) // as the previous version wrote it
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ms []flow.Mail
	mustView(t, db, func(tx flow.Tx) error { var err error; ms, err = tx.QueuedMails("alice"); return err })
	if !sameIDs(ms, id) {
		t.Errorf("a mail queued before the index: %v", ids(ms))
	}
}
