package flow_test

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"activated/flow"
	"activated/storage"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// memDir is an in-memory flow.Directory for unit tests; the real LDAP
// adapter is tested against slapd in package directory.
type memDir struct {
	mu        sync.Mutex
	accounts  map[string]flow.Account
	passwords map[string]string
	acts      map[string]flow.Activation
	down      bool   // every call fails like a network error
	failAct   bool   // Activate fails (injected between password and modify)
	refuse    string // SetPassword refuses with this reason
}

func newMemDir(accts ...flow.Account) *memDir {
	d := &memDir{accounts: map[string]flow.Account{}, passwords: map[string]string{}, acts: map[string]flow.Activation{}}
	for _, a := range accts {
		d.accounts[a.Login] = a
	}
	return d
}

func (d *memDir) Lookup(_ context.Context, login string) (flow.Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.Account{}, flow.ErrUnavailable
	}
	a, ok := d.accounts[login]
	if !ok {
		return flow.Account{}, flow.ErrNoAccount
	}
	return a, nil
}

func (d *memDir) SetPassword(_ context.Context, a flow.Account, pw string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.ErrUnavailable
	}
	if d.refuse != "" {
		return &flow.PasswordRefusedError{Reason: d.refuse}
	}
	d.passwords[a.Login] = pw
	return nil
}

func (d *memDir) Activate(_ context.Context, a flow.Account, act flow.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down || d.failAct {
		return flow.ErrUnavailable
	}
	if _, ok := d.passwords[a.Login]; !ok {
		panic("activate before password: " + a.Login)
	}
	d.acts[a.Login] = act
	acc := d.accounts[a.Login]
	acc.Active = true
	d.accounts[a.Login] = acc
	return nil
}

func (d *memDir) Create(_ context.Context, n flow.NewAccount) (flow.Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := flow.Account{DN: "uid=" + n.Login + ",ou=people", Login: n.Login, GivenName: n.GivenName, Surname: n.Surname,
		RecoveryMails: []string{n.RecoveryMail}, Affiliations: []string{n.Affiliation}}
	d.accounts[n.Login] = a
	return a, nil
}

func (d *memDir) set(f func(d *memDir)) { d.mu.Lock(); f(d); d.mu.Unlock() }

var paris = mustLoc("Europe/Paris")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

const goodPassword = "correct horse battery staple violet"

func staffAccount() flow.Account {
	return flow.Account{DN: "uid=jdupont,ou=people,dc=example,dc=org", Login: "jdupont", GivenName: "Jeanne", Surname: "Dupont",
		DisplayName: "Jeanne Dupont", Mail: "jdupont@example.org", RecoveryMails: []string{"jeanne@perso.example.net"}, Affiliations: []string{"staff"}}
}

func studentAccount() flow.Account {
	return flow.Account{DN: "uid=amartin,ou=people,dc=example,dc=org", Login: "amartin", GivenName: "Alex", Surname: "Martin",
		DisplayName: "Alex Martin", Mail: "amartin@example.org", RecoveryMails: []string{"alex@perso.example.net"}, Affiliations: []string{"student"}}
}

func activeAccount() flow.Account {
	a := studentAccount()
	a.Login, a.DN, a.RecoveryMails, a.Active = "pdurand", "uid=pdurand,ou=people,dc=example,dc=org", []string{"pierre@perso.example.net"}, true
	return a
}

// env is a service over a real bbolt store with a fake clock.
type env struct {
	t     *testing.T
	path  string
	db    *storage.DB
	dir   *memDir
	clock *fakeClock
	svc   *flow.Service
	cfg   flow.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "activated.db"),
		dir:   newMemDir(staffAccount(), studentAccount(), activeAccount()),
		clock: &fakeClock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, paris)},
		cfg:   flow.Config{Location: paris, Charter: []byte("# Charte\n\nSoyez sages.\n"), Institution: "Université Exemple"},
	}
	e.open()
	t.Cleanup(func() { e.db.Close() })
	return e
}

// open (re)opens the store and builds a new service, as a restart would.
func (e *env) open() {
	e.t.Helper()
	db, err := storage.Open(e.path, storage.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	svc, err := flow.New(e.cfg, db, e.dir, e.clock, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
}

func (e *env) restart() {
	e.t.Helper()
	if err := e.db.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// mails returns every outbox entry of the test logins, in any state,
// oldest first (queued ones still carry their code).
func (e *env) mails() []flow.Mail {
	e.t.Helper()
	var all []flow.Mail
	err := e.db.View(func(tx flow.Tx) error {
		for _, login := range []string{"jdupont", "amartin", "pdurand", "nobody", "newbie", "nomail"} {
			ms, err := tx.Mails(login)
			if err != nil {
				return err
			}
			all = append(all, ms...)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b flow.Mail) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// lastCode returns the code of the newest queued mail of kind to login.
func (e *env) lastCode(login string, kind flow.MailKind) string {
	e.t.Helper()
	ms := e.mails()
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Login == login && ms[i].Kind == kind && ms[i].Code != "" {
			return ms[i].Code
		}
	}
	e.t.Fatalf("no %s mail for %s in %d mails", kind, login, len(ms))
	return ""
}

var user = flow.Client{Remote: "192.0.2.1:4242", Lang: "fr"}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dossier(t *testing.T, x *flow.Session) flow.Dossier {
	t.Helper()
	d, err := x.Dossier()
	must(t, err)
	return d
}
