package flow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Config is what the procedure needs to know about the institution.
type Config struct {
	Location          *time.Location // deadlines; default Europe/Paris
	StaffAffiliations []string       // who is told about the mailbox; default staff, employee, faculty
	Charter           []byte         // Markdown; its hash is the version
	Password          PasswordPolicy
	Institution       string
	DefaultLang       string // "fr" or "en"
	// Helpdesk ([activation] helpdesk, free text) is shown on every dead
	// end (see DeadEnd).
	Helpdesk     string
	MailsPerHour int // per login, whatever the login; default 5
	// WrongCodes per client address per WrongCodesWindow (default 50 per
	// 15 min): generous, since one NAT address (a classroom) carries many
	// honest typos, while 80-bit codes make any such number of guesses
	// hopeless.
	WrongCodes       int
	WrongCodesWindow time.Duration // default 15 min
	// BeginsPerAddress bounds the logins one client address (its Source)
	// may try per BeginsWindow (default 60 per 10 min, a lecture hall
	// behind one NAT address): one connection cannot mail every account of
	// the directory.
	BeginsPerAddress int
	BeginsWindow     time.Duration
	// Metrics counts steps entered and activations; nil counts nothing.
	Metrics Metrics
	// LoginsPerMinute bounds the logins the whole server answers in a
	// minute, whatever the addresses (default 600: ten a second, far above
	// the busiest first day of term, well below what floods the directory
	// and the mail queue).
	LoginsPerMinute int
	// FinishTimeout bounds the last step's directory writes once started
	// (default 2 min; each request is bounded by the directory's own
	// timeout too). They run to their end even if the user disconnects.
	FinishTimeout time.Duration
	// Locks, when several nodes share the store, keeps a dossier open on
	// one node at a time; nil for a single node.
	Locks Locks
	// Limits, when several nodes share the store, counts the rate limits
	// across them; nil counts in this node's memory.
	Limits Counter
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
	c.LoginsPerMinute = cmp.Or(c.LoginsPerMinute, 600)
	c.FinishTimeout = cmp.Or(c.FinishTimeout, 2*time.Minute)
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
	beginRate    *limiter // per client Source: logins tried
	loginRate    *limiter // server-wide: logins tried
	wrongRate    *limiter // per client Source: wrong codes
	refusedRate  *limiter // per login: refused codes written to the audit

	mu        sync.Mutex
	unknown   int                      // logins typed that name no account, not yet in the audit
	unknownAt time.Time                // when they were last written there
	sessions  map[string]*Session      // login → the session editing it
	finishing map[string]chan struct{} // logins whose Finish is under way → closed at its end
	subs      map[chan string]struct{}
	// checks holds a slot per password check running (passwordChecks).
	checks chan struct{}
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
		checks:       passwordChecks(),
		mailRate:     newLimiter("mail", cfg.MailsPerHour, time.Hour, cfg.Limits),
		redirectRate: newLimiter("redirect", cfg.MailsPerHour, time.Hour, cfg.Limits),
		beginRate:    newLimiter("begin", cfg.BeginsPerAddress, cfg.BeginsWindow, cfg.Limits),
		loginRate:    newLimiter("logins", cfg.LoginsPerMinute, time.Minute, cfg.Limits),
		wrongRate:    newLimiter("wrong", cfg.WrongCodes, cfg.WrongCodesWindow, cfg.Limits),
		refusedRate:  newLimiter("refused", 1, time.Minute, cfg.Limits),
		sessions:     map[string]*Session{},
		finishing:    map[string]chan struct{}{},
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

// Changed tells the subscribers that login's dossier changed elsewhere
// (another node sharing the store).
func (s *Service) Changed(login string) { s.changed(login) }

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
	return s.find(ctx, login, login)
}

