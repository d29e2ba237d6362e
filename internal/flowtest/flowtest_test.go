package flowtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
)

var _ flow.Directory = (*flowtest.Directory)(nil)

var ctx = context.Background()

var jdoe = flow.Account{Login: "jdoe", DN: "uid=jdoe,ou=people,dc=example,dc=org"}

func TestDirectoryWalk(t *testing.T) {
	d := flowtest.NewDirectory(jdoe)
	if _, err := d.Lookup(ctx, "nobody"); !errors.Is(err, flow.ErrNoAccount) {
		t.Fatalf("lookup unknown: %v", err)
	}
	a, err := d.Lookup(ctx, "jdoe")
	if err != nil || a.DN != jdoe.DN {
		t.Fatalf("lookup: %+v %v", a, err)
	}
	if err := d.SetPassword(ctx, a, ""); err == nil {
		t.Fatal("empty password accepted")
	}
	if err := d.SetPassword(ctx, a, "pw one"); err != nil {
		t.Fatal(err)
	}
	if err := d.Activate(ctx, a, flow.Activation{Public: true}); err != nil {
		t.Fatal(err)
	}
	if d.Password("jdoe") != "pw one" || !d.Activation("jdoe").Public || !d.Account("jdoe").Active {
		t.Fatalf("state: %q %+v %+v", d.Password("jdoe"), d.Activation("jdoe"), d.Account("jdoe"))
	}
	n, err := d.Create(ctx, flow.NewAccount{Login: "new", RecoveryMail: "new@example.net", Affiliation: "staff"})
	if err != nil || n.DN != "uid=new,ou=people,dc=example,dc=org" || n.Active {
		t.Fatalf("create: %+v %v", n, err)
	}
	if got, err := d.Lookup(ctx, "new"); err != nil || got.RecoveryMails[0] != "new@example.net" {
		t.Fatalf("created account: %+v %v", got, err)
	}
}

func TestDirectoryDown(t *testing.T) {
	d := flowtest.NewDirectory(jdoe)
	d.SetDown(true)
	if _, err := d.Lookup(ctx, "jdoe"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("lookup: %v", err)
	}
	if err := d.SetPassword(ctx, jdoe, "pw"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("set password: %v", err)
	}
	if err := d.Activate(ctx, jdoe, flow.Activation{}); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("activate: %v", err)
	}
	if _, err := d.Create(ctx, flow.NewAccount{Login: "new"}); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("create: %v", err)
	}
	if d.Password("jdoe") != "" || d.Account("jdoe").Active || d.Account("new").Login != "" {
		t.Fatal("a call changed the directory while down")
	}
	d.SetDown(false)
	if _, err := d.Lookup(ctx, "jdoe"); err != nil {
		t.Errorf("lookup after the outage: %v", err)
	}
}

func TestDirectoryRefuse(t *testing.T) {
	d := flowtest.NewDirectory(jdoe)
	d.Refuse("too weak")
	var refused *flow.PasswordRefusedError
	if err := d.SetPassword(ctx, jdoe, "anything"); !errors.As(err, &refused) || refused.Reason != "too weak" {
		t.Fatalf("refuse: %v", err)
	}
	d.RefuseContaining("old", "in history")
	if err := d.SetPassword(ctx, jdoe, "my old one"); !errors.As(err, &refused) || refused.Reason != "in history" {
		t.Fatalf("refuse containing: %v", err)
	}
	if d.Password("jdoe") != "" {
		t.Fatal("a refused password was set")
	}
	if err := d.SetPassword(ctx, jdoe, "a new one"); err != nil {
		t.Fatalf("other password: %v", err)
	}
	d.Refuse("")
	if err := d.SetPassword(ctx, jdoe, "my old one"); err != nil || d.Password("jdoe") != "my old one" {
		t.Fatalf("after refusing stops: %v", err)
	}
}

func TestDirectoryFailActivate(t *testing.T) {
	d := flowtest.NewDirectory(jdoe)
	if err := d.SetPassword(ctx, jdoe, "pw"); err != nil {
		t.Fatal(err)
	}
	ldapErr := errors.New("ldap: connection refused")
	d.FailActivate(2, ldapErr)
	for i := range 2 {
		if err := d.Activate(ctx, jdoe, flow.Activation{}); err != ldapErr {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := d.Activate(ctx, jdoe, flow.Activation{}); err != nil || !d.Account("jdoe").Active {
		t.Fatalf("third call: %v", err)
	}
	d.FailActivate(-1, nil)
	for i := range 3 {
		if err := d.Activate(ctx, jdoe, flow.Activation{}); !errors.Is(err, flow.ErrUnavailable) {
			t.Fatalf("until further notice, call %d: %v", i, err)
		}
	}
	if _, err := d.Lookup(ctx, "jdoe"); err != nil {
		t.Fatalf("only Activate fails: %v", err)
	}
	d.FailActivate(0, nil)
	if err := d.Activate(ctx, jdoe, flow.Activation{}); err != nil {
		t.Fatal(err)
	}
}

func TestActivateBeforePasswordPanics(t *testing.T) {
	d := flowtest.NewDirectory(jdoe)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
		if _, err := d.Lookup(ctx, "jdoe"); err != nil { // the lock was released
			t.Fatal(err)
		}
	}()
	d.Activate(ctx, jdoe, flow.Activation{})
}

func TestZeroDirectory(t *testing.T) {
	var d flowtest.Directory
	if _, err := d.Lookup(ctx, "jdoe"); !errors.Is(err, flow.ErrNoAccount) {
		t.Fatal(err)
	}
	d.Put(jdoe)
	if d.Account("jdoe").DN != jdoe.DN {
		t.Fatal("put")
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := flowtest.NewClock(t0)
	var f flow.Clock = c
	c.Add(time.Hour)
	if !f.Now().Equal(t0.Add(time.Hour)) {
		t.Fatalf("add: %v", f.Now())
	}
	c.Set(t0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { c.Add(time.Minute); c.Now() })
	}
	wg.Wait()
	if !c.Now().Equal(t0.Add(4 * time.Minute)) {
		t.Fatalf("concurrent adds: %v", c.Now())
	}
}

func TestBuffer(t *testing.T) {
	var b flowtest.Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i); _ = b.String() })
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line "); got != 4 {
		t.Fatalf("%d lines in %q", got, b.String())
	}
}
