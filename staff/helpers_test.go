package staff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"activated/directory"
	"activated/flow"
	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
	"activated/staff"
	"activated/storage"
)

// who is the staff member every test runs as.
var who = staff.Identity{Name: "Alice Admin", Fingerprint: "SHA256:test", Remote: "192.0.2.7:5555"}

const actor = "staff:Alice Admin SHA256:test"

// world is a real flow.Service over real storage and a throwaway slapd.
type world struct {
	t   testing.TB
	db  *storage.DB
	svc *flow.Service
	srv *slapd.Server
}

func newWorld(t testing.TB, accounts ...slapd.Account) *world {
	t.Helper()
	srv := slapdtest.Start(t, accounts...)
	dir, err := directory.New(directory.Config{URL: srv.URL, BindDN: srv.ServiceDN, BindPassword: srv.ServicePassword,
		PeopleBase: srv.PeopleDN, MailDomain: slapd.MailDomain})
	if err != nil {
		t.Fatalf("directory: %v", err)
	}
	t.Cleanup(func() { dir.Close() })
	db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
	if err != nil {
		t.Fatalf("storage: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := flow.New(flow.Config{}, db, dir, flow.SystemClock{}, nil)
	if err != nil {
		t.Fatalf("flow: %v", err)
	}
	return &world{t: t, db: db, svc: svc, srv: srv}
}

// newStoreWorld is a service with no directory, for commands that never
// reach it.
func newStoreWorld(t testing.TB) *world {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
	if err != nil {
		t.Fatalf("storage: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := flow.New(flow.Config{}, db, nil, flow.SystemClock{}, nil)
	if err != nil {
		t.Fatalf("flow: %v", err)
	}
	return &world{t: t, db: db, svc: svc}
}

// run runs one staff command and returns its exit status and output.
func (w *world) run(stdin string, args ...string) (int, string, string) {
	w.t.Helper()
	var out, errb bytes.Buffer
	code := staff.Run(context.Background(), w.svc, who, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// runJSON runs a command with --json and decodes its output into v.
func (w *world) runJSON(v any, wantCode int, stdin string, args ...string) {
	w.t.Helper()
	code, out, errs := w.run(stdin, append(args, "--json")...)
	if code != wantCode {
		w.t.Fatalf("%v: exit %d, want %d; stderr %q; stdout %s", args, code, wantCode, errs, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		w.t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
	}
}

// queued returns every mail put in the outbox, per login of a dossier,
// oldest first, whatever its state since (a renewal cancels the queued
// mail of the code it replaces); queued ones still carry their code.
func (w *world) queued() map[string][]flow.Mail {
	w.t.Helper()
	out := map[string][]flow.Mail{}
	err := w.db.View(func(tx flow.Tx) error {
		return tx.Dossiers(func(d flow.Dossier) error {
			ms, err := tx.Mails(d.Login)
			if len(ms) > 0 {
				out[d.Login] = ms
			}
			return err
		})
	})
	if err != nil {
		w.t.Fatalf("mails: %v", err)
	}
	return out
}

// code returns the newest code mailed to login.
func (w *world) code(login string) string {
	w.t.Helper()
	ms := w.queued()[login]
	if len(ms) == 0 || ms[len(ms)-1].Code == "" {
		w.t.Fatalf("no code mailed to %s", login)
	}
	return ms[len(ms)-1].Code
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// harmless fails when s holds an escape character, BEL, another control
// rune than newline, or a bidi control.
func harmless(t testing.TB, where, s string) {
	t.Helper()
	for _, r := range s {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f ||
			unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point) {
			t.Fatalf("%s: control or bidi rune %U in output:\n%q", where, r, s)
		}
	}
}

// people seeded by most tests.
var (
	pending   = slapd.Account{Login: "amartin", GivenName: "Anne", Surname: "Martin", RecoveryMail: "anne.martin@example.net", Affiliation: "student"}
	pending2  = slapd.Account{Login: "bdurand", GivenName: "Bruno", Surname: "Durand", RecoveryMail: "bruno.durand@example.net", Affiliation: "staff"}
	active    = slapd.Account{Login: "cactive", GivenName: "Claire", Surname: "Active", RecoveryMail: "claire@example.net", Affiliation: "faculty", Active: true}
	noRecover = slapd.Account{Login: "dnomail", GivenName: "Denis", Surname: "Nomail", Affiliation: "staff"}
)
