// Package flow owns the activation procedure: its steps, the rule that picks
// the next step from a dossier, deadlines, one-time codes, the password policy
// and the operations every front end (TUI, plain prompts, staff commands)
// calls. It declares the interfaces it needs (Store, Directory, Clock) and
// imports no SSH, terminal or LDAP package.
package flow

import (
	"slices"
	"time"
)

// State is the life-cycle state of a dossier as staff see it.
type State string

const (
	StatePending    State = "pending"     // a code was issued, not used yet
	StateInProgress State = "in-progress" // opened with a valid code
	StateActivated  State = "activated"   // written to LDAP, done
	StateExpired    State = "expired"     // its last code's deadline passed
	StateRevoked    State = "revoked"     // staff revoked it
)

// Dossier is one login's progress through the procedure. It holds choices,
// never secrets: no password, no code.
type Dossier struct {
	Login         string   `json:"login"`
	DN            string   `json:"dn"`
	GivenName     string   `json:"given_name,omitempty"`
	Surname       string   `json:"surname,omitempty"`
	DisplayName   string   `json:"display_name,omitempty"`
	Mail          string   `json:"mail,omitempty"` // institutional address
	RecoveryMails []string `json:"recovery_mails"`
	Affiliations  []string `json:"affiliations,omitempty"`
	Lang          string   `json:"lang,omitempty"` // last language the user chose

	// Deadline is the deadline of the newest code that opens this dossier.
	Deadline time.Time `json:"deadline"`
	// Opened is set once a valid invitation or recovery code was used:
	// the recovery address is proven (step 2 done).
	Opened time.Time `json:"opened,omitzero"`

	CharterVersion    string    `json:"charter_version,omitempty"`
	CharterAcceptedAt time.Time `json:"charter_accepted_at,omitzero"`

	DirectoryChosen bool `json:"directory_chosen"`
	PublicDirectory bool `json:"public_directory"`

	MailboxChosen    bool   `json:"mailbox_chosen"`
	Redirect         string `json:"redirect,omitempty"` // "" = no redirect
	KeepCopy         bool   `json:"keep_copy"`
	RedirectVerified bool   `json:"redirect_verified"`

	// PasswordSet records that the directory accepted the password; a
	// later Finish completes the activation without asking for it again.
	PasswordSet time.Time `json:"password_set,omitzero"`
	// ResetOpened is set while a password reset is under way: a reset code
	// opened the (active) dossier; the new password clears it.
	ResetOpened time.Time `json:"reset_opened,omitzero"`
	// PasswordReset is when a reset last set a new password.
	PasswordReset time.Time `json:"password_reset,omitzero"`
	// ResetCharter: the charter changed since the last acceptance, so this
	// reset asks for it again and writes the new consent to the directory.
	ResetCharter bool `json:"reset_charter,omitempty"`
	// CharterOnly: the code that opened the reset came from a charter
	// campaign: accepting the charter ends it, no password is asked.
	CharterOnly bool `json:"charter_only,omitempty"`
	// Renewed says what the last reset renewed: "password" or "charter".
	Renewed   string    `json:"renewed,omitempty"`
	Activated time.Time `json:"activated,omitzero"`
	Revoked   time.Time `json:"revoked,omitzero"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// IsStaff tells whether one of the dossier's affiliations is in staff.
func (d Dossier) IsStaff(staff []string) bool {
	for _, a := range d.Affiliations {
		if slices.Contains(staff, a) {
			return true
		}
	}
	return false
}

// Resetting tells whether a password reset is under way.
func (d Dossier) Resetting() bool { return !d.ResetOpened.IsZero() }

// PasswordSaved tells whether the directory took the password of the step
// under way, so that only the rest of the activation is left: never during
// a reset, which asks for a new one.
func (d Dossier) PasswordSaved() bool { return !d.PasswordSet.IsZero() && !d.Resetting() }

// NeedsRedirectVerification tells whether the chosen redirect differs from
// every recovery address of the account (case-insensitive).
func (d Dossier) NeedsRedirectVerification() bool {
	if d.Redirect == "" {
		return false
	}
	for _, m := range d.RecoveryMails {
		if equalFoldMail(m, d.Redirect) {
			return false
		}
	}
	return true
}

// StateAt is the dossier's life-cycle state at time now.
func (d Dossier) StateAt(now time.Time) State {
	switch {
	case !d.Activated.IsZero():
		return StateActivated
	case !d.Revoked.IsZero():
		return StateRevoked
	case now.After(d.Deadline):
		return StateExpired
	case d.Opened.IsZero():
		return StatePending
	default:
		return StateInProgress
	}
}

// Purpose says what a code is for. A code is bound to one login and one
// purpose.
type Purpose string

const (
	PurposeInvite   Purpose = "invite"   // step 0: the invitation mail
	PurposeRecovery Purpose = "recovery" // step 2: mailed on request
	PurposeRedirect Purpose = "redirect" // step 6: proves the redirect address
	// PurposeReset is mailed for an active account (its owner at step 1,
	// or staff): it leads to a new password, through the charter when it
	// changed since the last acceptance.
	PurposeReset Purpose = "reset"
	// PurposeCharter is mailed by a charter campaign to an active account
	// whose accepted charter is not the current one: it leads to the
	// charter alone.
	PurposeCharter Purpose = "charter"
)

// CodeState is the state of a stored code record.
type CodeState string

const (
	CodeLive       CodeState = "live"
	CodeUsed       CodeState = "used"       // spent for its purpose
	CodeSuperseded CodeState = "superseded" // a newer one was issued
	CodeRevoked    CodeState = "revoked"    // staff revoked the dossier
	CodeFinished   CodeState = "finished"   // the activation completed
)

// Code is what the store keeps about a code; the code itself is kept only
// as an HMAC.
type Code struct {
	Login    string    `json:"login"`
	Purpose  Purpose   `json:"purpose"`
	Deadline time.Time `json:"deadline"`
	State    CodeState `json:"state"`
	Created  time.Time `json:"created"`
	// Target is the address the code was mailed to (redirect codes: the
	// redirect it proves).
	Target string `json:"target,omitempty"`
}

// MailKind names a message template.
type MailKind string

const (
	MailInvitation    MailKind = "invitation"     // login + code + command, next-day deadline
	MailRecovery      MailKind = "recovery"       // code for step 2, same-day deadline
	MailRedirect      MailKind = "redirect"       // code proving the redirect address
	MailActivated     MailKind = "activated"      // notice: the account is active
	MailAlreadyActive MailKind = "already-active" // someone asked a code for an active account (no longer sent: MailReset)
	MailReset         MailKind = "reset"          // code leading to a new password, same-day deadline
	MailPasswordReset MailKind = "password-reset" // notice: the password was changed by a reset
	MailCharter       MailKind = "charter"        // campaign: code leading to the new charter alone
)

// MailState is the delivery state of an outbox entry.
type MailState string

const (
	MailQueued    MailState = "queued"
	MailSent      MailState = "sent"
	MailFailed    MailState = "failed"    // gave up after the retry period
	MailCancelled MailState = "cancelled" // its code stopped working before it could be sent
)

// Mail is an outbox entry: what to send, not yet rendered. The store keeps
// it sealed (it carries a code) and drops Code once the mail is sent.
type Mail struct {
	ID          uint64    `json:"id"`
	Kind        MailKind  `json:"kind"`
	To          string    `json:"to"`
	Lang        string    `json:"lang"` // "fr", "en"; "" = both
	Login       string    `json:"login"`
	Name        string    `json:"name,omitempty"` // display name for the greeting
	Code        string    `json:"code,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`
	Address     string    `json:"address,omitempty"` // the redirect being verified, or chosen (activation notice)
	Mailbox     string    `json:"mailbox,omitempty"` // the institutional address (activation notice)
	KeepCopy    bool      `json:"keep_copy,omitempty"`
	Created     time.Time `json:"created"`
	State       MailState `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Sent        time.Time `json:"sent,omitzero"`
}

// Event is one line of the append-only audit log.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // "user", "staff:<comment> <fingerprint>", "system"
	Remote string    `json:"remote"` // client address
	Action string    `json:"action"` // e.g. "begin", "open", "charter", "finish"
	Login  string    `json:"login"`
	Detail string    `json:"detail,omitempty"` // never a code or a password
}

// Account is what the directory knows about a login.
type Account struct {
	DN            string
	Login         string
	GivenName     string
	Surname       string
	DisplayName   string
	Mail          string // institutional address, if any
	RecoveryMails []string
	Affiliations  []string
	Active        bool
	// Charter is the charter version the directory's consent value records
	// ("" when none).
	Charter string
}

// Activation is what Directory.Activate writes in one Modify.
type Activation struct {
	When           time.Time
	CharterVersion string
	Public         bool
	Redirect       string // "" = none
	KeepCopy       bool
}

// NewAccount is a pending account staff create.
type NewAccount struct {
	Login        string
	GivenName    string
	Surname      string
	RecoveryMail string
	Affiliation  string
}
