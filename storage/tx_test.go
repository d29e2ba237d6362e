package storage

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"activated/flow"
)

var t0 = time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC)

func TestDossiers(t *testing.T) {
	db, _ := openTest(t)
	want := flow.Dossier{
		Login: "bob", DN: "uid=bob,ou=people,dc=example,dc=org", GivenName: "Bob", Surname: "Martin",
		RecoveryMails: []string{"bob@example.net"}, Affiliations: []string{"staff"}, Lang: "fr",
		Deadline: t0.Add(24 * time.Hour), Opened: t0, CharterVersion: "2030-01", CharterAcceptedAt: t0,
		DirectoryChosen: true, PublicDirectory: true, Redirect: "b@example.com", KeepCopy: true,
		Created: t0, Updated: t0,
	}
	mustUpdate(t, db, func(tx flow.Tx) error {
		for _, l := range []string{"carol", "alice"} {
			if err := tx.PutDossier(flow.Dossier{Login: l, Created: t0}); err != nil {
				return err
			}
		}
		return tx.PutDossier(want)
	})
	mustView(t, db, func(tx flow.Tx) error {
		got, err := tx.Dossier("bob")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Dossier = %+v, %v; want %+v", got, err, want)
		}
		if _, err := tx.Dossier("nobody"); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("missing dossier: %v", err)
		}
		var order []string
		if err := tx.Dossiers(func(d flow.Dossier) error { order = append(order, d.Login); return nil }); err != nil {
			t.Error(err)
		}
		if strings.Join(order, ",") != "alice,bob,carol" {
			t.Errorf("Dossiers order %v", order)
		}
		stop := errors.New("stop")
		order = nil
		err = tx.Dossiers(func(d flow.Dossier) error { order = append(order, d.Login); return stop })
		if err != stop || len(order) != 1 {
			t.Errorf("Dossiers with fn error: %v after %v", err, order)
		}
		return nil
	})
	// The copy handed out is independent of the database.
	var got flow.Dossier
	mustView(t, db, func(tx flow.Tx) error { var err error; got, err = tx.Dossier("bob"); return err })
	got.RecoveryMails[0] = "changed"
	mustView(t, db, func(tx flow.Tx) error {
		d, _ := tx.Dossier("bob")
		if d.RecoveryMails[0] != "bob@example.net" {
			t.Errorf("stored dossier changed through a copy")
		}
		return nil
	})
	for _, bad := range []string{"", "a\x00b"} {
		if err := db.Update(func(tx flow.Tx) error { return tx.PutDossier(flow.Dossier{Login: bad}) }); err == nil {
			t.Errorf("PutDossier(%q) succeeded", bad)
		}
	}
}

func putCode(t *testing.T, db *DB, code string, c flow.Code) {
	t.Helper()
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.PutCode(code, c) })
}

func codeState(t *testing.T, db *DB, code string) flow.CodeState {
	t.Helper()
	var c flow.Code
	mustView(t, db, func(tx flow.Tx) error { var err error; c, err = tx.Code(code); return err })
	return c.State
}

func liveCode(db *DB, login string, p flow.Purpose) (c flow.Code, err error) {
	err = db.View(func(tx flow.Tx) error { c, err = tx.LiveCode(login, p); return err })
	return c, err
}

func TestCodes(t *testing.T) {
	db, _ := openTest(t)
	code := flow.NewCode()
	want := flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: t0, Created: t0, Target: "a@example.net"}
	putCode(t, db, code, want)
	want.State = flow.CodeLive
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	mustView(t, db, func(tx flow.Tx) error {
		for _, form := range []string{code, typed} {
			got, err := tx.Code(form)
			if err != nil || got != want {
				t.Errorf("Code(%q) = %+v, %v; want %+v", form, got, err, want)
			}
		}
		for _, bad := range []string{"", "not a code", flow.NewCode()} {
			if _, err := tx.Code(bad); !errors.Is(err, flow.ErrNotFound) {
				t.Errorf("Code(%q): %v, want ErrNotFound", bad, err)
			}
		}
		got, err := tx.LiveCode("alice", flow.PurposeRecovery)
		if err != nil || got != want {
			t.Errorf("LiveCode = %+v, %v", got, err)
		}
		if _, err := tx.LiveCode("alice", flow.PurposeInvite); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("LiveCode of another purpose: %v", err)
		}
		return nil
	})

	for _, c := range []struct {
		code string
		rec  flow.Code
	}{
		{"garbage", flow.Code{Login: "alice", Purpose: flow.PurposeRecovery}},
		{flow.NewCode(), flow.Code{Login: "", Purpose: flow.PurposeRecovery}},
		{code, flow.Code{Login: "mallory", Purpose: flow.PurposeRecovery}},
		{code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite}},
	} {
		if err := db.Update(func(tx flow.Tx) error { return tx.PutCode(c.code, c.rec) }); err == nil {
			t.Errorf("PutCode(%q, %+v) succeeded", c.code, c.rec)
		}
	}
	// Putting the same code again (same login and purpose) is an update.
	putCode(t, db, typed, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Deadline: t0.Add(time.Hour)})
	if got, err := liveCode(db, "alice", flow.PurposeRecovery); err != nil || !got.Deadline.Equal(t0.Add(time.Hour)) {
		t.Errorf("LiveCode after re-put = %+v, %v", got, err)
	}

	if err := db.Update(func(tx flow.Tx) error { return tx.SetCodeState(code, flow.CodeUsed) }); err != nil {
		t.Fatal(err)
	}
	if st := codeState(t, db, code); st != flow.CodeUsed {
		t.Errorf("state after SetCodeState = %s", st)
	}
	if _, err := liveCode(db, "alice", flow.PurposeRecovery); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("LiveCode of a used code: %v", err)
	}
	for _, bad := range []string{"garbage", flow.NewCode()} {
		err := db.Update(func(tx flow.Tx) error { return tx.SetCodeState(bad, flow.CodeUsed) })
		if !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("SetCodeState(%q): %v", bad, err)
		}
	}
}

