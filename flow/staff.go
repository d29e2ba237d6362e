package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// InviteOutcome is what Invite did for one login.
type InviteOutcome string

const (
	Invited         InviteOutcome = "invited"
	AlreadyInvited  InviteOutcome = "already-invited" // a live invitation exists; nothing sent
	AlreadyActive   InviteOutcome = "already-active"
	UnknownLogin    InviteOutcome = "unknown"
	NoRecoveryMail  InviteOutcome = "no-recovery-address"
	InvalidLoginOut InviteOutcome = "invalid-login"
)

// Invite is step 0 (staff): the invitation mail with a code valid until
// 23:59 the next day. With renew false, a login that already has a live
// invitation is left alone (imports are idempotent); with renew true a new
// code replaces the old one.
func (s *Service) Invite(ctx context.Context, login string, renew bool, c Client) (InviteOutcome, error) {
	mode := inviteKeep
	if renew {
		mode = inviteRenew
	}
	return s.inviteLogin(ctx, login, mode, c)
}

// Resend mails a new invitation code for login's dossier, replacing its
// earlier codes; it is audited as a resend. ErrNotFound: no dossier.
func (s *Service) Resend(ctx context.Context, login string, c Client) (InviteOutcome, error) {
	return s.inviteLogin(ctx, login, inviteResend, c)
}

// CheckInvite says what Invite with renew false would do for login (the
// directory is asked, the store read), changing nothing: Invited means
// it would invite. Import's dry run uses it.
func (s *Service) CheckInvite(ctx context.Context, login string) (InviteOutcome, error) {
	return s.inviteLogin(ctx, login, inviteCheck, Client{})
}

// inviteMode is what inviteLogin does.
type inviteMode int

const (
	inviteKeep   inviteMode = iota // a live invitation stays (import)
	inviteRenew                    // a new code replaces the old (invite)
	inviteResend                   // renew an existing dossier, audited as "resend"
	inviteCheck                    // decide as inviteKeep, change nothing
)

func (s *Service) inviteLogin(ctx context.Context, login string, mode inviteMode, c Client) (InviteOutcome, error) {
	login = NormalizeLogin(login)
	if !ValidLogin(login) {
		return InvalidLoginOut, nil
	}
	if mode == inviteResend { // no dossier: nothing to resend, whatever the directory says
		if err := s.store.View(func(tx Tx) error { _, err := tx.Dossier(login); return err }); err != nil {
			return "", err
		}
	}
	a, err := s.lookup(ctx, login)
	if errors.Is(err, ErrNoAccount) {
		return UnknownLogin, nil
	}
	if err != nil {
		return "", err
	}
	if mode == inviteCheck {
		var out InviteOutcome
		err := s.store.View(func(tx Tx) error {
			d, err := tx.Dossier(a.Login)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			out = cmp.Or(refusal(tx, a, d, false, s.clock.Now()), Invited)
			return nil
		})
		return out, err
	}
	return s.invite(a, mode, c)
}

// refusal is why an invitation of a (dossier d) sends nothing, or "".
// With renew false, a live invitation is a reason.
func refusal(tx Tx, a Account, d Dossier, renew bool, now time.Time) InviteOutcome {
	switch {
	case a.Active || !d.Activated.IsZero():
		return AlreadyActive
	case len(a.RecoveryMails) == 0:
		return NoRecoveryMail
	}
	if !renew {
		if live, err := tx.LiveCode(a.Login, PurposeInvite); err == nil && !now.After(live.Deadline) && d.Revoked.IsZero() {
			return AlreadyInvited
		}
	}
	return ""
}

