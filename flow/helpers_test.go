package flow_test

import (
	"cmp"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/storage"
)

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
	dir   *flowtest.Directory
	clock *flowtest.Clock
	svc   *flow.Service
	cfg   flow.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "activated.db"),
		dir:   flowtest.NewDirectory(staffAccount(), studentAccount(), activeAccount()),
		clock: flowtest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, paris)),
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
		for _, login := range []string{"jdupont", "amartin", "pdurand", "nobody", "newbie", "nomail", "bmartin"} {
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