// find is lookup for a login typed at the prompt by anyone: the log names
// it as logged ("" for nothing), since what was typed there may be a
// password typed in the wrong field.
func (s *Service) find(ctx context.Context, login, logged string) (Account, error) {
	a, err := s.dir.Lookup(ctx, login)
	a.Login = NormalizeLogin(a.Login)
	if err != nil && !errors.Is(err, ErrNoAccount) && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil && !errors.Is(err, ErrNoAccount) {
		logDirectory(s.log, "directory lookup", logged, err)
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
	target, name := "", d.DisplayName
	if p == PurposeRedirect {
		// The address may be a stranger's (mistyped): it gets no name.
		target, name = d.Redirect, ""
	}
	if err := s.putCode(tx, code, Code{Login: d.Login, Purpose: p, Deadline: deadline, State: CodeLive, Created: now, Target: target}); err != nil {
		return err
	}
	for _, addr := range to {
		m := Mail{Kind: kind, To: addr, Lang: lang, Login: d.Login, Name: name, Code: code, Deadline: deadline, Address: target, Created: now}
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
// code valid until 23:59 today goes to its recovery addresses; when it
// names an active one, a reset code does (see resetCode). The answer is
// the same whether the login exists, is pending or is already active; only
// an outage or a rate limit (counted per login, whatever the login) differ.
func (s *Service) Begin(ctx context.Context, login string, c Client) error {
	// The limits come first: isCode asks the store, which past them would
	// tell which codes exist.
	now := s.clock.Now()
	src := Source(c.Remote)
	w1, err1 := s.beginRate.Blocked(src, now)
	w2, err2 := s.loginRate.Blocked("", now)
	if err := cmp.Or(err1, err2); err != nil {
		return err
	}
	if w := max(w1, w2); w > 0 {
		return rateLimited(w)
	}
	if s.isCode(CodeFromPaste(login)) { // a code, or the mail's command pasted
		return ErrLoginIsCode
	}
	login = NormalizeLogin(login)
	if !ValidLogin(login) {
		return ErrInvalidLogin
	}
	if err := s.mailRate.Take(login, now); err != nil {
		return mailLimit(err)
	}
	if err := cmp.Or(s.beginRate.Hit(src, now), s.loginRate.Hit("", now)); err != nil {
		return err
	}
	a, err := s.find(ctx, login, "")
	if errors.Is(err, ErrNoAccount) {
		return s.unknownLogin(c)
	}
	if err != nil {
		return err
	}
	err = s.batch(func(tx Tx) error {
		d, err := tx.Dossier(login)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if a.Active {
			return s.resetCode(tx, c, "begin", a, d)
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

// resetCode mails a reset code valid until 23:59 today to the recovery
// addresses of the active account a (dossier d, zero when none): it leads
// to a new password. The directory's consent value, when it has one, is
// the charter version the owner accepted last.
func (s *Service) resetCode(tx Tx, c Client, action string, a Account, d Dossier) error {
	if len(a.RecoveryMails) == 0 {
		return s.audit(tx, c, action, a.Login, "active, no recovery address: nothing sent")
	}
	now := s.clock.Now()
	refresh(&d, a, now)
	if d.Activated.IsZero() { // active in the directory before any dossier said so
		d.Activated = now
	}
	if a.Charter != "" {
		d.CharterVersion = a.Charter
	}
	deadline := SameDayDeadline(now, s.cfg.Location)
	d.Deadline = deadline
	if err := s.issue(tx, &d, PurposeReset, MailReset, deadline, a.RecoveryMails, s.lang(c, &d)); err != nil {
		return err
	}
	if err := tx.PutDossier(d); err != nil {
		return err
	}
	return s.audit(tx, c, action, a.Login, "active: reset code mailed")
}

// batch runs fn in a transaction whose commit concurrent callers share,
// when the store can.
func (s *Service) batch(fn func(Tx) error) error {
	if b, ok := s.store.(Batcher); ok {
		return b.Batch(fn)
	}
	return s.store.Update(fn)
}

// unknownAudit is how often the audit gets one event counting the logins
// typed that named no account.
const unknownAudit = time.Minute

// unknownLogin answers a login that names no account. What was typed is
// not recorded (it may be a password typed in the wrong field); the audit
// gets one event a minute with their number, not a row each. The answer
// still waits for a commit, shared with whoever else writes at that moment,
// so that it takes as long as for an existing login and tells nothing.
func (s *Service) unknownLogin(c Client) error {
	now := s.clock.Now()
	s.mu.Lock()
	s.unknown++
	n, since := 0, s.unknownAt
	if now.Sub(s.unknownAt) >= unknownAudit {
		n, s.unknown, s.unknownAt = s.unknown, 0, now
	}
	s.mu.Unlock()
	err := s.batch(func(tx Tx) error {
		if n == 0 {
			return nil
		}
		return s.auditUnknown(tx, c, n, since)
	})
	if err != nil && n > 0 {
		s.mu.Lock()
		s.unknown += n
		s.mu.Unlock()
	}
	return err
}

func (s *Service) auditUnknown(tx Tx, c Client, n int, since time.Time) error {
	detail := fmt.Sprintf("%d unknown logins: nothing sent", n)
	if !since.IsZero() {
		detail = fmt.Sprintf("%d unknown logins since %s: nothing sent", n, since.Format(time.RFC3339))
	}
	return s.audit(tx, c, "begin", "", detail)
}

// FlushAudit writes the unknown logins not yet counted in the audit (at
// shutdown).
func (s *Service) FlushAudit() error {
	s.mu.Lock()
	n, since := s.unknown, s.unknownAt
	s.unknown, s.unknownAt = 0, s.clock.Now()
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	return s.store.Update(func(tx Tx) error { return s.auditUnknown(tx, Client{Actor: "system"}, n, since) })
}

// isCode tells whether what was typed at the login prompt is a code: it
// has a code's shape and either is written the way codes are printed (four
// groups of four, which no directory login looks like) or is a code the
// store knows. Such a string must not reach the directory, where it would
// land in the access log.
func (s *Service) isCode(typed string) bool {
	norm, ok := NormalizeCode(typed)
	if !ok {
		return false
	}
	groups := strings.FieldsFunc(typed, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(groups) == CodeLen/4 && !slices.ContainsFunc(groups, func(g string) bool { return len(g) != 4 }) {
		return true
	}
	known := s.store.View(func(tx Tx) error {
		_, err := tx.Code(norm)
		return err
	})
	return known == nil
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
// against the client's Source. What it returns is a first answer: the
// transaction that uses the code checks it again with usable.
func (s *Service) findCode(code string, c Client) (string, Code, error) {
	now := s.clock.Now()
	if w, err := s.wrongRate.Blocked(Source(c.Remote), now); err != nil || w > 0 {
		return "", Code{}, cmp.Or(err, rateLimited(w))
	}
	norm, ok := NormalizeCode(code)
	var rec Code
	err := ErrCodeWrong
	if ok {
		err = s.store.View(func(tx Tx) error {
			var err error
			rec, err = usable(tx, norm, now)
			return err
		})
	}
	if errors.Is(err, ErrCodeWrong) {
		s.wrongCode(c)
	}
	return norm, rec, err
}

// usable reads the code norm in tx and returns it when it is live and in
// time, or the error its state calls for.
func usable(tx Tx, norm string, now time.Time) (Code, error) {
	rec, err := tx.Code(norm)
	if errors.Is(err, ErrNotFound) {
		return rec, ErrCodeWrong
	}
	if err != nil {
		return rec, err
	}
	if rec.State == CodeRevoked {
		// Staff may have started the activation again since: a newer
		// mail has the code to use, the user need not call them.
		if d, err := tx.Dossier(rec.Login); err == nil && d.Revoked.IsZero() {
			return rec, ErrCodeSuperseded
		}
	}
	return rec, codeError(rec, now)
}

// recheck is usable for the code found earlier as rec, in the transaction
// that uses it: a revoke, a newer code or a re-invitation in between wins.
func recheck(tx Tx, norm string, rec Code, now time.Time) error {
	cur, err := usable(tx, norm, now)
	if err != nil {
		return err
	}
	if cur.Login != rec.Login || cur.Purpose != rec.Purpose || !cur.Created.Equal(rec.Created) {
		return ErrCodeWrong
	}
	return nil
}

// Open starts a session on the dossier a code belongs to: an invitation or
// recovery code proves the recovery address (step 2), a redirect code
// proves the redirect (step 6). The returned session must be closed.
//
// The session shows c.Lang when set (and saves it for the mails to come),
// else the language saved in the dossier.
func (s *Service) Open(ctx context.Context, code string, c Client) (*Session, error) {
	return s.OpenFor(ctx, "", code, c)
}

// OpenFor is Open for the login typed at step 1: a code of another login
// is wrong. login "" accepts the code of any login.
func (s *Service) OpenFor(ctx context.Context, login, code string, c Client) (*Session, error) {
	norm, rec, err := s.findCode(CodeFromPaste(code), c)
	if stale(err) {
		s.refusedCode(rec, err, c)
	}
	if err == nil && login != "" && rec.Login != NormalizeLogin(login) {
		s.wrongCode(c)
		err = ErrCodeWrong
	}
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
		if err := recheck(tx, norm, rec, s.clock.Now()); err != nil {
			return err
		}
		if rec.Purpose == PurposeReset || rec.Purpose == PurposeCharter {
			s.openReset(d, rec.Purpose == PurposeCharter)
		} else if d.Opened.IsZero() {
			d.Opened = s.clock.Now()
		}
		if c.Lang != "" {
			d.Lang = c.Lang
		}
		x.mu.Lock()
		x.client.Lang = s.lang(c, d)
		x.mu.Unlock()
		return nil
	})
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// openReset starts the password reset of d (a reset code opened it): the
// charter comes first when its version changed since the last acceptance.
// charterOnly (a campaign's code): the charter alone, no password.
func (s *Service) openReset(d *Dossier, charterOnly bool) {
	if d.Resetting() {
		// Opened again, with a newer code: the reset goes on, and asks for
		// the password as soon as one of its codes was a reset code.
		d.CharterOnly = d.CharterOnly && charterOnly
		return
	}
	d.ResetOpened, d.CharterOnly = s.clock.Now(), charterOnly
	d.ResetCharter = charterOnly || d.CharterVersion != s.CharterVersion()
	if d.ResetCharter {
		d.CharterAcceptedAt = time.Time{}
	}
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
		if err := s.verifyRedirect(tx, &d, norm, rec); err != nil {
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

func (s *Service) verifyRedirect(tx Tx, d *Dossier, norm string, rec Code) error {
	if err := recheck(tx, norm, rec, s.clock.Now()); err != nil {
		return err
	}
	if rec.Purpose != PurposeRedirect || rec.Login != d.Login || !equalFoldMail(rec.Target, d.Redirect) {
		return ErrCodeWrong
	}
	if d.Opened.IsZero() { // the redirect mail was sent after step 2, so this cannot happen unless forged
		return ErrOrder
	}
	d.RedirectVerified = true
	return s.setCodeState(tx, d.Login, norm, CodeUsed)
}

// stale tells whether err refuses a code that worked once: used,
// replaced by a newer one, revoked, of an activated account, or expired.
func stale(err error) bool {
	for _, e := range []error{ErrCodeUsed, ErrCodeSuperseded, ErrCodeRevoked, ErrCodeFinished, ErrCodeExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refusedCode writes to the audit of rec's login that its code was typed
// after it stopped working, why and from where, once a minute at most per
// login: "my code does not work", says the caller, and the helpdesk sees
// which code and why. A wrong code names no login and is not written.
func (s *Service) refusedCode(rec Code, reason error, c Client) {
	if s.refusedRate.Take(rec.Login, s.clock.Now()) != nil {
		return
	}
	detail := string(rec.Purpose) + " code: " + strings.TrimPrefix(reason.Error(), "code: ")
	if err := s.batch(func(tx Tx) error { return s.audit(tx, c, "code-refused", rec.Login, detail) }); err != nil {
		s.log.Warn("refused code not audited", "login", rec.Login, "err", err)
		return
	}
	s.changed(rec.Login)
}

// wrongCode counts one wrong code against the client's Source. A count
// lost to an outage is only logged: the code was refused anyway, and the
// next one is checked against the same counter (Blocked), which refuses
// while the store cannot tell.
func (s *Service) wrongCode(c Client) {
	if err := s.wrongRate.Hit(Source(c.Remote), s.clock.Now()); err != nil {
		s.log.Warn("wrong code not counted", "err", err)
	}
}

func (s *Service) acquire(login string, c Client) (*Session, error) {
	s.mu.Lock()
	if old := s.sessions[login]; old != nil {
		s.mu.Unlock()
		return nil, ErrBusy
	}
	x := &Session{svc: s, login: login, client: c, done: make(chan struct{})}
	s.sessions[login] = x
	s.mu.Unlock()
	if s.cfg.Locks != nil { // outside s.mu: the other nodes may be slow to answer
		release, err := s.cfg.Locks.Lock(login)
		if err != nil {
			s.mu.Lock()
			delete(s.sessions, login)
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Lock()
		if x.closed() { // kicked meanwhile
			s.mu.Unlock()
			release()
			return nil, ErrClosed
		}
		x.release = release
		s.mu.Unlock()
	}
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
