package flow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Session is one front end editing one dossier. Only one session edits a
// dossier at a time; a second Open gets ErrBusy until this one is closed.
type Session struct {
	svc   *Service
	login string
	done  chan struct{}
	once  sync.Once

	mu     sync.Mutex // the front end may switch language while an operation runs
	client Client     // Lang: the language the user reads, never ""
	// release frees the other nodes' lock (Config.Locks), if any; svc.mu
	// guards it.
	release func()

	// checked is the last password check's verdict.
	checked checkCache
}

// who is the client, as of now.
func (x *Session) who() Client {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.client
}

// Lang is the language to show: the client's LANG or the user's last
// switch, else the language saved in the dossier, else the default.
func (x *Session) Lang() string { return x.who().Lang }

// Login is the login of the dossier.
func (x *Session) Login() string { return x.login }

// Done is closed when the session ends: Close, or staff revoked the dossier.
func (x *Session) Done() <-chan struct{} { return x.done }

// Close releases the dossier for another session. It is idempotent.
func (x *Session) Close() {
	x.once.Do(func() {
		close(x.done)
		s := x.svc
		s.mu.Lock()
		release := x.release
		x.release = nil
		s.mu.Unlock()
		if release != nil { // first: a new session of this node then finds it free
			release()
		}
		s.mu.Lock()
		if s.sessions[x.login] == x {
			delete(s.sessions, x.login)
		}
		s.mu.Unlock()
	})
}

func (x *Session) closed() bool {
	select {
	case <-x.done:
		return true
	default:
		return false
	}
}

// Dossier returns the dossier as stored now.
func (x *Session) Dossier() (Dossier, error) {
	var d Dossier
	err := x.svc.store.View(func(tx Tx) error {
		var err error
		d, err = tx.Dossier(x.login)
		return err
	})
	return d, err
}

// SetLang records the language the user reads, for the mails to come.
func (x *Session) SetLang(lang string) error {
	x.mu.Lock()
	x.client.Lang = lang
	x.mu.Unlock()
	return x.update("", "", func(_ Tx, d *Dossier) error { d.Lang = lang; return nil })
}

// update runs fn on the dossier in one transaction, with the checks every
// step shares, and records an audit event when action is set.
func (x *Session) update(action, detail string, fn func(Tx, *Dossier) error) error {
	if x.closed() {
		return ErrClosed
	}
	s := x.svc
	now := s.clock.Now()
	err := s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(x.login)
		if err != nil {
			return fmt.Errorf("dossier %s: %w", x.login, err)
		}
		if !d.Revoked.IsZero() {
			return ErrCodeRevoked
		}
		if (d.Activated.IsZero() || d.Resetting()) && now.After(d.Deadline) {
			return ErrCodeExpired
		}
		if err := fn(tx, &d); err != nil {
			return err
		}
		d.Updated = now
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		if action == "" {
			return nil
		}
		return s.audit(tx, x.who(), action, x.login, detail)
	})
	if err == nil {
		s.changed(x.login)
	}
	return err
}

// at checks that step is open: every step before it is done and the
// account is not active yet.
func at(d *Dossier, step Step) error {
	switch n := d.Next(); {
	case d.Resetting() && step != StepCharter && step != StepPassword:
		return ErrOrder // a reset asks for nothing else
	case n == StepDone:
		return ErrAlreadyActivated
	case n < step:
		return ErrOrder
	}
	return nil
}

// AcceptCharter is step 3: accepted must be true (the box was ticked).
func (x *Session) AcceptCharter(accepted bool) error {
	if !accepted {
		return ErrNotAccepted
	}
	v := x.svc.CharterVersion()
	only := false
	err := x.update("charter", "accepted "+v, func(_ Tx, d *Dossier) error {
		if err := at(d, StepCharter); err != nil {
			return err
		}
		d.CharterVersion, d.CharterAcceptedAt = v, x.svc.clock.Now()
		only = d.CharterOnly
		return nil
	})
	if err != nil || !only {
		return err
	}
	return x.renewCharter(v)
}

