package flow_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"activated/flow"
)

// locks is what etcd's leased locks give, in memory: one holder per
// login across the services (nodes) that share it; down makes every Lock
// fail as a cluster without quorum does.
type locks struct {
	mu   sync.Mutex
	held map[string]bool
	down bool
}

func (l *locks) Lock(login string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, flow.ErrUnavailable
	}
	if l.held[login] {
		return nil, flow.ErrBusy
	}
	l.held[login] = true
	return func() { l.mu.Lock(); delete(l.held, login); l.mu.Unlock() }, nil
}

// TestLocksAcrossNodes: with Config.Locks, a dossier open on one node is
// refused on another until it is closed, and a lock that cannot be taken
// leaves the dossier free on this node too.
func TestLocksAcrossNodes(t *testing.T) {
	ctx := context.Background()
	l := &locks{held: map[string]bool{}}
	e := newEnv(t)
	e.cfg.Locks = l
	e.restart()
	nodeA := e.svc
	nodeB, err := flow.New(e.cfg, e.db, e.dir, e.clock, nil)
	must(t, err)
	staff := flow.Client{Actor: "staff:test"}
	if _, err := nodeA.Invite(ctx, "amartin", false, staff); err != nil {
		t.Fatal(err)
	}
	code := e.lastCode("amartin", flow.MailInvitation)
	x, err := nodeA.Open(ctx, code, user)
	must(t, err)
	if _, err := nodeB.Open(ctx, code, user); !errors.Is(err, flow.ErrBusy) {
		t.Errorf("open on node B while open on A: %v, want ErrBusy", err)
	}
	x.Close()
	y, err := nodeB.Open(ctx, code, user)
	must(t, err)
	if _, err := nodeA.Open(ctx, code, user); !errors.Is(err, flow.ErrBusy) {
		t.Errorf("open on node A while open on B: %v, want ErrBusy", err)
	}
	y.Close()
	l.down = true
	if _, err := nodeA.Open(ctx, code, user); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("open with the locks unreachable: %v, want ErrUnavailable", err)
	}
	l.down = false
	z, err := nodeA.Open(ctx, code, user) // the failed lock left nothing held
	must(t, err)
	z.Close()
}

// retryStore runs every Update's fn twice, the first time rolled back, as
// a store shared by several nodes does when another node wrote meanwhile.
type retryStore struct{ flow.Store }

var errConflict = errors.New("conflict: run again")

func (r retryStore) Update(fn func(flow.Tx) error) error {
	if err := r.Store.Update(func(tx flow.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errConflict
	}); !errors.Is(err, errConflict) {
		return err
	}
	return r.Store.Update(fn)
}

// TestUpdateRunsAgain: the operations give the same result when the store
// runs their transaction a second time.
func TestUpdateRunsAgain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	svc, err := flow.New(e.cfg, retryStore{e.db}, e.dir, e.clock, nil)
	must(t, err)
	out, err := svc.Invite(ctx, "amartin", false, flow.Client{Actor: "staff:test"})
	if err != nil || out != flow.Invited {
		t.Fatalf("Invite: %v, %v", out, err)
	}
	x, err := svc.Open(ctx, e.lastCode("amartin", flow.MailInvitation), user)
	must(t, err)
	must(t, x.AcceptCharter(true))
	must(t, x.ChooseDirectory(false))
	must(t, x.ChooseMailbox("", false))
	must(t, x.Finish(ctx, goodPassword))
	x.Close()
	st, err := svc.Status("amartin")
	must(t, err)
	if st.Dossier.Activated.IsZero() {
		t.Errorf("not activated: %+v", st.Dossier)
	}
}

// TestChangedElsewhere: a change another node made reaches the
// subscribers (the dashboards).
func TestChangedElsewhere(t *testing.T) {
	e := newEnv(t)
	ch, stop := e.svc.Subscribe()
	defer stop()
	e.svc.Changed("amartin")
	if got := <-ch; got != "amartin" {
		t.Errorf("subscriber got %q", got)
	}
}