func TestSupersede(t *testing.T) {
	db, _ := openTest(t)
	first, second, other := flow.NewCode(), flow.NewCode(), flow.NewCode()
	putCode(t, db, first, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Created: t0})
	putCode(t, db, other, flow.Code{Login: "alice", Purpose: flow.PurposeRedirect, Created: t0})
	putCode(t, db, second, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, Created: t0.Add(time.Minute)})
	if st := codeState(t, db, first); st != flow.CodeSuperseded {
		t.Errorf("first code: %s, want superseded", st)
	}
	if st := codeState(t, db, second); st != flow.CodeLive {
		t.Errorf("second code: %s, want live", st)
	}
	if st := codeState(t, db, other); st != flow.CodeLive {
		t.Errorf("code of another purpose: %s, want live", st)
	}
	got, err := liveCode(db, "alice", flow.PurposeRecovery)
	if err != nil || !got.Created.Equal(t0.Add(time.Minute)) {
		t.Errorf("LiveCode = %+v, %v; want the second code", got, err)
	}

	// Making the first one live again supersedes the second.
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.SetCodeState(first, flow.CodeLive) })
	if st := codeState(t, db, second); st != flow.CodeSuperseded {
		t.Errorf("second code after revival of the first: %s", st)
	}
	if got, err := liveCode(db, "alice", flow.PurposeRecovery); err != nil || !got.Created.Equal(t0) {
		t.Errorf("LiveCode = %+v, %v; want the first code", got, err)
	}

	// A code stored in a state that is not live does not touch the live one.
	putCode(t, db, flow.NewCode(), flow.Code{Login: "alice", Purpose: flow.PurposeRecovery, State: flow.CodeUsed})
	if st := codeState(t, db, first); st != flow.CodeLive {
		t.Errorf("live code after storing a used one: %s", st)
	}
}

func TestEndCodes(t *testing.T) {
	db, _ := openTest(t)
	inv, rec, red, bobs := flow.NewCode(), flow.NewCode(), flow.NewCode(), flow.NewCode()
	putCode(t, db, inv, flow.Code{Login: "alice", Purpose: flow.PurposeInvite})
	putCode(t, db, rec, flow.Code{Login: "alice", Purpose: flow.PurposeRecovery})
	putCode(t, db, red, flow.Code{Login: "alice", Purpose: flow.PurposeRedirect})
	putCode(t, db, bobs, flow.Code{Login: "alice.b", Purpose: flow.PurposeInvite})

	mustUpdate(t, db, func(tx flow.Tx) error {
		return tx.EndCodes("alice", flow.CodeUsed, flow.PurposeRecovery, flow.PurposeInvite)
	})
	for code, want := range map[string]flow.CodeState{inv: flow.CodeUsed, rec: flow.CodeUsed, red: flow.CodeLive, bobs: flow.CodeLive} {
		if st := codeState(t, db, code); st != want {
			t.Errorf("after EndCodes(invite, recovery): %s, want %s", st, want)
		}
	}
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.EndCodes("alice", flow.CodeRevoked) })
	for code, want := range map[string]flow.CodeState{inv: flow.CodeUsed, rec: flow.CodeUsed, red: flow.CodeRevoked, bobs: flow.CodeLive} {
		if st := codeState(t, db, code); st != want {
			t.Errorf("after EndCodes(all): %s, want %s", st, want)
		}
	}
	for _, p := range []flow.Purpose{flow.PurposeInvite, flow.PurposeRecovery, flow.PurposeRedirect} {
		if _, err := liveCode(db, "alice", p); !errors.Is(err, flow.ErrNotFound) {
			t.Errorf("LiveCode(alice, %s) after EndCodes: %v", p, err)
		}
	}
	if _, err := liveCode(db, "alice.b", flow.PurposeInvite); err != nil {
		t.Errorf("another login's code was ended: %v", err)
	}
	// The index holds only alice.b's entry now.
	db.bolt.View(func(btx *bolt.Tx) error {
		if n := btx.Bucket(bucketCodeIdx).Stats().KeyN; n != 1 {
			t.Errorf("codeidx has %d entries, want 1", n)
		}
		return nil
	})
	for _, bad := range []func(flow.Tx) error{
		func(tx flow.Tx) error { return tx.EndCodes("alice", flow.CodeLive) },
		func(tx flow.Tx) error { return tx.EndCodes("", flow.CodeUsed) },
	} {
		if err := db.Update(bad); err == nil {
			t.Error("bad EndCodes succeeded")
		}
	}
}

