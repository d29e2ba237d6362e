package flow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config is what the procedure needs to know about the institution.
type Config struct {
	Location          *time.Location // deadlines; default Europe/Paris
	StaffAffiliations []string       // who is told about the mailbox; default staff, employee, faculty
	Charter           []byte         // Markdown; its hash is the version
	Password          PasswordPolicy
	Institution       string
	DefaultLang       string // "fr" or "en"
	MailsPerHour      int    // per login, whatever the login; default 5
	// WrongCodes per client address per WrongCodesWindow (default 50 per
	// 15 min): generous, since one NAT address (a classroom) carries many
	// honest typos, while 80-bit codes make any such number of guesses
	// hopeless.
	WrongCodes       int
	WrongCodesWindow time.Duration // default 15 min
	// BeginsPerAddress bounds the logins one client address may try per
	// BeginsWindow (default 60 per 10 min, a lecture hall behind one NAT
	// address): one connection cannot mail every account of the directory.
	BeginsPerAddress int
	BeginsWindow     time.Duration
	// Metrics counts steps entered and activations; nil counts nothing.
	Metrics Metrics
}

func (c *Config) defaults() error {
	if c.Location == nil {
		loc, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			return fmt.Errorf("load time zone: %w", err)
		}
		c.Location = loc
	}
	if c.StaffAffiliations == nil {
		c.StaffAffiliations = []string{"staff", "employee", "faculty"}
	}
	if c.Password == (PasswordPolicy{}) {
		c.Password = DefaultPasswordPolicy
	}
	c.DefaultLang = cmp.Or(c.DefaultLang, "fr")
	c.MailsPerHour = cmp.Or(c.MailsPerHour, 5)
	c.WrongCodes = cmp.Or(c.WrongCodes, 50)
	c.WrongCodesWindow = cmp.Or(c.WrongCodesWindow, 15*time.Minute)
	c.BeginsPerAddress = cmp.Or(c.BeginsPerAddress, 60)
	c.BeginsWindow = cmp.Or(c.BeginsWindow, 10*time.Minute)
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return nil
}

// CharterVersion is the content hash of a charter text.
func CharterVersion(charter []byte) string {
	h := sha256.Sum256(charter)
	return "sha256:" + hex.EncodeToString(h[:8])
}

// Client says who is calling an operation, for the audit log and the
// language of mails.
type Client struct {
	Remote string // address of the SSH client
	Actor  string // "user", or "staff:<name> <fingerprint>"
	Lang   string // the language the user reads, "fr" or "en"
}

func (c Client) actor() string { return cmp.Or(c.Actor, "user") }

// Service runs the procedure. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store Store
	dir   Directory
	clock Clock
	log   *slog.Logger

	mailRate *limiter // per login: mails sent on request at step 1
	// redirectRate is per login too, but apart: strangers typing a login at
	// step 1 must not use up the owner's redirect mails.
	redirectRate *limiter
	beginRate    *limiter // per client address: logins tried
	wrongRate    *limiter // per client address: wrong codes

	mu        sync.Mutex
	sessions  map[string]*Session // login → the session editing it
	finishing map[string]bool     // logins whose Finish is talking to the directory
	subs      map[chan string]struct{}
}

// New returns a Service. cfg's zero fields get their defaults.
func New(cfg Config, store Store, dir Directory, clock Clock, log *slog.Logger) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg: cfg, store: steppedStore{store, cfg.Metrics}, dir: dir, clock: clock, log: log,
		mailRate:     newLimiter(cfg.MailsPerHour, time.Hour),
		redirectRate: newLimiter(cfg.MailsPerHour, time.Hour),
		beginRate:    newLimiter(cfg.BeginsPerAddress, cfg.BeginsWindow),
		wrongRate:    newLimiter(cfg.WrongCodes, cfg.WrongCodesWindow),
		sessions:     map[string]*Session{},
		finishing:    map[string]bool{},
		subs:         map[chan string]struct{}{},
	}, nil
}

// Config returns the service's configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// CharterVersion is the version of the configured charter.
func (s *Service) CharterVersion() string { return CharterVersion(s.cfg.Charter) }

// Now is the service clock's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

// Subscribe returns a channel that receives the login of every dossier that
// changes, and a function to stop. Slow readers miss updates, never block.
func (s *Service) Subscribe() (<-chan string, func()) {
	ch := make(chan string, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Service) changed(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- login:
		default:
		}
	}
}