// renewCharter ends a campaign's reset: the charter version v, just
// accepted, goes to the directory's consent value, and nothing else.
func (x *Session) renewCharter(v string) error {
	s := x.svc
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FinishTimeout)
	defer cancel()
	a, err := s.lookup(ctx, x.login)
	if err != nil {
		return err
	}
	if !a.Active {
		return ErrCodeRevoked // deactivated in the directory meanwhile
	}
	if err := s.acceptCharter(ctx, a, v); err != nil {
		return err
	}
	return x.record("charter-renewed", func(tx Tx, d *Dossier) error {
		d.ResetOpened, d.ResetCharter, d.CharterOnly, d.Renewed = time.Time{}, false, false, "charter"
		return s.endCodes(tx, d.Login, CodeUsed, PurposeCharter)
	})
}

// ChooseDirectory is step 4: appear in the public directory or not.
func (x *Session) ChooseDirectory(public bool) error {
	return x.update("directory", fmt.Sprintf("public=%t", public), func(_ Tx, d *Dossier) error {
		if err := at(d, StepDirectory); err != nil {
			return err
		}
		d.DirectoryChosen, d.PublicDirectory = true, public
		return nil
	})
}

// ChooseMailbox is step 5: redirect "" means no redirect. A redirect that
// differs from every recovery address gets a code mailed to it (step 6).
func (x *Session) ChooseMailbox(redirect string, keepCopy bool) error {
	if redirect != "" {
		var err error
		if redirect, err = CheckMail(redirect); err != nil {
			return err
		}
	}
	s := x.svc
	detail := fmt.Sprintf("redirect=%t keep_copy=%t", redirect != "", keepCopy)
	if redirect != "" { // the helpdesk sees a mistyped address, and its correction
		detail += " to=" + redirect
	}
	return x.update("mailbox", detail, func(tx Tx, d *Dossier) error {
		if err := at(d, StepMailbox); err != nil {
			return err
		}
		if loops(d.Mail, redirect) {
			return ErrRedirectLoop
		}
		if !equalFoldMail(d.Redirect, redirect) || !d.MailboxChosen {
			d.RedirectVerified = false
			if err := s.endCodes(tx, d.Login, CodeSuperseded, PurposeRedirect); err != nil {
				return err
			}
		}
		// A copy needs a mailbox to be kept in.
		d.MailboxChosen, d.Redirect, d.KeepCopy = true, redirect, keepCopy && redirect != "" && d.Mail != ""
		if d.NeedsRedirectVerification() && !d.RedirectVerified {
			// The same address confirmed again (back from step 6): the code
			// already mailed stays good, so the user may still type it.
			if live, err := tx.LiveCode(d.Login, PurposeRedirect); err == nil && equalFoldMail(live.Target, redirect) && !s.clock.Now().After(live.Deadline) {
				return nil
			}
			if err := s.redirectRate.Take(d.Login, s.clock.Now()); err != nil {
				return mailLimit(err)
			}
			return s.issue(tx, d, PurposeRedirect, MailRedirect, d.Deadline, []string{redirect}, s.lang(x.who(), d))
		}
		return nil
	})
}

// ResendRedirect mails a new code to the redirect address (the old one
// stops working).
func (x *Session) ResendRedirect() error {
	s := x.svc
	return x.update("resend-redirect", "", func(tx Tx, d *Dossier) error {
		if err := at(d, StepVerifyRedirect); err != nil {
			return err
		}
		if !d.NeedsRedirectVerification() || d.RedirectVerified {
			return ErrOrder
		}
		if err := s.redirectRate.Take(d.Login, s.clock.Now()); err != nil {
			return mailLimit(err)
		}
		return s.issue(tx, d, PurposeRedirect, MailRedirect, d.Deadline, []string{d.Redirect}, s.lang(x.who(), d))
	})
}