func TestLiveCodeIgnoresStaleIndex(t *testing.T) {
	db, _ := openTest(t)
	code := flow.NewCode()
	putCode(t, db, code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite})
	// Corrupt the invariant by hand: the indexed record is not live.
	h, _ := db.keys.codeKey(code)
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketCodes).Put(h, []byte(`{"login":"alice","purpose":"invite","state":"used"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := liveCode(db, "alice", flow.PurposeInvite); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("LiveCode with a stale index: %v", err)
	}
}

func TestAudit(t *testing.T) {
	db, _ := openTest(t)
	mustUpdate(t, db, func(tx flow.Tx) error {
		for i, a := range []string{"begin", "open", "charter"} {
			if err := tx.Audit(flow.Event{Time: t0.Add(time.Duration(i) * time.Second), Actor: "user", Remote: "192.0.2.1:5555", Action: a, Login: "alice"}); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 10, Action: "explicit"}) })
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Action: "after-explicit"}) })
	if err := db.Update(func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 2, Action: "rewrite"}) }); err == nil {
		t.Error("rewriting event 2 succeeded")
	}
	mustUpdate(t, db, func(tx flow.Tx) error { return tx.Audit(flow.Event{Seq: 5, Action: "gap"}) })

	events := func(after uint64) (out []flow.Event) {
		mustView(t, db, func(tx flow.Tx) error {
			return tx.Events(after, func(e flow.Event) error { out = append(out, e); return nil })
		})
		return out
	}
	all := events(0)
	var seqs []uint64
	for _, e := range all {
		seqs = append(seqs, e.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{1, 2, 3, 5, 10, 11}) {
		t.Fatalf("seqs %v", seqs)
	}
	want := flow.Event{Seq: 2, Time: t0.Add(time.Second), Actor: "user", Remote: "192.0.2.1:5555", Action: "open", Login: "alice"}
	if all[1] != want {
		t.Errorf("event 2 = %+v, want %+v", all[1], want)
	}
	if all[5].Action != "after-explicit" || !all[5].Time.IsZero() {
		t.Errorf("event 11 = %+v: its time as given (flow's clock sets it)", all[5])
	}
	if got := events(3); len(got) != 3 || got[0].Seq != 5 {
		t.Errorf("Events(3) = %+v", got)
	}
	if got := events(11); len(got) != 0 {
		t.Errorf("Events(11) = %+v", got)
	}
	if got := events(math.MaxUint64); len(got) != 0 {
		t.Errorf("Events(max) = %+v", got)
	}
	stop := errors.New("stop")
	var n int
	err := db.View(func(tx flow.Tx) error { return tx.Events(0, func(flow.Event) error { n++; return stop }) })
	if err != stop || n != 1 {
		t.Errorf("Events with fn error: %v after %d", err, n)
	}
}

func TestCorruptRecordsReported(t *testing.T) {
	db, _ := openTest(t)
	code := flow.NewCode()
	h, _ := db.keys.codeKey(code)
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		for _, kv := range []struct{ b, k []byte }{
			{bucketDossiers, []byte("alice")}, {bucketCodes, h}, {bucketAudit, u64(1)},
		} {
			if err := btx.Bucket(kv.b).Put(kv.k, []byte("{not json")); err != nil {
				return err
			}
		}
		return btx.Bucket(bucketCodeIdx).Put(idxKey("alice", []byte(flow.PurposeInvite)), h)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func(flow.Tx) error{
		"Dossier":      func(tx flow.Tx) error { _, err := tx.Dossier("alice"); return err },
		"Dossiers":     func(tx flow.Tx) error { return tx.Dossiers(func(flow.Dossier) error { return nil }) },
		"Code":         func(tx flow.Tx) error { _, err := tx.Code(code); return err },
		"LiveCode":     func(tx flow.Tx) error { _, err := tx.LiveCode("alice", flow.PurposeInvite); return err },
		"Events":       func(tx flow.Tx) error { return tx.Events(0, func(flow.Event) error { return nil }) },
		"SetCodeState": func(tx flow.Tx) error { return tx.SetCodeState(code, flow.CodeUsed) },
		"PutCode": func(tx flow.Tx) error {
			return tx.PutCode(code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite})
		},
		"EndCodes": func(tx flow.Tx) error { return tx.EndCodes("alice", flow.CodeUsed) },
		"supersede": func(tx flow.Tx) error {
			return tx.PutCode(flow.NewCode(), flow.Code{Login: "alice", Purpose: flow.PurposeInvite})
		},
	} {
		err := db.Update(fn)
		if err == nil || errors.Is(err, flow.ErrNotFound) {
			t.Errorf("%s on a corrupt record: %v", name, err)
		}
	}
	if _, err := db.Sweep(time.Now(), 0); err == nil {
		t.Error("Sweep over a corrupt code record succeeded")
	}
}
