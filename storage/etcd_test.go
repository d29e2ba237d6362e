package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/etcdtest"
	"activated/storage"
	"activated/storage/storagetest"
)

// One three-member cluster serves every test of the binary, started at
// the first test that needs it; each test has its own prefix.
var (
	clusterOnce sync.Once
	cluster     *etcdtest.Cluster
	clusterErr  error
	stopCluster = func() {}
	prefixes    atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

func etcdCluster(t testing.TB) *etcdtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, stopCluster, clusterErr = etcdtest.Shared() })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

// openEtcd opens a store under a fresh prefix, and returns a function that
// opens another node's handle on it.
func openEtcd(t testing.TB) (*storage.DB, func() *storage.DB) {
	node := nodesOn(t, storage.EtcdConfig{})
	return node(), node
}

// nodesOn returns a function that opens a node's handle on a fresh
// prefix, with cfg's timeouts.
func nodesOn(t testing.TB, cfg storage.EtcdConfig) func() *storage.DB {
	c := etcdCluster(t)
	cfg.Endpoints, cfg.Prefix = c.Endpoints(), fmt.Sprintf("/test%d/", prefixes.Add(1))
	return func() *storage.DB {
		db, err := storage.OpenEtcd(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// TestEtcdContract runs the storage contract against a real three-member
// etcd cluster.
func TestEtcdContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (*storage.DB, func() *storage.DB) { return openEtcd(t) })
}

// openNodes opens two nodes' handles on a fresh prefix, with cfg's
// timeouts.
func openNodes(t *testing.T, cfg storage.EtcdConfig) (a, b *storage.DB) {
	open := nodesOn(t, cfg)
	return open(), open()
}

// eventually polls cond until it holds, for at most 15 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEtcdLock: a dossier locked by one node is busy for another until
// released, and a dead node's lock expires with its lease.
func TestEtcdLock(t *testing.T) {
	a, b := openNodes(t, storage.EtcdConfig{LeaseTTL: time.Second})
	release, err := a.Lock("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock("alice"); !errors.Is(err, flow.ErrBusy) {
		t.Fatalf("lock held by node A, taken by B: %v", err)
	}
	if r, err := b.Lock("bob"); err != nil {
		t.Errorf("another login: %v", err)
	} else {
		r()
	}
	release()
	releaseB, err := b.Lock("alice")
	if err != nil {
		t.Fatalf("after A released: %v", err)
	}
	releaseB()
	// Node A dies holding the lock: its lease is no longer renewed.
	if _, err := a.Lock("alice"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	eventually(t, "the dead node's lock expires", func() bool {
		r, err := b.Lock("alice")
		if err == nil {
			r()
		}
		return err == nil
	})
}

// TestEtcdMailClaim: each queued mail is handed to one node at a time; a
// recorded attempt or the death of the node frees it.
func TestEtcdMailClaim(t *testing.T) {
	a, b := openNodes(t, storage.EtcdConfig{LeaseTTL: time.Second})
	now := time.Now()
	if err := a.Update(func(tx flow.Tx) error {
		_, err := tx.Enqueue(flow.Mail{Kind: flow.MailInvitation, To: "a@example.net", Login: "alice", Code: flow.NewCode(), Created: now})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	due, err := a.Due(now, 0)
	if err != nil || len(due) != 1 {
		t.Fatalf("node A: %d due, %v", len(due), err)
	}
	if due, err := b.Due(now, 0); err != nil || len(due) != 0 {
		t.Fatalf("node B got the mail A claimed: %d, %v", len(due), err)
	}
	if err := a.Retry(due[0].ID, now, "421 busy"); err != nil {
		t.Fatal(err)
	}
	due, err = b.Due(now, 0)
	if err != nil || len(due) != 1 || due[0].Attempts != 1 {
		t.Fatalf("node B after A's attempt: %+v, %v", due, err)
	}
	if due, _ := a.Due(now, 0); len(due) != 0 {
		t.Fatalf("node A got the mail B claimed: %d", len(due))
	}
	// B dies while sending: after its lease, A sends it.
	b.Close()
	eventually(t, "the dead node's claim expires", func() bool {
		due, err := a.Due(now, 0)
		return err == nil && len(due) == 1
	})
	if err := a.Delivered(due[0].ID, now); err != nil {
		t.Fatal(err)
	}
	if due, _ := a.Due(now, 0); len(due) != 0 {
		t.Fatalf("a delivered mail is due again: %+v", due)
	}
}

// TestEtcdQuorum: one member down changes nothing; without quorum every
// operation fails with flow.ErrUnavailable within the timeout and writes
// nothing; once the members are back, everything resumes with nothing
// lost.
func TestEtcdQuorum(t *testing.T) {
	c := etcdCluster(t)
	a, _ := openNodes(t, storage.EtcdConfig{Timeout: time.Second})
	put := func(login string) error {
		return a.Update(func(tx flow.Tx) error {
			d := flow.Dossier{Login: login, RecoveryMails: []string{}}
			if err := tx.PutDossier(d); err != nil {
				return err
			}
			return tx.Audit(flow.Event{Action: "put", Login: login})
		})
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	if err := put("one-down"); err != nil {
		t.Errorf("one member down: %v", err)
	}
	c.Stop(1)
	if err := put("no-quorum"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("without quorum: %v, want ErrUnavailable", err)
	}
	if _, err := a.Lock("alice"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("lock without quorum: %v, want ErrUnavailable", err)
	}
	if err := c.RestartAll(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "writes resume", func() bool { return put("after") == nil })
	var got []string
	if err := a.View(func(tx flow.Tx) error {
		return tx.Dossiers(func(d flow.Dossier) error { got = append(got, d.Login); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "after before one-down" {
		t.Errorf("dossiers after the outage: %v", got)
	}
}

// TestCopyToEtcd: a bbolt database copied into etcd works there (codes,
// sealed mails, audit, sequences); a second copy changes nothing, not even
// what a node wrote since; a prefix a node already started on is refused.
func TestCopyToEtcd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "activated.db")
	src, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, now := flow.NewCode(), time.Now().UTC().Truncate(time.Second)
	err = src.Update(func(tx flow.Tx) error {
		for _, l := range []string{"alice", "bob"} {
			if err := tx.PutDossier(flow.Dossier{Login: l, RecoveryMails: []string{l + "@example.net"}, Deadline: now}); err != nil {
				return err
			}
			if err := tx.Audit(flow.Event{Action: "invite", Login: l}); err != nil {
				return err
			}
		}
		if err := tx.PutCode(code, flow.Code{Login: "alice", Purpose: flow.PurposeInvite, Deadline: now}); err != nil {
			return err
		}
		_, err := tx.Enqueue(flow.Mail{Kind: flow.MailInvitation, To: "alice@example.net", Login: "alice", Code: code, Created: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	cfg := storage.EtcdConfig{Endpoints: etcdCluster(t).Endpoints(), Prefix: fmt.Sprintf("/test%d/", prefixes.Add(1))}
	st, err := storage.CopyToEtcd(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied == 0 || st.Present != 0 {
		t.Errorf("first copy: %+v", st)
	}
	db, err := storage.OpenEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var firstID uint64
	err = db.View(func(tx flow.Tx) error {
		if c, err := tx.Code(code); err != nil || c.Login != "alice" {
			t.Errorf("code after the copy: %+v, %v", c, err)
		}
		ms, err := tx.Mails("alice")
		if err != nil || len(ms) != 1 || ms[0].Code != code {
			t.Fatalf("mails after the copy: %+v, %v", ms, err)
		}
		firstID = ms[0].ID
		n := 0
		err = tx.Events(0, func(flow.Event) error { n++; return nil })
		if n != 2 {
			t.Errorf("%d events after the copy, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if due, err := db.Due(now, 0); err != nil || len(due) != 1 {
		t.Errorf("due after the copy: %+v, %v", due, err)
	}
	// A node writes: new IDs follow the copied ones, and a second copy
	// leaves the node's writes alone.
	err = db.Update(func(tx flow.Tx) error {
		id, err := tx.Enqueue(flow.Mail{Kind: flow.MailActivated, To: "bob@example.net", Login: "bob", Created: now})
		if err == nil && id <= firstID {
			t.Errorf("new mail ID %d, not after the copied %d", id, firstID)
		}
		return tx.PutDossier(flow.Dossier{Login: "alice", Lang: "en", RecoveryMails: []string{}})
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := storage.CopyToEtcd(path, cfg)
	if err != nil || again.Copied != 0 || again.Present != st.Copied {
		t.Errorf("second copy: %+v, %v; want 0 copied, %d present", again, err, st.Copied)
	}
	db.View(func(tx flow.Tx) error {
		if d, err := tx.Dossier("alice"); err != nil || d.Lang != "en" {
			t.Errorf("the node's write after a second copy: %+v, %v", d, err)
		}
		return nil
	})
	// A prefix where a node started first has another secret.
	other := cfg
	other.Prefix = fmt.Sprintf("/test%d/", prefixes.Add(1))
	node, err := storage.OpenEtcd(other)
	if err != nil {
		t.Fatal(err)
	}
	node.Close()
	if _, err := storage.CopyToEtcd(path, other); err == nil || !strings.Contains(err.Error(), "another code secret") {
		t.Errorf("copy onto another secret: %v", err)
	}
}

// TestEtcdChanges: a dossier written through one node is announced on the
// other (the dashboards' live refresh).
func TestEtcdChanges(t *testing.T) {
	a, b := openNodes(t, storage.EtcdConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := a.Changes(ctx)
	// The watch starts asynchronously: write until it is seen.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := b.Update(func(tx flow.Tx) error { return tx.PutDossier(flow.Dossier{Login: "zoe", RecoveryMails: []string{}}) }); err != nil {
			t.Fatal(err)
		}
		select {
		case login := <-changes:
			if login != "zoe" {
				t.Fatalf("change of %q, want zoe", login)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no change seen after 15s")
		}
	}
}
