package flow

import (
	"context"
	"errors"
)

// CharterCount is how the accounts activated here stand with the current
// charter (a charter campaign's status).
type CharterCount struct {
	Version  string   `json:"version"`  // the current charter's
	Active   int      `json:"active"`   // activated dossiers
	Current  int      `json:"current"`  // of which accepted Version
	Outdated []string `json:"outdated"` // the logins of the others
}

// CharterStatus counts the activated dossiers that accepted the current
// charter version, and lists the others.
func (s *Service) CharterStatus() (CharterCount, error) {
	c := CharterCount{Version: s.CharterVersion(), Outdated: []string{}}
	err := s.store.View(func(tx Tx) error {
		return tx.Dossiers(func(d Dossier) error {
			if d.Activated.IsZero() {
				return nil
			}
			c.Active++
			if d.CharterVersion == c.Version && !d.CharterOnly {
				c.Current++
			} else {
				c.Outdated = append(c.Outdated, d.Login)
			}
			return nil
		})
	})
	return c, err
}

// RemindOutcome is what CharterRemind did for one login.
type RemindOutcome string

const (
	Reminded      RemindOutcome = "reminded"
	WouldRemind   RemindOutcome = "would-remind" // dry run
	RemindLimited RemindOutcome = "mail-limit"   // the login's mail limit is reached: try later
	RemindNoMail  RemindOutcome = "no-recovery-address"
	RemindGone    RemindOutcome = "not-active" // no longer active, or unknown, in the directory
)

// Remind is the outcome of one login of a campaign.
type Remind struct {
	Login   string        `json:"login"`
	Outcome RemindOutcome `json:"outcome"`
}

// CharterRemind mails every activated account that has not accepted the
// current charter a code valid until 23:59 the next day that leads to the
// charter alone, through the outbox and within the per-login mail limit.
// dryRun asks the directory and changes nothing.
func (s *Service) CharterRemind(ctx context.Context, dryRun bool, c Client) ([]Remind, error) {
	st, err := s.CharterStatus()
	if err != nil {
		return nil, err
	}
	out := []Remind{}
	for _, login := range st.Outdated {
		a, err := s.lookup(ctx, login)
		r := Remind{Login: login}
		switch {
		case errors.Is(err, ErrNoAccount) || err == nil && !a.Active:
			r.Outcome = RemindGone
		case err != nil:
			return out, err
		case len(a.RecoveryMails) == 0:
			r.Outcome = RemindNoMail
		case dryRun:
			r.Outcome = WouldRemind
		default:
			var rl *RateLimitError
			if err := s.mailRate.Take(login, s.clock.Now()); errors.As(err, &rl) {
				r.Outcome = RemindLimited
				break
			} else if err != nil {
				return out, err
			}
			r.Outcome = Reminded
			err := s.store.Update(func(tx Tx) error {
				d, err := tx.Dossier(login)
				if err != nil {
					return err
				}
				now := s.clock.Now()
				refresh(&d, a, now)
				deadline := NextDayDeadline(now, s.cfg.Location)
				d.Deadline = deadline
				if err := s.issue(tx, &d, PurposeCharter, MailCharter, deadline, a.RecoveryMails, s.lang(c, &d)); err != nil {
					return err
				}
				if err := tx.PutDossier(d); err != nil {
					return err
				}
				return s.audit(tx, c, "charter-remind", login, "code mailed for charter "+st.Version)
			})
			if err != nil {
				return out, err
			}
			s.changed(login)
		}
		out = append(out, r)
	}
	return out, nil
}
