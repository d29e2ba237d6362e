package flow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
)

var staffClient = flow.Client{Actor: "staff:x", Remote: "127.0.0.1:1"}

// v6 is an address of the /64 2001:db8:1:2::/64, a different one for
// every i, as a client rotating its privacy addresses would use.
func v6(i int) flow.Client {
	return flow.Client{Remote: fmt.Sprintf("[2001:db8:1:2:%x:%x::1]:4242", i/0xffff+1, i%0xffff+1)}
}

// Rotating addresses inside one IPv6 /64 gives no more logins and no more
// wrong codes than one address does.
func TestIPv6RotationSharesLimits(t *testing.T) {
	e := newEnv(t)
	n := e.svc.Config().BeginsPerAddress
	for i := range n {
		must(t, e.svc.Begin(ctx, fmt.Sprintf("user%02d", i), v6(i)))
	}
	var rl *flow.RateLimitError
	if err := e.svc.Begin(ctx, "amartin", v6(n)); !errors.As(err, &rl) {
		t.Fatalf("login %d from the same /64: %v", n+1, err)
	}
	must(t, e.svc.Begin(ctx, "amartin", flow.Client{Remote: "[2001:db8:1:3::1]:1"}))

	w := e.svc.Config().WrongCodes
	for i := range w {
		if _, err := e.svc.Open(ctx, flow.NewCode(), v6(i)); !errors.Is(err, flow.ErrCodeWrong) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, err := e.svc.Open(ctx, flow.NewCode(), v6(w)); !errors.As(err, &rl) {
		t.Fatalf("wrong code %d from the same /64: %v", w+1, err)
	}
}

// A wrong code typed at step 6 counts against the /64 as well.
func TestIPv6RotationSharesWrongCodesOfASession(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "amartin", flow.StepMailbox)
	defer x.Close()
	must(t, x.ChooseMailbox("alex@elsewhere.example.com", true))
	x.Close()
	w := e.svc.Config().WrongCodes
	for i := range w - 1 {
		if _, err := e.svc.Open(ctx, flow.NewCode(), v6(i)); !errors.Is(err, flow.ErrCodeWrong) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	y, err := e.svc.Open(ctx, e.lastCode("amartin", flow.MailRecovery), v6(w))
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	// The other login's code, typed at step 6: wrong, and the last one allowed.
	must(t, e.svc.Begin(ctx, "jdupont", user))
	if err := y.VerifyRedirect(e.lastCode("jdupont", flow.MailRecovery)); !errors.Is(err, flow.ErrCodeWrong) {
		t.Fatalf("another login's code at step 6: %v", err)
	}
	var rl *flow.RateLimitError
	if _, err := e.svc.Open(ctx, flow.NewCode(), v6(w+1)); !errors.As(err, &rl) {
		t.Fatalf("after the limit, from the same /64: %v", err)
	}
}

// The server as a whole answers no more than LoginsPerMinute logins a
// minute, whatever the number of addresses they come from.
func TestServerWideLoginRate(t *testing.T) {
	e := newEnv(t)
	if got := e.svc.Config().LoginsPerMinute; got < 300 {
		t.Errorf("default LoginsPerMinute = %d: a lecture hall would be refused", got)
	}
	e.cfg.LoginsPerMinute = 3
	e.restart()
	for i := range 3 {
		must(t, e.svc.Begin(ctx, fmt.Sprintf("user%02d", i), flow.Client{Remote: fmt.Sprintf("198.51.100.%d:1", i+1)}))
	}
	var rl *flow.RateLimitError
	if err := e.svc.Begin(ctx, "amartin", flow.Client{Remote: "203.0.113.9:1"}); !errors.As(err, &rl) {
		t.Fatalf("a 4th login in the minute: %v", err)
	}
	if len(e.mails()) != 0 {
		t.Errorf("a refused login mailed: %d mails", len(e.mails()))
	}
	e.clock.Add(time.Minute)
	must(t, e.svc.Begin(ctx, "amartin", flow.Client{Remote: "203.0.113.9:1"}))
}

// countingDir counts the lookups that reach the directory.
type countingDir struct {
	*flowtest.Directory
	lookups atomic.Int32
}

func (d *countingDir) Lookup(ctx context.Context, login string) (flow.Account, error) {
	d.lookups.Add(1)
	return d.Directory.Lookup(ctx, login)
}

// A code typed at the login prompt is told apart before any lookup: it
// reaches neither the directory nor the log (not even during an outage,
// when lookups are logged), nor the audit.
func TestCodeTypedAsLogin(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Invite(ctx, "amartin", false, staffClient)
	must(t, err)
	code := e.lastCode("amartin", flow.MailInvitation)
	norm, _ := flow.NormalizeCode(code)

	var logs flowtest.Buffer
	dir := &countingDir{Directory: e.dir}
	svc, err := flow.New(e.cfg, e.db, dir, e.clock, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	must(t, err)
	e.dir.SetDown(true)
	for _, typed := range []string{code, strings.ToLower(code), norm, strings.ToLower(norm), "fsfw-fk8x-zsm2-frkt", " FSFW FK8X ZSM2 FRKT ",
		"ssh -p 2222 " + code + "@activate.example.org", code + "@activate.example.org", // the mail's command, pasted
		"ssh -p 2222 " + code + "+plain@activate.example.org", code + "+PLAIN@activate.example.org"} { // its screen-reader line
		if err := svc.Begin(ctx, typed, user); !errors.Is(err, flow.ErrLoginIsCode) {
			t.Errorf("Begin(%q) = %v, want ErrLoginIsCode", typed, err)
		}
	}
	if n := dir.lookups.Load(); n != 0 {
		t.Errorf("%d lookups reached the directory", n)
	}
	for _, s := range []string{norm, "FSFWFK8XZSM2FRKT"} {
		if strings.Contains(strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(logs.String())), s) {
			t.Errorf("the log holds the code %s:\n%s", s, logs.String())
		}
	}
	err = svc.Events(0, "", time.Time{}, func(ev flow.Event) error {
		if strings.Contains(strings.ToUpper(ev.Detail+ev.Login), "FSFW") || strings.Contains(strings.ToUpper(ev.Detail+ev.Login), norm[:8]) {
			t.Errorf("audit holds the code: %+v", ev)
		}
		return nil
	})
	must(t, err)
	// A login is still a login, even one of 16 letters and digits.
	e.dir.SetDown(false)
	must(t, svc.Begin(ctx, "abcdefgh12345678", user))
	if n := dir.lookups.Load(); n != 1 {
		t.Errorf("a 16-character login: %d lookups, want 1", n)
	}
}

// hookStore runs once after its next View, to act between a lookup and
// the transaction that follows it.
type hookStore struct {
	flow.Store
	mu        sync.Mutex
	afterView func()
}

func (s *hookStore) View(fn func(flow.Tx) error) error {
	err := s.Store.View(fn)
	s.mu.Lock()
	f := s.afterView
	s.afterView = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return err
}

// A code is checked again in the transaction that uses it: revoked and
// re-invited between the lookup and the use, the old code opens nothing.
func TestRevokedCodeCannotOpenReinvitedDossier(t *testing.T) {
	e := newEnv(t)
	store := &hookStore{Store: e.db}
	svc, err := flow.New(e.cfg, store, e.dir, e.clock, nil)
	must(t, err)
	_, err = svc.Invite(ctx, "amartin", false, staffClient)
	must(t, err)
	old := e.lastCode("amartin", flow.MailInvitation)
	store.afterView = func() {
		must(t, svc.Revoke("amartin", staffClient))
		out, err := svc.Invite(ctx, "amartin", true, staffClient)
		must(t, err)
		if out != flow.Invited {
			t.Errorf("re-invite: %s", out)
		}
	}
	x, err := svc.Open(ctx, old, user)
	if err == nil {
		x.Close()
		t.Fatal("the revoked code opened the re-invited dossier")
	}
	if !errors.Is(err, flow.ErrCodeSuperseded) { // re-invited: the newer mail has the code
		t.Errorf("open with the revoked code: %v", err)
	}
	if store.afterView != nil {
		t.Fatal("the hook did not run")
	}
	x, err = svc.Open(ctx, e.lastCode("amartin", flow.MailInvitation), user)
	must(t, err)
	x.Close()
}

// holdDir holds Activate until released and, like the LDAP adapter,
// returns as soon as the caller's context ends while the write goes on.
type holdDir struct {
	*flowtest.Directory
	entered, release chan struct{}
}

func (d holdDir) Activate(ctx context.Context, a flow.Account, act flow.Activation) error {
	close(d.entered)
	done := make(chan error, 1)
	go func() {
		<-d.release
		done <- d.Directory.Activate(context.WithoutCancel(ctx), a, act)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", flow.ErrUnavailable, ctx.Err())
	}
}

// The last step is one unit: the user disconnects while LDAP is being
// written; the write still ends and the dossier, audit and notice follow
// it; a staff revoke meanwhile waits for the end and finds the account
// active.
func TestDisconnectDuringFinish(t *testing.T) {
	e := newEnv(t)
	var logs flowtest.Buffer
	dir := holdDir{e.dir, make(chan struct{}), make(chan struct{})}
	svc, err := flow.New(e.cfg, e.db, dir, e.clock, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	must(t, err)
	e.svc = svc
	x := openAt(t, e, "amartin", flow.StepPassword)
	sctx, disconnect := context.WithCancel(ctx)
	finished := make(chan error, 1)
	go func() { finished <- x.Finish(sctx, goodPassword) }()
	<-dir.entered
	disconnect()
	x.Close()

	revoked := make(chan error, 1)
	go func() { revoked <- svc.Revoke("amartin", staffClient) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "revoke waits") {
		select {
		case err := <-revoked:
			close(dir.release)
			<-finished
			t.Fatalf("revoke during the directory write did not wait: %v", err)
		case err := <-finished:
			close(dir.release)
			t.Fatalf("finish gave up when the session ended: %v", err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("revoke neither waited nor returned")
		}
	}
	close(dir.release)
	if err := <-finished; err != nil {
		t.Errorf("finish: %v", err)
	}
	if err := <-revoked; !errors.Is(err, flow.ErrAlreadyActivated) {
		t.Errorf("revoke meanwhile: %v, want ErrAlreadyActivated", err)
	}

	st, err := svc.Status("amartin")
	must(t, err)
	if !e.dir.Account("amartin").Active || st.State != flow.StateActivated {
		t.Errorf("LDAP active %v, dossier %s", e.dir.Account("amartin").Active, st.State)
	}
	var activated int
	must(t, svc.Events(0, "amartin", time.Time{}, func(ev flow.Event) error {
		if ev.Action == "activated" {
			activated++
		}
		if ev.Action == "revoke" {
			t.Errorf("a revoke was recorded: %+v", ev)
		}
		return nil
	}))
	if activated != 1 {
		t.Errorf("%d activated events", activated)
	}
	var notices int
	for _, m := range e.mails() {
		if m.Login == "amartin" && m.Kind == flow.MailActivated && m.To == "alex@perso.example.net" {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d notices queued", notices)
	}
}

// A redirect address with a bidi override, a zero-width or another
// invisible or control character is refused with its own reason, and
// nothing changes.
func TestRedirectWithHiddenCharactersRefused(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "amartin", flow.StepMailbox)
	defer x.Close()
	before := dossier(t, x)
	for _, addr := range []string{
		"alex\u202e@moc.example.net", "alex@exa\u202dmple.net", "al\u200bex@example.net", "alex@example.net\ufeff",
		"alex\u2028@example.net", "alex\u00ad@example.net", "alex\u3164@example.net", "alex\u00a0@example.net",
		"alex\x00@example.net", "alex\u0085@example.net", "alex@example.net\U000E0041",
	} {
		if _, ok := flow.ValidMail(addr); ok {
			t.Errorf("ValidMail(%q) accepts it", addr)
		}
		if err := x.ChooseMailbox(addr, true); !errors.Is(err, flow.ErrAddressCharacters) || !errors.Is(err, flow.ErrInvalidAddress) {
			t.Errorf("ChooseMailbox(%q) = %v, want ErrAddressCharacters", addr, err)
		}
	}
	for _, addr := range []string{"alex@", "not an address", "alex @example.net"} {
		if err := x.ChooseMailbox(addr, true); errors.Is(err, flow.ErrAddressCharacters) || !errors.Is(err, flow.ErrInvalidAddress) {
			t.Errorf("a plainly malformed address %q: %v", addr, err)
		}
	}
	if after := dossier(t, x); after.MailboxChosen || after.Redirect != before.Redirect || len(e.mails()) != 1 {
		t.Errorf("a refused address changed the dossier (%+v) or mailed (%d mails)", after, len(e.mails()))
	}
	must(t, x.ChooseMailbox("élodie@exemple.fr", true)) // letters of any script are fine
}

// Logins that name no account leave no row each in the audit: one event a
// minute counts them (and FlushAudit the rest, at shutdown).
func TestUnknownLoginsCountedNotLogged(t *testing.T) {
	e := newEnv(t)
	counted := func() (rows, total int) {
		t.Helper()
		must(t, e.svc.Events(0, "", time.Time{}, func(ev flow.Event) error {
			if ev.Action == "begin" && ev.Login == "" {
				var n int
				if _, err := fmt.Sscanf(ev.Detail, "%d unknown logins", &n); err != nil {
					t.Errorf("detail %q: %v", ev.Detail, err)
				}
				rows, total = rows+1, total+n
			}
			return nil
		}))
		return rows, total
	}
	for i := range 30 {
		must(t, e.svc.Begin(ctx, fmt.Sprintf("ghost%02d", i), flow.Client{Remote: fmt.Sprintf("198.51.100.%d:1", i+1)}))
	}
	if rows, _ := counted(); rows > 1 {
		t.Errorf("%d audit rows for 30 unknown logins in a minute", rows)
	}
	e.clock.Add(time.Minute)
	must(t, e.svc.Begin(ctx, "ghost99", user))
	must(t, e.svc.Begin(ctx, "ghost98", user))
	must(t, e.svc.FlushAudit())
	must(t, e.svc.FlushAudit())
	if rows, total := counted(); rows != 3 || total != 32 {
		t.Errorf("%d rows counting %d unknown logins, want 3 rows counting 32", rows, total)
	}
}

// A valid code of another login, typed after a login at step 1 (OpenFor),
// is a wrong code counted against the /64 like any other.
func TestIPv6RotationSharesWrongCodesOfAnotherLogin(t *testing.T) {
	e := newEnv(t)
	must(t, e.svc.Begin(ctx, "jdupont", user))
	other := e.lastCode("jdupont", flow.MailRecovery)
	w := e.svc.Config().WrongCodes
	for i := range w {
		if _, err := e.svc.OpenFor(ctx, "amartin", other, v6(i)); !errors.Is(err, flow.ErrCodeWrong) {
			t.Fatalf("another login's code %d: %v", i, err)
		}
	}
	var rl *flow.RateLimitError
	if _, err := e.svc.Open(ctx, flow.NewCode(), v6(w)); !errors.As(err, &rl) {
		t.Fatalf("after %d codes of another login from the same /64: %v", w, err)
	}
}

// Typed at the login prompt, a code without its dashes is told apart from
// a login by asking the store: once the source has used up its logins, a
// code the store knows and one it does not must answer alike, or the
// prompt tells which codes exist, past every limit.
func TestCodeAtLoginPromptIsNoOracleOnceLimited(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Invite(ctx, "amartin", false, staffClient)
	must(t, err)
	known, _ := flow.NormalizeCode(e.lastCode("amartin", flow.MailInvitation))
	for i := range e.svc.Config().BeginsPerAddress {
		must(t, e.svc.Begin(ctx, fmt.Sprintf("user%02d", i), user))
	}
	var rl *flow.RateLimitError
	for _, typed := range []string{known, strings.ToLower(known), "ABCDEFGHJKMNPQRS"} {
		if err := e.svc.Begin(ctx, typed, user); !errors.As(err, &rl) {
			t.Errorf("Begin(%q) past the limit = %v, want a rate limit", typed, err)
		}
	}
}

// What a user types at the login prompt may be a password typed in the
// wrong field: during a directory outage it reaches neither the log nor
// the error the log would print.
func TestTypedLoginNotLoggedDuringOutage(t *testing.T) {
	e := newEnv(t)
	var logs flowtest.Buffer
	svc, err := flow.New(e.cfg, e.db, e.dir, e.clock, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	must(t, err)
	e.dir.SetDown(true)
	const typed = "correcthorsebattery"
	if err := svc.Begin(ctx, typed, user); !errors.Is(err, flow.ErrUnavailable) {
		t.Fatalf("Begin during an outage = %v, want ErrUnavailable", err)
	}
	if strings.Contains(logs.String(), typed) {
		t.Errorf("the log holds what was typed at the login prompt:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "directory lookup") {
		t.Errorf("the outage is not logged at all:\n%s", logs.String())
	}
}

// The code in a command pasted whole from the mail, the screen-reader
// line (CODE+plain@host) included: typed at step 2, it is the code, not
// a wrong code.
func TestCodeFromPaste(t *testing.T) {
	for typed, want := range map[string]string{
		"K7M2-Q9XV": "K7M2-Q9XV",
		"ssh -p 2222 K7M2-Q9XV@activate.example.org":       "K7M2-Q9XV",
		"K7M2-Q9XV@activate.example.org":                   "K7M2-Q9XV",
		"ssh -p 2222 K7M2-Q9XV+plain@activate.example.org": "K7M2-Q9XV",
		"ssh K7M2-Q9XV+Plain@activate.example.org":         "K7M2-Q9XV",
	} {
		if got := flow.CodeFromPaste(typed); got != want {
			t.Errorf("CodeFromPaste(%q) = %q, want %q", typed, got, want)
		}
	}
}