func (s *Service) invite(a Account, mode inviteMode, c Client) (InviteOutcome, error) {
	now := s.clock.Now()
	action := "invite"
	if mode == inviteResend {
		action = "resend"
	}
	var out InviteOutcome
	err := s.store.Update(func(tx Tx) error {
		out = "" // fn may run again (Store.Update)
		d, err := tx.Dossier(a.Login)
		if err != nil && (mode == inviteResend || !errors.Is(err, ErrNotFound)) {
			return err
		}
		if out = refusal(tx, a, d, mode != inviteKeep, now); out != "" {
			return s.audit(tx, c, action, a.Login, string(out))
		}
		out = Invited
		refresh(&d, a, now)
		d.Revoked = time.Time{}
		deadline := NextDayDeadline(now, s.cfg.Location)
		d.Deadline = maxTime(d.Deadline, deadline)
		if err := s.issue(tx, &d, PurposeInvite, MailInvitation, deadline, a.RecoveryMails, d.Lang); err != nil {
			return err
		}
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		detail := string(out)
		if mode == inviteResend {
			detail = "new code mailed"
		}
		return s.audit(tx, c, action, a.Login, detail)
	})
	if err == nil && out == Invited {
		s.changed(a.Login)
	}
	return out, err
}

// Reset mails a reset code for the active account login to its recovery
// addresses (a helpdesk case), and returns them. It counts in the same
// per-login mail limit as step 1. ErrNoAccount: no such account;
// ErrNotActive: it needs an invitation instead.
func (s *Service) Reset(ctx context.Context, login string, c Client) ([]string, error) {
	login = NormalizeLogin(login)
	if !ValidLogin(login) {
		return nil, ErrInvalidLogin
	}
	a, err := s.lookup(ctx, login)
	if err != nil {
		return nil, err
	}
	if !a.Active {
		return nil, ErrNotActive
	}
	if len(a.RecoveryMails) == 0 {
		return nil, fmt.Errorf("%s: no recovery address: nothing sent", login)
	}
	if err := s.mailRate.Take(login, s.clock.Now()); err != nil {
		return nil, mailLimit(err)
	}
	err = s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(login)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return s.resetCode(tx, c, "reset", a, d)
	})
	if err != nil {
		return nil, err
	}
	s.changed(login)
	return a.RecoveryMails, nil
}

// Create adds a pending account to the directory (staff provisioning).
func (s *Service) Create(ctx context.Context, n NewAccount, c Client) (Account, error) {
	n.Login = NormalizeLogin(n.Login)
	if !ValidLogin(n.Login) {
		return Account{}, ErrInvalidLogin
	}
	if n.RecoveryMail != "" {
		m, ok := ValidMail(n.RecoveryMail)
		if !ok {
			return Account{}, ErrInvalidAddress
		}
		n.RecoveryMail = m
	}
	aff, err := CheckAffiliation(n.Affiliation)
	if err != nil {
		return Account{}, err
	}
	n.Affiliation = aff
	a, err := s.dir.Create(ctx, n)
	if err != nil {
		return Account{}, err
	}
	err = s.store.Update(func(tx Tx) error { return s.audit(tx, c, "create", n.Login, "pending account created") })
	return a, err
}

// Revoke kills the codes of login's dossier and ends any session on it.
// While the user's last step is under way it waits for its end (bounded by
// FinishTimeout), then finds the account active or not.
func (s *Service) Revoke(login string, c Client) error {
	login = NormalizeLogin(login)
	s.mu.Lock() // against startFinish: no revoke while the directory is being written
	for s.finishing[login] != nil {
		end := s.finishing[login]
		s.mu.Unlock()
		s.log.Info("revoke waits for the activation under way", "login", login)
		<-end
		s.mu.Lock()
	}
	err := s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(login)
		if err != nil {
			return err
		}
		if !d.Activated.IsZero() {
			return ErrAlreadyActivated
		}
		d.Revoked = s.clock.Now()
		d.Updated = d.Revoked
		forgetProgress(&d)
		if err := s.endCodes(tx, login, CodeRevoked); err != nil {
			return err
		}
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		return s.audit(tx, c, "revoke", login, "")
	})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.kick(login)
	s.changed(login)
	return nil
}

// forgetProgress drops every answer of a revoked dossier: whoever used its
// codes may not be its owner (a leaked invitation), so the next invitation
// starts again at step 2 — no charter, choices, redirect or password kept.
func forgetProgress(d *Dossier) {
	keep := *d
	*d = Dossier{Login: keep.Login, DN: keep.DN, GivenName: keep.GivenName, Surname: keep.Surname,
		DisplayName: keep.DisplayName, Mail: keep.Mail, RecoveryMails: keep.RecoveryMails,
		Affiliations: keep.Affiliations, Lang: keep.Lang, Deadline: keep.Deadline,
		Revoked: keep.Revoked, Created: keep.Created, Updated: keep.Updated}
}

