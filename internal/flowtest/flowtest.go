// Package flowtest holds small in-memory implementations of flow's own
// interfaces, for unit tests of the packages above flow; the real LDAP
// adapter is tested against slapd in package directory.
//
// It owns a settable Clock, an in-memory Directory with knobs to play an
// outage or a refusal, and a Buffer safe for a writer goroutine and a
// reading test. Every type is safe for concurrent use.
package flowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"activated/flow"
)

// Clock is a flow.Clock the test moves by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// Buffer is a bytes.Buffer safe for a writer goroutine and a reader.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }

// String returns everything written so far.
func (b *Buffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// Directory is an in-memory flow.Directory. It keeps the accounts, the
// passwords set and the activations written. An empty password is an
// error, and Activate before SetPassword panics: the service must never
// do either. The zero value is an empty directory.
type Directory struct {
	mu           sync.Mutex
	accounts     map[string]flow.Account
	passwords    map[string]string
	activations  map[string]flow.Activation
	down         bool
	failActivate int   // Activate calls left to fail; < 0: every one
	activateErr  error // what they fail with
	refuseWord   string
	refuseReason string // "" accepts every password
}

var _ flow.Directory = (*Directory)(nil)

// NewDirectory returns a directory holding accts.
func NewDirectory(accts ...flow.Account) *Directory {
	d := &Directory{}
	d.Put(accts...)
	return d
}

// lock takes the lock and makes the maps of a zero Directory.
func (d *Directory) lock() {
	d.mu.Lock()
	if d.accounts == nil {
		d.accounts, d.passwords, d.activations = map[string]flow.Account{}, map[string]string{}, map[string]flow.Activation{}
	}
}

// Put adds or replaces accounts, by login.
func (d *Directory) Put(accts ...flow.Account) {
	d.lock()
	defer d.mu.Unlock()
	for _, a := range accts {
		d.accounts[a.Login] = a
	}
}

// SetDown makes every call fail with flow.ErrUnavailable, like a network
// outage, until SetDown(false).
func (d *Directory) SetDown(down bool) {
	d.lock()
	defer d.mu.Unlock()
	d.down = down
}

// FailActivate makes the next n Activate calls fail with err
// (flow.ErrUnavailable when nil), as if the directory went away between
// the password and the modify; n < 0 fails every call until
// FailActivate(0, nil).
func (d *Directory) FailActivate(n int, err error) {
	if err == nil {
		err = flow.ErrUnavailable
	}
	d.lock()
	defer d.mu.Unlock()
	d.failActivate, d.activateErr = n, err
}

// Refuse makes SetPassword refuse every password with the directory's
// reason (a *flow.PasswordRefusedError); "" accepts them again.
func (d *Directory) Refuse(reason string) { d.RefuseContaining("", reason) }

// RefuseContaining makes SetPassword refuse the passwords that contain
// word, with reason; "" as reason accepts them again.
func (d *Directory) RefuseContaining(word, reason string) {
	d.lock()
	defer d.mu.Unlock()
	d.refuseWord, d.refuseReason = word, reason
}

// Account returns the entry of login (zero when none), even when down.
func (d *Directory) Account(login string) flow.Account {
	d.lock()
	defer d.mu.Unlock()
	return d.accounts[login]
}

// Password returns the password last set for login ("" when none).
func (d *Directory) Password(login string) string {
	d.lock()
	defer d.mu.Unlock()
	return d.passwords[login]
}

// Activation returns the choices written for login (zero when none).
func (d *Directory) Activation(login string) flow.Activation {
	d.lock()
	defer d.mu.Unlock()
	return d.activations[login]
}

func (d *Directory) Lookup(_ context.Context, login string) (flow.Account, error) {
	d.lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.Account{}, flow.ErrUnavailable
	}
	if a, ok := d.accounts[login]; ok {
		return a, nil
	}
	for _, a := range d.accounts { // uid matching ignores case, as in LDAP
		if strings.EqualFold(a.Login, login) {
			return a, nil
		}
	}
	return flow.Account{}, flow.ErrNoAccount
}

func (d *Directory) SetPassword(_ context.Context, a flow.Account, pw string) error {
	d.lock()
	defer d.mu.Unlock()
	switch {
	case d.down:
		return flow.ErrUnavailable
	case pw == "":
		return errors.New("flowtest: empty password")
	case d.refuseReason != "" && strings.Contains(pw, d.refuseWord):
		return &flow.PasswordRefusedError{Reason: d.refuseReason}
	}
	d.passwords[a.Login] = pw
	return nil
}

func (d *Directory) Activate(_ context.Context, a flow.Account, act flow.Activation) error {
	d.lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.ErrUnavailable
	}
	if d.failActivate != 0 {
		if d.failActivate > 0 {
			d.failActivate--
		}
		return d.activateErr
	}
	if _, ok := d.passwords[a.Login]; !ok {
		panic("flowtest: Activate before SetPassword: " + a.Login)
	}
	acc, ok := d.accounts[a.Login]
	if !ok {
		acc = a
	}
	acc.Active, acc.Charter = true, act.CharterVersion
	d.accounts[a.Login] = acc
	d.activations[a.Login] = act
	return nil
}

// AcceptCharter records version as the account's consent (Account.Charter).
func (d *Directory) AcceptCharter(_ context.Context, a flow.Account, version string) error {
	d.lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.ErrUnavailable
	}
	acc, ok := d.accounts[a.Login]
	if !ok || !acc.Active {
		return fmt.Errorf("flowtest: charter of an account not active: %s", a.Login)
	}
	acc.Charter = version
	d.accounts[a.Login] = acc
	return nil
}

// Create adds a pending account under ou=people,dc=example,dc=org.
func (d *Directory) Create(_ context.Context, n flow.NewAccount) (flow.Account, error) {
	d.lock()
	defer d.mu.Unlock()
	if d.down {
		return flow.Account{}, flow.ErrUnavailable
	}
	a := flow.Account{DN: "uid=" + n.Login + ",ou=people,dc=example,dc=org", Login: n.Login,
		GivenName: n.GivenName, Surname: n.Surname, RecoveryMails: []string{n.RecoveryMail}, Affiliations: []string{n.Affiliation}}
	d.accounts[n.Login] = a
	return a, nil
}
