package flow

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store keeps dossiers, codes, the outbox and the audit log. Each call of
// Update is one atomic transaction: a crash leaves the old or the new state.
type Store interface {
	Update(fn func(Tx) error) error
	View(fn func(Tx) error) error
}

// Tx is a store transaction. Values returned are copies: they stay valid
// after the transaction.
type Tx interface {
	// Dossier returns ErrNotFound when the login has none.
	Dossier(login string) (Dossier, error)
	PutDossier(d Dossier) error
	// Dossiers calls fn for every dossier in login order; an error from fn
	// stops the walk and is returned.
	Dossiers(fn func(Dossier) error) error

	// PutCode stores c under the HMAC of code (normalized form). A live
	// code of the same login and purpose becomes CodeSuperseded.
	PutCode(code string, c Code) error
	// Code looks a code up by its normalized form; ErrNotFound if unknown.
	Code(code string) (Code, error)
	// SetCodeState changes the state of one code.
	SetCodeState(code string, st CodeState) error
	// EndCodes moves every live code of login whose purpose is listed (all
	// purposes when none is) to state st.
	EndCodes(login string, st CodeState, purposes ...Purpose) error
	// LiveCode reports the live code record of login for purpose, if any
	// (ErrNotFound otherwise); it never returns the code itself.
	LiveCode(login string, p Purpose) (Code, error)

	// Enqueue adds m to the outbox (sealed) and returns its ID.
	Enqueue(m Mail) (uint64, error)
	// Mails returns the outbox entries of login, oldest first.
	Mails(login string) ([]Mail, error)

	// Audit appends e (Seq and Time are set by the caller or filled in).
	Audit(e Event) error
	// Events calls fn for every event with Seq > after, oldest first.
	Events(after uint64, fn func(Event) error) error
	// LoginEvents calls fn for every event whose Login is login, oldest
	// first, without reading the other logins' events.
	LoginEvents(login string, fn func(Event) error) error
}

// Directory is the institution's account directory (LDAP).
type Directory interface {
	// Lookup returns ErrNoAccount when no entry has this login.
	Lookup(ctx context.Context, login string) (Account, error)
	// SetPassword sets the password through the directory, which hashes it
	// and applies its own policy (*PasswordRefusedError when it refuses).
	SetPassword(ctx context.Context, a Account, password string) error
	// Activate writes the choices and marks the account active, at once.
	Activate(ctx context.Context, a Account, act Activation) error
	// Create adds a pending account.
	Create(ctx context.Context, n NewAccount) (Account, error)
}

// Clock tells the time; tests use a fake one.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Errors a front end turns into a sentence in the user's language.
var (
	ErrNotFound       = errors.New("not found")
	ErrNoAccount      = errors.New("no such account")
	ErrCodeWrong      = errors.New("code: unknown")
	ErrCodeExpired    = errors.New("code: expired")
	ErrCodeUsed       = errors.New("code: already used")
	ErrCodeSuperseded = errors.New("code: replaced by a newer one")
	ErrCodeRevoked    = errors.New("code: revoked")
	ErrCodeFinished   = errors.New("code: the account is already activated")
	ErrBusy           = errors.New("dossier: open in another session")
	ErrClosed         = errors.New("session: closed")
	ErrOrder          = errors.New("step: not available yet")
	ErrNotAccepted    = errors.New("charter: not accepted")
	ErrInvalidAddress = errors.New("mail address: invalid")
	ErrInvalidLogin   = errors.New("login: invalid")
	ErrPasswordPolicy = errors.New("password: does not meet the policy")
	ErrUnavailable    = errors.New("directory unavailable")
	// ErrMisconfigured: the directory refused for a reason that waiting
	// will not cure (it demands encryption, a grant is missing, the schema
	// lacks an attribute, the service account cannot bind): the IT staff
	// must change its configuration or ours. The error says what to fix;
	// the dossier is kept, and the user is told the staff know.
	ErrMisconfigured    = errors.New("directory configuration error")
	ErrAlreadyActivated = errors.New("account already activated")
	ErrExists           = errors.New("account already exists")
	ErrFinishing        = errors.New("the user is finishing the activation right now: try again in a minute")
	// ErrRedirectConfirmed answers Open with a redirect code: the redirect
	// is now verified, but such a code opens nothing (it went to an
	// address the user typed, maybe wrongly): the user goes on with the
	// dossier's own code.
	ErrRedirectConfirmed = errors.New("redirect confirmed: open the dossier with its own code")
)

// RateLimitError says how long to wait.
type RateLimitError struct{ Wait time.Duration }

func (e *RateLimitError) Error() string { return fmt.Sprintf("rate limited: retry in %s", e.Wait) }

// PasswordProblem is what a directory's password policy found wrong with
// a password the user can change (from the draft-behera password policy
// response control).
type PasswordProblem int

const (
	PasswordUnexplained PasswordProblem = iota // the directory gave no reason
	PasswordTooShort                           // passwordTooShort (6)
	PasswordQuality                            // insufficientPasswordQuality (5): too weak, or close to the user's names
	PasswordInHistory                          // passwordInHistory (8): used before
	PasswordTooYoung                           // passwordTooYoung (7): changed too recently
)

// PasswordRefusedError is the directory's password policy refusing the
// password the user chose (result 19): another password may pass.
type PasswordRefusedError struct {
	Problem PasswordProblem
	// MinLength is the length the directory requires, when it said so
	// ("password must be at least 20 characters long"); 0 otherwise.
	MinLength int
	// Reason is the directory's own words, for the user beside the
	// sentence of Problem; "" when they say no more than Problem does.
	Reason string
}

func (e *PasswordRefusedError) Error() string {
	return fmt.Sprintf("password refused by the directory (problem %d, min length %d): %s", e.Problem, e.MinLength, e.Reason)
}

// HelpdeskError adds the helpdesk contact to an error the user cannot
// cure by waiting (ErrMisconfigured): the sentence names who to ask.
type HelpdeskError struct {
	Contact string // e.g. "helpdesk@example.org, 01 23 45 67 89"; "" = none configured
	Err     error
}

func (e *HelpdeskError) Error() string { return e.Err.Error() }
func (e *HelpdeskError) Unwrap() error { return e.Err }
