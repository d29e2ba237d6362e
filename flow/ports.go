package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Store keeps dossiers, codes, the outbox and the audit log. Each call of
// Update is one atomic transaction: a crash leaves the old or the new state.
// A store shared by several nodes (etcd) runs fn again when another node
// wrote what fn read meanwhile: fn must start afresh each time (reset
// what it records outside, decide from what it reads).
type Store interface {
	Update(fn func(Tx) error) error
	View(fn func(Tx) error) error
}

// Batcher is a Store that can run concurrent small transactions in one
// commit (Update semantics, but fn may run more than once, so it acts only
// through its Tx). A Store without it gets Update.
type Batcher interface {
	Batch(fn func(Tx) error) error
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

	// Enqueue adds m to the outbox (sealed) as queued and returns its ID.
	Enqueue(m Mail) (uint64, error)
	// PutMail stores m again under its ID, which must exist (a state
	// change: a queued mail cancelled).
	PutMail(m Mail) error
	// QueuedMails returns login's queued mails, oldest first, without
	// reading its past ones.
	QueuedMails(login string) ([]Mail, error)
	// Mails returns the outbox entries of login, oldest first.
	Mails(login string) ([]Mail, error)

	// Audit appends e as given (its Time is the caller's); a zero Seq is
	// the next one.
	Audit(e Event) error
	// Events calls fn for every event with Seq > after, oldest first.
	Events(after uint64, fn func(Event) error) error
	// LoginEvents calls fn for every event whose Login is login, oldest
	// first, without reading the other logins' events.
	LoginEvents(login string, fn func(Event) error) error
}

// Locks hold a dossier for one session across the nodes that share one
// store (etcd); each node already lets only one of its own sessions open a
// dossier.
type Locks interface {
	// Lock takes login's dossier: ErrBusy when a session of another node
	// holds it (a dead node's lock ends by itself within seconds),
	// ErrUnavailable when the store cannot tell. release gives it back.
	Lock(login string) (release func(), err error)
}

// Directory is the institution's account directory (LDAP).
type Directory interface {
	// Lookup returns ErrNoAccount when no entry has this login.
	Lookup(ctx context.Context, login string) (Account, error)
	// SetPassword sets the password through the directory, which hashes it
	// and applies its own policy (*PasswordRefusedError when it refuses).
	SetPassword(ctx context.Context, a Account, password string) error
	// AcceptCharter records in an active account that the charter version
	// was accepted (again), leaving its other values as they are.
	AcceptCharter(ctx context.Context, a Account, version string) error
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
	ErrNotFound  = errors.New("not found")
	ErrNoAccount = errors.New("no such account")
	ErrCodeWrong = errors.New("code: unknown")
	// ErrRedirectCodeWrong is ErrCodeWrong at step 6: a new code comes
	// from the resend key there, not from starting over.
	ErrRedirectCodeWrong = fmt.Errorf("%w (redirect)", ErrCodeWrong)
	ErrCodeExpired       = errors.New("code: expired")
	ErrCodeUsed          = errors.New("code: already used")
	ErrCodeSuperseded    = errors.New("code: replaced by a newer one")
	ErrCodeRevoked       = errors.New("code: revoked")
	ErrCodeFinished      = errors.New("code: the account is already activated")
	ErrBusy              = errors.New("dossier: open in another session")
	ErrClosed            = errors.New("session: closed")
	ErrOrder             = errors.New("step: not available yet")
	ErrNotAccepted       = errors.New("charter: not accepted")
	ErrInvalidAddress    = errors.New("mail address: invalid")
	// ErrAddressCharacters is an ErrInvalidAddress whose reason is a
	// control, format or invisible character (a bidi override…).
	ErrAddressCharacters = fmt.Errorf("%w: invisible or control characters", ErrInvalidAddress)
	ErrRedirectLoop      = errors.New("mail address: the institution's own domain")
	ErrInvalidLogin      = errors.New("login: invalid")
	// ErrInvalidAffiliation: not an eduPerson/SUPANN affiliation value.
	ErrInvalidAffiliation = errors.New("affiliation: not an eduPerson/SUPANN value")
	// ErrLoginIsCode answers Begin when what was typed as a login is a
	// code: it is neither looked up nor logged.
	ErrLoginIsCode    = errors.New("login: this is a code, not a login")
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
	// ErrRedirectConfirmed answers Open with a redirect code: the redirect
	// is now verified, but such a code opens nothing (it went to an
	// address the user typed, maybe wrongly): the user goes on with the
	// dossier's own code.
	ErrRedirectConfirmed = errors.New("redirect confirmed: open the dossier with its own code")
	// ErrNotActive answers a staff reset of an account that is not active
	// yet: it needs an invitation, not a reset.
	ErrNotActive = errors.New("account not active yet: invite it instead")
)

// RateLimitError says how long to wait; Mails: it is the limit of mails
// sent for one login (not of attempts).
type RateLimitError struct {
	Wait  time.Duration
	Mails bool
}

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

// logDirectory logs a directory failure: a configuration error at level
// ERROR with what to fix (the IT staff must act; the user is told they
// have been), an outage at WARN.
func logDirectory(log *slog.Logger, msg, login string, err error) {
	if errors.Is(err, ErrMisconfigured) {
		log.Error(msg+": the directory's or activated's configuration must be fixed", "login", login, "err", err)
		return
	}
	log.Warn(msg, "login", login, "err", err)
}