// VerifyRedirect is step 6: the code mailed to the redirect address.
func (x *Session) VerifyRedirect(code string) error {
	// Already confirmed meanwhile (the code used as ssh CODE@host while
	// this screen stayed open): nothing left to do here.
	if d, err := x.Dossier(); err == nil && d.RedirectVerified && d.Next() > StepVerifyRedirect {
		return nil
	}
	norm, rec, err := x.svc.findCode(CodeFromPaste(code), x.who())
	if errors.Is(err, ErrCodeWrong) {
		return ErrRedirectCodeWrong
	}
	if err != nil {
		return err
	}
	if rec.Login != x.login || rec.Purpose != PurposeRedirect {
		x.svc.wrongCode(x.who())
		return ErrRedirectCodeWrong
	}
	return x.update("verify-redirect", "", func(tx Tx, d *Dossier) error {
		if err := at(d, StepVerifyRedirect); err != nil {
			return err
		}
		return x.svc.verifyRedirect(tx, d, norm, rec)
	})
}

// CheckPassword evaluates a candidate password against the policy, with the
// login, names and institution as what a guesser tries first.
// At most a few checks run at once on the whole server (passwordChecks);
// the session's last verdict is kept, by the password's hash.
func (x *Session) CheckPassword(pw string) PasswordCheck {
	key := sha256.Sum256([]byte(pw))
	if c, ok := x.checked.get(key); ok {
		return c
	}
	d, _ := x.Dossier()
	x.svc.checks <- struct{}{}
	c := x.svc.cfg.Password.Check(pw, x.login, d.GivenName, d.Surname, d.DisplayName, x.svc.cfg.Institution)
	<-x.svc.checks
	x.checked.put(key, c)
	return c
}

// WatchPassword returns the live checker of a password field for this
// session (see PasswordWatch).
func (x *Session) WatchPassword() *PasswordWatch {
	return newPasswordWatch(x.CheckPassword, PasswordPause, time.Sleep, time.Now)
}

// Finish is step 7 → 8: the directory sets the password, then the account
// is written and marked active. When the password was already accepted (a
// crash or an outage in between), pw is ignored and only the rest is done.
func (x *Session) Finish(ctx context.Context, pw string) error {
	if x.closed() {
		return ErrClosed
	}
	s := x.svc
	d, err := x.startFinish()
	if err != nil {
		return err
	}
	defer x.endFinish()
	// From here the last step is one unit: the directory writes run to
	// their end (each bounded by the directory's own timeout, the whole by
	// FinishTimeout) and are recorded, whatever becomes of the session
	// (a disconnect cancels ctx and closes x).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FinishTimeout)
	defer cancel()
	a, err := s.lookup(ctx, x.login)
	if err != nil {
		return err
	}
	if d.Resetting() {
		return x.reset(ctx, a, d, pw)
	}
	var pwSet time.Time // the password set now, recorded with the activation
	if d.PasswordSet.IsZero() {
		if a.Active {
			return ErrAlreadyActivated
		}
		if err := x.setPassword(ctx, a, pw); err != nil {
			return err
		}
		pwSet = s.clock.Now()
	}
	return x.complete(ctx, a, d, pwSet)
}

// setPassword checks pw against the policy and has the directory set it.
func (x *Session) setPassword(ctx context.Context, a Account, pw string) error {
	s := x.svc
	if !x.CheckPassword(pw).OK() {
		return ErrPasswordPolicy
	}
	if err := s.dir.SetPassword(ctx, a, pw); err != nil {
		var refused *PasswordRefusedError
		if errors.As(err, &refused) {
			_ = x.update("password-refused", "", func(Tx, *Dossier) error { return nil })
			return err
		}
		logDirectory(s.log, "set password", x.login, err)
		return fmt.Errorf("%w: set password: %w", ErrUnavailable, err)
	}
	return nil
}

