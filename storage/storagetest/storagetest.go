// Package storagetest is the contract every storage engine keeps (bbolt,
// etcd), written once as a test suite: each engine's tests call Run with a
// constructor of fresh, empty stores.
package storagetest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"activated/flow"
	"activated/storage"
)

// Open returns a fresh, empty store, and a function that opens another
// handle on the same data, as a second node would (bbolt, which one
// process holds, returns the same handle). The test closes both.
type Open func(t *testing.T) (db *storage.DB, node func() *storage.DB)

// Run runs the whole contract against stores made by open.
func Run(t *testing.T, open Open) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"Dossiers", testDossiers},
		{"DossierWalk", testDossierWalk},
		{"Rollback", testRollback},
		{"Codes", testCodes},
		{"EndCodes", testEndCodes},
		{"Outbox", testOutbox},
		{"OutboxFinish", testOutboxFinish},
		{"Audit", testAudit},
		{"Sweep", testSweep},
		{"Prune", testPrune},
		{"Batch", testBatch},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"SharedSecret", testSharedSecret},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

// now is a fixed instant in UTC, as JSON gives it back.
var now = time.Date(2026, 9, 1, 8, 30, 0, 0, time.UTC)

func update(t *testing.T, db *storage.DB, fn func(flow.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, db *storage.DB, fn func(flow.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func dossier(login string) flow.Dossier {
	return flow.Dossier{Login: login, DN: "uid=" + login + ",ou=people,dc=example,dc=org",
		RecoveryMails: []string{login + "@example.net"}, Deadline: now.Add(24 * time.Hour), Created: now, Updated: now}
}

func testDossiers(t *testing.T, open Open) {
	db, _ := open(t)
	view(t, db, func(tx flow.Tx) error {
		if _, err := tx.Dossier("alice"); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("missing dossier: %v, want ErrNotFound", err)
		}
		return nil
	})
	want := dossier("alice")
	want.Lang, want.Opened, want.CharterVersion = "en", now, "sha256:0123"
	update(t, db, func(tx flow.Tx) error {
		if err := tx.PutDossier(want); err != nil {
			return err
		}
		got, err := tx.Dossier("alice") // read your own write
		if err != nil || got.Lang != "en" {
			t.Errorf("in the same transaction: %+v, %v", got, err)
		}
		return nil
	})
	view(t, db, func(tx flow.Tx) error {
		got, err := tx.Dossier("alice")
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
		return nil
	})
	for _, bad := range []string{"", "a\x00b"} {
		if err := db.Update(func(tx flow.Tx) error { return tx.PutDossier(dossier(bad)) }); err == nil {
			t.Errorf("PutDossier(%q) accepted", bad)
		}
	}
}

// testDossierWalk walks more dossiers than one read of etcd returns, one
// written by the walking transaction itself.
func testDossierWalk(t *testing.T, open Open) {
	db, _ := open(t)
	var logins []string
	for i := range 130 {
		logins = append(logins, fmt.Sprintf("u%03d", i))
	}
	for i := 0; i < len(logins); i += 65 {
		update(t, db, func(tx flow.Tx) error {
			for _, l := range logins[i : i+65] {
				if l == "u110" {
					continue
				}
				if err := tx.PutDossier(dossier(l)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	update(t, db, func(tx flow.Tx) error {
		if err := tx.PutDossier(dossier("u110")); err != nil {
			return err
		}
		var got []string
		err := tx.Dossiers(func(d flow.Dossier) error {
			got = append(got, d.Login)
			return nil
		})
		if strings.Join(got, " ") != strings.Join(logins, " ") {
			t.Errorf("walk: %d logins, want %d in order", len(got), len(logins))
		}
		return err
	})
	stop := errors.New("stop")
	n := 0
	err := db.View(func(tx flow.Tx) error {
		return tx.Dossiers(func(flow.Dossier) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		})
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("walk stopped by fn: %v after %d, want stop after 3", err, n)
	}
}

// testRollback: an Update whose fn fails leaves nothing behind.
func testRollback(t *testing.T, open Open) {
	db, _ := open(t)
	boom := errors.New("boom")
	err := db.Update(func(tx flow.Tx) error {
		if err := tx.PutDossier(dossier("alice")); err != nil {
			return err
		}
		if err := tx.PutCode("ABCD-EFGH-JKMN-PQRS", flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: now}); err != nil {
			return err
		}
		if _, err := tx.Enqueue(flow.Mail{Kind: flow.MailInvitation, To: "a@example.net", Login: "alice"}); err != nil {
			return err
		}
		if err := tx.Audit(flow.Event{Action: "invite", Login: "alice"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	view(t, db, func(tx flow.Tx) error {
		if _, err := tx.Dossier("alice"); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("dossier after rollback: %v", err)
		}
		if _, err := tx.Code("ABCD-EFGH-JKMN-PQRS"); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("code after rollback: %v", err)
		}
		if m, _ := tx.Mails("alice"); len(m) != 0 {
			t.Errorf("mails after rollback: %v", m)
		}
		return tx.Events(0, func(e flow.Event) error {
			t.Errorf("event after rollback: %+v", e)
			return nil
		})
	})
}

func testCodes(t *testing.T, open Open) {
	db, _ := open(t)
	first, second, recovery := flow.NewCode(), flow.NewCode(), flow.NewCode()
	update(t, db, func(tx flow.Tx) error {
		return tx.PutCode(first, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: now, Created: now})
	})
	view(t, db, func(tx flow.Tx) error {
		// Another spelling of the same code finds it.
		c, err := tx.Code(strings.ToLower(first[:4] + "-" + first[4:]))
		if err != nil || c.Login != "alice" || c.State != flow.CodeLive || !c.Deadline.Equal(now) {
			t.Errorf("Code: %+v, %v", c, err)
		}
		for _, bad := range []string{flow.NewCode(), "not a code", ""} {
			if _, err := tx.Code(bad); !errors.Is(err, flow.ErrNotFound) {
				t.Errorf("Code(%q): %v, want ErrNotFound", bad, err)
			}
		}
		if c, err := tx.LiveCode("alice", flow.PurposeInvite); err != nil || c.Login != "alice" {
			t.Errorf("LiveCode: %+v, %v", c, err)
		}
		if _, err := tx.LiveCode("alice", flow.PurposeRecovery); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("LiveCode of another purpose: %v", err)
		}
		return nil
	})
	// A second live code of the same purpose supersedes the first; another
	// purpose is left alone.
	update(t, db, func(tx flow.Tx) error {
		if err := tx.PutCode(recovery, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: now}); err != nil {
			return err
		}
		return tx.PutCode(second, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: now})
	})
	view(t, db, func(tx flow.Tx) error {
		wantState(t, tx, first, flow.CodeSuperseded)
		wantState(t, tx, second, flow.CodeLive)
		wantState(t, tx, recovery, flow.CodeLive)
		if c, err := tx.LiveCode("alice", flow.PurposeInvite); err != nil || c.State != flow.CodeLive {
			t.Errorf("LiveCode after supersede: %+v, %v", c, err)
		}
		return nil
	})
	// A code is bound to its login and purpose.
	if err := db.Update(func(tx flow.Tx) error {
		return tx.PutCode(second, flow.Code{Login: "bob", Purpose: flow.PurposeInvite, Deadline: now})
	}); err == nil {
		t.Error("a code of alice rebound to bob")
	}
	update(t, db, func(tx flow.Tx) error { return tx.SetCodeState(second, flow.CodeUsed) })
	view(t, db, func(tx flow.Tx) error {
		wantState(t, tx, second, flow.CodeUsed)
		if _, err := tx.LiveCode("alice", flow.PurposeInvite); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("LiveCode after use: %v", err)
		}
		return nil
	})
	if err := db.Update(func(tx flow.Tx) error { return tx.SetCodeState(flow.NewCode(), flow.CodeUsed) }); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("SetCodeState of an unknown code: %v", err)
	}
}

func wantState(t *testing.T, tx flow.Tx, code string, st flow.CodeState) {
	t.Helper()
	c, err := tx.Code(code)
	if err != nil || c.State != st {
		t.Errorf("code state %q (%v), want %q", c.State, err, st)
	}
}

func testEndCodes(t *testing.T, open Open) {
	db, _ := open(t)
	codes := map[flow.Purpose]string{}
	update(t, db, func(tx flow.Tx) error {
		for _, p := range []flow.Purpose{flow.PurposeInvite, flow.PurposeRecovery, flow.PurposeRedirect} {
			codes[p] = flow.NewCode()
			if err := tx.PutCode(codes[p], flow.Code{Login: "alice", Purpose: p, Deadline: now}); err != nil {
				return err
			}
		}
		return tx.PutCode(flow.NewCode(), flow.Code{Login: "alice2", Purpose: flow.PurposeInvite, Deadline: now})
	})
	update(t, db, func(tx flow.Tx) error { return tx.EndCodes("alice", flow.CodeUsed, flow.PurposeRedirect) })
	update(t, db, func(tx flow.Tx) error { return tx.EndCodes("alice", flow.CodeRevoked) })
	view(t, db, func(tx flow.Tx) error {
		wantState(t, tx, codes[flow.PurposeRedirect], flow.CodeUsed)
		wantState(t, tx, codes[flow.PurposeInvite], flow.CodeRevoked)
		wantState(t, tx, codes[flow.PurposeRecovery], flow.CodeRevoked)
		if _, err := tx.LiveCode("alice2", flow.PurposeInvite); err != nil {
			t.Errorf("alice2's code ended with alice's: %v", err)
		}
		return nil
	})
	if err := db.Update(func(tx flow.Tx) error { return tx.EndCodes("alice2", flow.CodeLive) }); err == nil {
		t.Error("EndCodes to the live state accepted")
	}
}

func mail(login string, kind flow.MailKind) flow.Mail {
	return flow.Mail{Kind: kind, To: login + "@example.net", Lang: "fr", Login: login, Code: flow.NewCode(), Created: now}
}

func testOutbox(t *testing.T, open Open) {
	db, _ := open(t)
	var ids []uint64
	update(t, db, func(tx flow.Tx) error {
		for _, m := range []flow.Mail{mail("bob", flow.MailInvitation), mail("bob2", flow.MailInvitation), mail("bob", flow.MailRecovery)} {
			id, err := tx.Enqueue(m)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if ms, _ := tx.Mails("bob"); len(ms) != 2 {
			t.Errorf("Mails in the enqueuing transaction: %d, want 2", len(ms))
		}
		return nil
	})
	select {
	case <-db.Enqueued():
	default:
		t.Error("Enqueued not signalled after a commit that enqueued")
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Errorf("IDs not increasing: %v", ids)
	}
	view(t, db, func(tx flow.Tx) error {
		ms, err := tx.Mails("bob")
		if err != nil {
			return err
		}
		if len(ms) != 2 || ms[0].ID != ids[0] || ms[1].ID != ids[2] || ms[1].Kind != flow.MailRecovery ||
			ms[0].State != flow.MailQueued || ms[0].Code == "" {
			t.Errorf("Mails(bob) = %+v", ms)
		}
		return nil
	})
	due, err := db.Due(now, 0)
	if err != nil || len(due) != 3 {
		t.Fatalf("Due: %d mails, %v; want 3", len(due), err)
	}
	if due, _ := db.Due(now, 2); len(due) != 2 || due[0].ID != ids[0] {
		t.Errorf("Due with limit 2: %+v", due)
	}
	if err := db.Retry(ids[0], now.Add(time.Minute), "421 try later"); err != nil {
		t.Fatal(err)
	}
	due, _ = db.Due(now, 0)
	if len(due) != 2 || due[0].ID != ids[1] {
		t.Errorf("Due after a retry set later: %+v", due)
	}
	due, _ = db.Due(now.Add(time.Minute), 0)
	if len(due) != 3 || due[0].Attempts != 1 || due[0].LastError != "421 try later" {
		t.Errorf("Due at the retry time: %+v", due)
	}
}

func testOutboxFinish(t *testing.T, open Open) {
	db, _ := open(t)
	var sent, failed uint64
	update(t, db, func(tx flow.Tx) error {
		var err error
		if sent, err = tx.Enqueue(mail("carol", flow.MailInvitation)); err != nil {
			return err
		}
		failed, err = tx.Enqueue(mail("carol", flow.MailActivated))
		return err
	})
	if err := db.Delivered(sent, now); err != nil {
		t.Fatal(err)
	}
	if err := db.GiveUp(failed, now, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delivered(sent, now); err == nil {
		t.Error("a sent mail marked delivered again")
	}
	if due, _ := db.Due(now.Add(time.Hour), 0); len(due) != 0 {
		t.Errorf("finished mails still due: %+v", due)
	}
	view(t, db, func(tx flow.Tx) error {
		ms, err := tx.Mails("carol")
		if err != nil {
			return err
		}
		if len(ms) != 2 || ms[0].State != flow.MailSent || ms[0].Code != "" || !ms[0].Sent.Equal(now) || ms[0].Attempts != 1 ||
			ms[1].State != flow.MailFailed || ms[1].Code != "" || ms[1].LastError != "550 no such user" {
			t.Errorf("after delivery and give-up: %+v", ms)
		}
		var actions []string
		err = tx.LoginEvents("carol", func(e flow.Event) error {
			actions = append(actions, e.Action)
			return nil
		})
		if got := strings.Join(actions, " "); got != "mail-sent mail-failed" {
			t.Errorf("audit of carol: %q", got)
		}
		return err
	})
}

func testAudit(t *testing.T, open Open) {
	db, _ := open(t)
	// More events than one read of etcd returns.
	for i := range 2 {
		update(t, db, func(tx flow.Tx) error {
			for j := range 55 {
				login := "dave"
				if j%2 == 1 {
					login = "dave2"
				}
				if err := tx.Audit(flow.Event{Time: now, Actor: "user", Action: fmt.Sprintf("a%03d", i*55+j), Login: login}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var all []flow.Event
	view(t, db, func(tx flow.Tx) error {
		return tx.Events(0, func(e flow.Event) error { all = append(all, e); return nil })
	})
	if len(all) != 110 {
		t.Fatalf("%d events, want 110", len(all))
	}
	for i, e := range all {
		if e.Action != fmt.Sprintf("a%03d", i) || (i > 0 && e.Seq <= all[i-1].Seq) || !e.Time.Equal(now) {
			t.Fatalf("event %d: %+v (previous seq %d)", i, e, all[max(i-1, 0)].Seq)
		}
	}
	var after []string
	view(t, db, func(tx flow.Tx) error {
		if err := tx.Events(all[107].Seq, func(e flow.Event) error { after = append(after, e.Action); return nil }); err != nil {
			return err
		}
		return tx.Events(math.MaxUint64, func(e flow.Event) error { t.Errorf("event after MaxUint64: %+v", e); return nil })
	})
	if strings.Join(after, " ") != "a108 a109" {
		t.Errorf("Events(after the 108th) = %v", after)
	}
	var mine []string
	view(t, db, func(tx flow.Tx) error {
		return tx.LoginEvents("dave", func(e flow.Event) error { mine = append(mine, e.Action); return nil })
	})
	if len(mine) != 56 || mine[0] != "a000" || mine[55] != "a109" {
		t.Errorf("LoginEvents(dave): %d events, first %v", len(mine), mine[:min(len(mine), 2)])
	}
	// An explicit Seq is kept, must be new, and later events follow it.
	last := all[109].Seq
	update(t, db, func(tx flow.Tx) error {
		return tx.Audit(flow.Event{Seq: last + 10, Time: now, Action: "import", Login: "dave"})
	})
	if err := db.Update(func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: last + 10, Action: "again", Login: "dave"}) }); err == nil {
		t.Error("an existing Seq was overwritten")
	}
	update(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Action: "next", Login: "dave"}) })
	var tail []flow.Event
	view(t, db, func(tx flow.Tx) error {
		return tx.Events(last, func(e flow.Event) error { tail = append(tail, e); return nil })
	})
	if len(tail) != 2 || tail[0].Seq != last+10 || !tail[0].Time.Equal(now) || tail[1].Seq <= last+10 {
		t.Errorf("events after an explicit Seq: %+v", tail)
	}
}

func testSweep(t *testing.T, open Open) {
	db, _ := open(t)
	old, fresh := map[string]bool{}, flow.NewCode()
	// More than one sweeping transaction deletes.
	for i := range 2 {
		update(t, db, func(tx flow.Tx) error {
			for j := range 30 {
				c := flow.NewCode()
				old[c] = true
				if err := tx.PutCode(c, flow.Code{Login: fmt.Sprintf("e%03d", i*30+j), Purpose: flow.PurposeInvite, Deadline: now.Add(-8 * 24 * time.Hour)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	update(t, db, func(tx flow.Tx) error {
		return tx.PutCode(fresh, flow.Code{Login: "e000", Purpose: flow.PurposeRecovery, Deadline: now})
	})
	n, err := db.Sweep(now, 7*24*time.Hour)
	if err != nil || n != len(old) {
		t.Fatalf("Sweep: %d, %v; want %d", n, err, len(old))
	}
	view(t, db, func(tx flow.Tx) error {
		checked := 0
		for c := range old { // a sample: each read is a round trip on etcd
			if _, err := tx.Code(c); !errors.Is(err, flow.ErrNotFound) {
				t.Fatalf("swept code still there: %v", err)
			}
			if checked++; checked == 5 {
				break
			}
		}
		if _, err := tx.LiveCode("e001", flow.PurposeInvite); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("index of a swept code: %v", err)
		}
		wantState(t, tx, fresh, flow.CodeLive)
		return nil
	})
	if n, err := db.Sweep(now, 7*24*time.Hour); n != 0 || err != nil {
		t.Errorf("second sweep: %d, %v", n, err)
	}
}

// testConcurrentUpdates: read-modify-write transactions from several
// goroutines (and nodes) lose no write.
func testConcurrentUpdates(t *testing.T, open Open) {
	db, node := open(t)
	other := node()
	update(t, db, func(tx flow.Tx) error { return tx.PutDossier(dossier("frank")) })
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Go(func() {
			errs <- h.Update(func(tx flow.Tx) error {
				d, err := tx.Dossier("frank")
				if err != nil {
					return err
				}
				d.RecoveryMails = append(d.RecoveryMails, fmt.Sprintf("m%d@example.net", i))
				if err := tx.PutDossier(d); err != nil {
					return err
				}
				return tx.Audit(flow.Event{Action: "add", Login: "frank"})
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	view(t, db, func(tx flow.Tx) error {
		d, err := tx.Dossier("frank")
		if err != nil {
			return err
		}
		if len(d.RecoveryMails) != n+1 {
			t.Errorf("%d addresses, want %d: a write was lost", len(d.RecoveryMails), n+1)
		}
		seen := map[uint64]bool{}
		err = tx.LoginEvents("frank", func(e flow.Event) error {
			if seen[e.Seq] {
				t.Errorf("seq %d given twice", e.Seq)
			}
			seen[e.Seq] = true
			return nil
		})
		if len(seen) != n {
			t.Errorf("%d events, want %d", len(seen), n)
		}
		return err
	})
}

// testSharedSecret: a code stored through one node is found through
// another, and its mails read there.
func testSharedSecret(t *testing.T, open Open) {
	db, node := open(t)
	code := flow.NewCode()
	update(t, db, func(tx flow.Tx) error {
		if err := tx.PutCode(code, flow.Code{Login: "gina", Purpose: flow.PurposeInvite, Deadline: now}); err != nil {
			return err
		}
		m := mail("gina", flow.MailInvitation)
		m.Code = code
		_, err := tx.Enqueue(m)
		return err
	})
	view(t, node(), func(tx flow.Tx) error {
		if c, err := tx.Code(code); err != nil || c.Login != "gina" {
			t.Errorf("code through another node: %+v, %v", c, err)
		}
		if ms, err := tx.Mails("gina"); err != nil || len(ms) != 1 || ms[0].Code != code {
			t.Errorf("mail through another node: %+v, %v", ms, err)
		}
		return nil
	})
}

// testPrune: mails that left the queue are deleted once old; queued ones
// and recent ones stay.
func testPrune(t *testing.T, open Open) {
	db, _ := open(t)
	var ids []uint64
	update(t, db, func(tx flow.Tx) error {
		for i := range 4 {
			m := mail("hana", flow.MailInvitation)
			m.Created = now.Add(time.Duration(i-3) * 24 * time.Hour) // 3, 2, 1 and 0 days old
			id, err := tx.Enqueue(m)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	for _, id := range []uint64{ids[0], ids[2], ids[3]} {
		if err := db.Delivered(id, now); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.Prune(now, 36*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Prune: %d, %v; want 1 (the sent mail 3 days old)", n, err)
	}
	view(t, db, func(tx flow.Tx) error {
		ms, err := tx.Mails("hana")
		if err != nil {
			return err
		}
		if len(ms) != 3 || ms[0].ID != ids[1] || ms[0].State != flow.MailQueued {
			t.Errorf("after the prune: %+v", ms)
		}
		return nil
	})
}

// testBatch: Batch is an Update for concurrent callers: every fn's
// writes land.
func testBatch(t *testing.T, open Open) {
	db, _ := open(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := db.Batch(func(tx flow.Tx) error { return tx.Audit(flow.Event{Action: "begin", Login: fmt.Sprintf("i%d", i)}) }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := 0
	view(t, db, func(tx flow.Tx) error { return tx.Events(0, func(flow.Event) error { n++; return nil }) })
	if n != 8 {
		t.Errorf("%d events after 8 batched writes", n)
	}
}