// lookup asks the directory, turning transport failures into ErrUnavailable.
// The login comes back in the one spelling every dossier, code and mail is
// keyed by (a directory may spell a uid "JDupont"; its writes use the DN).
func (s *Service) lookup(ctx context.Context, login string) (Account, error) {
	a, err := s.dir.Lookup(ctx, login)
	a.Login = NormalizeLogin(a.Login)
	if err != nil && !errors.Is(err, ErrNoAccount) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil && !errors.Is(err, ErrNoAccount) {
		s.log.Warn("directory lookup", "login", login, "err", err)
	}
	return a, err
}

func (s *Service) lang(c Client, d *Dossier) string {
	return cmp.Or(c.Lang, d.Lang, s.cfg.DefaultLang)
}

// refresh copies the directory's view of the account into the dossier.
func refresh(d *Dossier, a Account, now time.Time) {
	d.Login, d.DN = a.Login, a.DN
	d.GivenName, d.Surname, d.DisplayName, d.Mail = a.GivenName, a.Surname, a.DisplayName, a.Mail
	d.RecoveryMails, d.Affiliations = a.RecoveryMails, a.Affiliations
	if d.Created.IsZero() {
		d.Created = now
	}
	d.Updated = now
}

// issue stores a fresh code for d and queues one mail per address.
func (s *Service) issue(tx Tx, d *Dossier, p Purpose, kind MailKind, deadline time.Time, to []string, lang string) error {
	code := NewCode()
	now := s.clock.Now()
	target := ""
	if p == PurposeRedirect {
		target = d.Redirect
	}
	if err := tx.PutCode(code, Code{Login: d.Login, Purpose: p, Deadline: deadline, State: CodeLive, Created: now, Target: target}); err != nil {
		return err
	}
	for _, addr := range to {
		m := Mail{Kind: kind, To: addr, Lang: lang, Login: d.Login, Name: d.DisplayName, Code: code, Deadline: deadline, Address: target, Created: now}
		if _, err := tx.Enqueue(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) audit(tx Tx, c Client, action, login, detail string) error {
	return tx.Audit(Event{Time: s.clock.Now(), Actor: c.actor(), Remote: c.Remote, Action: action, Login: login, Detail: detail})
}

// Begin is step 1: a login was typed. When it names a pending account, a
// code valid until 23:59 today goes to its recovery addresses. The answer is
// the same whether the login exists, is pending or is already active; only
// an outage or a rate limit (counted per login, whatever the login) differ.
func (s *Service) Begin(ctx context.Context, login string, c Client) error {
	login = NormalizeLogin(login)
	if !ValidLogin(login) {
		return ErrInvalidLogin
	}
	now := s.clock.Now()
	if w := s.beginRate.Blocked(c.Remote, now); w > 0 {
		return &RateLimitError{Wait: w.Round(time.Second) + time.Second}
	}
	if err := s.mailRate.Take(login, now); err != nil {
		return err
	}
	s.beginRate.Hit(c.Remote, now)
	a, err := s.lookup(ctx, login)
	if errors.Is(err, ErrNoAccount) {
		// What was typed is not recorded: it names no account and may be a
		// code or a password typed in the wrong field.
		return s.store.Update(func(tx Tx) error { return s.audit(tx, c, "begin", "", "unknown login: nothing sent") })
	}
	if err != nil {
		return err
	}
	err = s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(login)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if a.Active {
			for _, to := range a.RecoveryMails {
				m := Mail{Kind: MailAlreadyActive, To: to, Lang: s.lang(c, &d), Login: login, Name: a.DisplayName, Created: now}
				if _, err := tx.Enqueue(m); err != nil {
					return err
				}
			}
			return s.audit(tx, c, "begin", login, "already active: notice sent")
		}
		if !d.Revoked.IsZero() {
			return s.audit(tx, c, "begin", login, "revoked: nothing sent")
		}
		if len(a.RecoveryMails) == 0 {
			return s.audit(tx, c, "begin", login, "no recovery address: nothing sent")
		}
		refresh(&d, a, now)
		deadline := SameDayDeadline(now, s.cfg.Location)
		d.Deadline = maxTime(d.Deadline, deadline)
		if err := s.issue(tx, &d, PurposeRecovery, MailRecovery, deadline, a.RecoveryMails, s.lang(c, &d)); err != nil {
			return err
		}
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		return s.audit(tx, c, "begin", login, "recovery code mailed")
	})
	if err == nil {
		s.changed(login)
	}
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// codeError turns a code record into the error its state calls for, or nil
// when it is live and in time.
func codeError(c Code, now time.Time) error {
	switch c.State {
	case CodeUsed:
		return ErrCodeUsed
	case CodeSuperseded:
		return ErrCodeSuperseded
	case CodeRevoked:
		return ErrCodeRevoked
	case CodeFinished:
		return ErrCodeFinished
	}
	if now.After(c.Deadline) {
		return ErrCodeExpired
	}
	return nil
}

// findCode normalizes and looks up a typed code, counting wrong ones
// against the client address.
func (s *Service) findCode(code string, c Client) (string, Code, error) {
	now := s.clock.Now()
	if w := s.wrongRate.Blocked(c.Remote, now); w > 0 {
		return "", Code{}, &RateLimitError{Wait: w.Round(time.Second) + time.Second}
	}
	norm, ok := NormalizeCode(code)
	var rec Code
	err := ErrCodeWrong
	if ok {
		err = s.store.View(func(tx Tx) error {
			var err error
			rec, err = tx.Code(norm)
			return err
		})
		if errors.Is(err, ErrNotFound) {
			err = ErrCodeWrong
		}
	}
	if err == nil {
		err = codeError(rec, now)
	}
	if errors.Is(err, ErrCodeWrong) {
		s.wrongRate.Hit(c.Remote, now)
	}
	return norm, rec, err
}

// Open starts a session on the dossier a code belongs to: an invitation or
// recovery code proves the recovery address (step 2), a redirect code
// proves the redirect (step 6). The returned session must be closed.
func (s *Service) Open(ctx context.Context, code string, c Client) (*Session, error) {
	norm, rec, err := s.findCode(code, c)
	if err != nil {
		return nil, err
	}
	if rec.Purpose == PurposeRedirect {
		return nil, s.confirmRedirect(norm, rec, c)
	}
	x, err := s.acquire(rec.Login, c)
	if err != nil {
		return nil, err
	}
	err = x.update("open", string(rec.Purpose), func(tx Tx, d *Dossier) error {
		if d.Opened.IsZero() {
			d.Opened = s.clock.Now()
		}
		return nil
	})
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// confirmRedirect verifies the redirect a code was mailed to, without
// opening the dossier: whoever holds a redirect code may be a stranger
// whose address the user mistyped.
func (s *Service) confirmRedirect(norm string, rec Code, c Client) error {
	now := s.clock.Now()
	err := s.store.Update(func(tx Tx) error {
		d, err := tx.Dossier(rec.Login)
		if err != nil {
			return err
		}
		if !d.Revoked.IsZero() {
			return ErrCodeRevoked
		}
		if err := at(&d, StepVerifyRedirect); err != nil {
			return err
		}
		if err := verifyRedirect(tx, &d, norm, rec); err != nil {
			return err
		}
		d.Updated = now
		if err := tx.PutDossier(d); err != nil {
			return err
		}
		return s.audit(tx, c, "verify-redirect", d.Login, "by reconnecting with the code")
	})
	if err != nil {
		return err
	}
	s.changed(rec.Login)
	return ErrRedirectConfirmed
}

func verifyRedirect(tx Tx, d *Dossier, norm string, rec Code) error {
	if rec.Purpose != PurposeRedirect || rec.Login != d.Login || !equalFoldMail(rec.Target, d.Redirect) {
		return ErrCodeWrong
	}
	if d.Opened.IsZero() { // the redirect mail was sent after step 2, so this cannot happen unless forged
		return ErrOrder
	}
	d.RedirectVerified = true
	return tx.SetCodeState(norm, CodeUsed)
}

func (s *Service) acquire(login string, c Client) (*Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.sessions[login]; old != nil {
		return nil, ErrBusy
	}
	x := &Session{svc: s, login: login, client: c, done: make(chan struct{})}
	s.sessions[login] = x
	return x, nil
}

// kick ends the session editing login, if any.
func (s *Service) kick(login string) {
	s.mu.Lock()
	x := s.sessions[login]
	s.mu.Unlock()
	if x != nil {
		x.Close()
	}
}

// Busy tells whether a session is editing login now.
func (s *Service) Busy(login string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[login] != nil
}