// reset ends a password reset: the charter accepted again (when it was
// due) goes to the directory's consent value, then the new password; the
// state and the other choices stay as they are. A notice mail follows.
func (x *Session) reset(ctx context.Context, a Account, d Dossier, pw string) error {
	s := x.svc
	if !a.Active {
		return ErrCodeRevoked // deactivated in the directory meanwhile
	}
	if d.ResetCharter {
		if err := s.acceptCharter(ctx, a, d.CharterVersion); err != nil {
			return err
		}
	}
	if err := x.setPassword(ctx, a, pw); err != nil {
		return err
	}
	now := s.clock.Now()
	return x.record("password-reset", func(tx Tx, d *Dossier) error {
		d.ResetOpened, d.ResetCharter, d.CharterOnly, d.PasswordSet, d.PasswordReset, d.Renewed = time.Time{}, false, false, now, now, "password"
		if err := s.endCodes(tx, d.Login, CodeUsed, PurposeReset, PurposeCharter); err != nil {
			return err
		}
		for _, to := range d.RecoveryMails {
			m := Mail{Kind: MailPasswordReset, To: to, Lang: s.lang(x.who(), d), Login: d.Login, Name: d.DisplayName, Created: now}
			if _, err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// startFinish checks, before anything reaches the directory, that the
// dossier is at step 7, neither revoked nor past its deadline, and marks
// it as finishing: a Revoke meanwhile waits for the end, so the directory
// and the dossier never disagree.
func (x *Session) startFinish() (Dossier, error) {
	s := x.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := x.Dossier()
	switch {
	case err != nil:
		return d, err
	case !d.Revoked.IsZero():
		return d, ErrCodeRevoked
	}
	if err := at(&d, StepPassword); err != nil {
		return d, err
	}
	if d.Next() != StepPassword {
		return d, ErrOrder
	}
	if s.clock.Now().After(d.Deadline) {
		return d, ErrCodeExpired
	}
	s.finishing[x.login] = make(chan struct{})
	return d, nil
}

func (x *Session) endFinish() {
	x.svc.mu.Lock()
	close(x.svc.finishing[x.login])
	delete(x.svc.finishing, x.login)
	x.svc.mu.Unlock()
}

// record writes what the directory already holds (the password, the
// activation): LDAP is the truth, so neither the deadline passing nor the
// session closing meanwhile may keep it out of the dossier.
func (x *Session) record(action string, fn func(Tx, *Dossier) error) error {
	s := x.svc
	err := s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(x.login)
		if err != nil {
			return err
		}
		if err := fn(tx, &d); err != nil {
			return err
		}
		d.Updated = s.clock.Now()
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		if action == "" { // fn made its own
			return nil
		}
		return s.audit(tx, x.who(), action, x.login, "")
	})
	if err == nil {
		s.changed(x.login)
	}
	return err
}

// complete writes the activation of d (as startFinish read it: the
// finishing mark keeps every other writer off) to the directory, then
// records it. pwSet,
// when set, is when the directory took the password just now: it is
// recorded in the same transaction (one commit, not two), or alone when the
// activation fails, so that the password is not asked again.
func (x *Session) complete(ctx context.Context, a Account, d Dossier, pwSet time.Time) error {
	s := x.svc
	setPw := func(tx Tx, d *Dossier) error {
		if pwSet.IsZero() {
			return nil
		}
		d.PasswordSet = pwSet
		return s.audit(tx, x.who(), "password-set", x.login, "")
	}
	now := s.clock.Now()
	act := Activation{When: now.In(s.cfg.Location), CharterVersion: d.CharterVersion, Public: d.PublicDirectory, Redirect: d.Redirect, KeepCopy: d.KeepCopy}
	if err := s.dir.Activate(ctx, a, act); err != nil {
		logDirectory(s.log, "activate", x.login, err)
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: activate: %w", ErrUnavailable, err)
		}
		if !pwSet.IsZero() {
			err = cmp.Or(x.record("", setPw), err)
		}
		return err
	}
	return x.record("activated", func(tx Tx, d *Dossier) error {
		if err := setPw(tx, d); err != nil {
			return err
		}
		d.Activated = now
		if err := s.endCodes(tx, d.Login, CodeFinished); err != nil {
			return err
		}
		for _, to := range d.RecoveryMails {
			m := Mail{Kind: MailActivated, To: to, Lang: s.lang(x.who(), d), Login: d.Login, Name: d.DisplayName, Created: now,
				Address: d.Redirect, Mailbox: d.Mail, KeepCopy: d.KeepCopy}
			if _, err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// acceptCharter writes the consent to charter version v in a's entry.
func (s *Service) acceptCharter(ctx context.Context, a Account, v string) error {
	err := s.dir.AcceptCharter(ctx, a, v)
	if err == nil {
		return nil
	}
	logDirectory(s.log, "accept charter", a.Login, err)
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrMisconfigured) {
		err = fmt.Errorf("%w: accept charter: %w", ErrUnavailable, err)
	}
	return err
}