// Status is everything staff see about one dossier.
type Status struct {
	Dossier Dossier `json:"dossier"`
	State   State   `json:"state"`
	Step    Step    `json:"step"`
	Busy    bool    `json:"busy"` // a session is on it now
	Mails   []Mail  `json:"mails"`
	Events  []Event `json:"events"`
}

// Status returns the dossier of login with its mails and audit trail.
func (s *Service) Status(login string) (Status, error) {
	login = NormalizeLogin(login)
	var st Status
	err := s.store.View(func(tx Tx) error {
		d, err := tx.Dossier(login)
		if err != nil {
			return err
		}
		st.Dossier = d
		if st.Mails, err = tx.Mails(login); err != nil {
			return err
		}
		return tx.LoginEvents(login, func(e Event) error {
			st.Events = append(st.Events, e)
			return nil
		})
	})
	if err != nil {
		return Status{}, err
	}
	for i := range st.Mails {
		st.Mails[i].Code = "" // staff never see a code
	}
	st.State = st.Dossier.StateAt(s.clock.Now())
	st.Step = st.Dossier.Next()
	st.Busy = s.Busy(login)
	return st, nil
}

// List returns the dossiers in state (all when ""), updated since since.
func (s *Service) List(state State, since time.Time) ([]Status, error) {
	now := s.clock.Now()
	var out []Status
	err := s.store.View(func(tx Tx) error {
		return tx.Dossiers(func(d Dossier) error {
			st := d.StateAt(now)
			if (state == "" || st == state) && !d.Updated.Before(since) {
				out = append(out, Status{Dossier: d, State: st, Step: d.Next()})
			}
			return nil
		})
	})
	for i := range out {
		out[i].Busy = s.Busy(out[i].Dossier.Login)
	}
	return out, err
}

// Events calls fn for each audit event after seq matching login ("" = all)
// and since.
func (s *Service) Events(after uint64, login string, since time.Time, fn func(Event) error) error {
	return s.store.View(func(tx Tx) error {
		if login == "" {
			return tx.Events(after, func(e Event) error {
				if !e.Time.Before(since) {
					return fn(e)
				}
				return nil
			})
		}
		return tx.LoginEvents(login, func(e Event) error {
			if e.Seq > after && !e.Time.Before(since) {
				return fn(e)
			}
			return nil
		})
	})
}

// Stats are the counts of the staff dashboard.
type Stats struct {
	States      map[State]int  `json:"states"`
	Steps       map[string]int `json:"steps"` // in-progress dossiers per step
	MailsQueued int            `json:"mails_queued"`
	MailsFailed int            `json:"mails_failed"`
	MailsSent   int            `json:"mails_sent"`
	PerDay      []DayCount     `json:"activations_per_day"`
}

// DayCount is the number of activations of one local day.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD, institution time
	Count int    `json:"count"`
}

// Stats counts dossiers per state and step, mails per state and activations
// per day.
func (s *Service) Stats() (Stats, error) {
	now := s.clock.Now()
	st := Stats{States: map[State]int{}, Steps: map[string]int{}}
	days := map[string]int{}
	err := s.store.View(func(tx Tx) error {
		return tx.Dossiers(func(d Dossier) error {
			state := d.StateAt(now)
			st.States[state]++
			if state == StateInProgress || state == StatePending {
				st.Steps[d.Next().String()]++
			}
			if state == StateActivated {
				days[d.Activated.In(s.cfg.Location).Format(time.DateOnly)]++
			}
			mails, err := tx.Mails(d.Login)
			for _, m := range mails {
				switch m.State {
				case MailQueued:
					st.MailsQueued++
				case MailFailed:
					st.MailsFailed++
				case MailSent:
					st.MailsSent++
				}
			}
			return err
		})
	})
	for day, n := range days {
		st.PerDay = append(st.PerDay, DayCount{day, n})
	}
	slices.SortFunc(st.PerDay, func(a, b DayCount) int {
		if a.Day < b.Day {
			return -1
		}
		return 1
	})
	return st, err
}
