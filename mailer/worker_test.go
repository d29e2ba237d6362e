package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/smtptest"
)

// runWorker starts w.Run and stops it when the test ends.
func runWorker(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
}

func kick(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// TestWorkerOutage: with the SMTP server down the mails stay queued with a
// retry scheduled; once it is back they arrive, each exactly once.
func TestWorkerOutage(t *testing.T) {
	srv := smtptest.StartT(t)
	cfg := testConfig(t, srv.Addr)
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	clock := flowtest.NewClock(t0)
	var mails []flow.Mail
	for id := uint64(1); id <= 3; id++ {
		mails = append(mails, flow.Mail{ID: id, Kind: flow.MailRecovery, To: fmt.Sprintf("u%d@perso.example", id), Lang: "fr",
			Login: fmt.Sprintf("u%d", id), Code: testCode, Deadline: flow.SameDayDeadline(t0, cfg.Location), Created: t0})
	}
	q := newMemQueue(mails...)
	var logs flowtest.Buffer
	wake := make(chan struct{}, 1)
	opts := WorkerOptions{RetryFor: 24 * time.Hour, BaseDelay: 30 * time.Second, MaxDelay: time.Hour, Poll: time.Hour}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	runWorker(t, NewWorker(q, wake, tr, NewRenderer(cfg), clock, slog.New(slog.NewTextHandler(&logs, nil)), opts))
	attempts := func(n int) func() bool {
		return func() bool {
			for _, m := range q.all() {
				if m.Attempts < n {
					return false
				}
			}
			return true
		}
	}
	kick(wake)
	q.waitUntil(t, "every mail failed once", attempts(1))
	for _, m := range q.all() {
		if m.State != flow.MailQueued || m.Code == "" || !strings.Contains(m.LastError, srv.Addr) {
			t.Fatalf("after a failure: %+v", m)
		}
		if d := m.NextAttempt.Sub(t0); d < 24*time.Second || d > 36*time.Second {
			t.Fatalf("first retry in %v, want 30s ± 20%%", d)
		}
	}

	clock.Add(time.Minute)
	kick(wake)
	q.waitUntil(t, "every mail failed twice", attempts(2))
	for _, m := range q.all() {
		if d := m.NextAttempt.Sub(clock.Now()); d < 48*time.Second || d > 72*time.Second {
			t.Fatalf("second retry in %v, want 60s ± 20%%", d)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages arrived while the server was down", n)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Not due yet: a wake-up sends nothing.
	dues := q.dues()
	kick(wake)
	q.waitUntil(t, "the outbox was read", func() bool { return q.dues() > dues })
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent before their retry time", n)
	}

	clock.Add(2 * time.Minute)
	kick(wake)
	q.waitUntil(t, "every mail was delivered", func() bool {
		for _, m := range q.all() {
			if m.State != flow.MailSent {
				return false
			}
		}
		return true
	})
	// One more pass must not send anything again.
	clock.Add(time.Hour)
	dues = q.dues()
	kick(wake)
	q.waitUntil(t, "the outbox was read again", func() bool { return q.dues() > dues })

	perID := map[string]int{}
	for _, m := range srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		perID[msg.Header.Get("Message-ID")]++
	}
	if len(perID) != 3 {
		t.Fatalf("%d distinct messages, want 3: %v", len(perID), perID)
	}
	for id, n := range perID {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for _, m := range q.all() {
		if m.Code != "" || !m.Sent.Equal(clock.Now().Add(-time.Hour)) || m.Attempts != 2 {
			t.Errorf("delivered mail: %+v", m)
		}
	}

	out := logs.String()
	if strings.Contains(out, testCode) {
		t.Errorf("the log shows a code:\n%s", out)
	}
	for _, want := range []string{"will retry", "mail sent", "mail=1", "kind=recovery", "to=u2@perso.example", srv.Addr} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestWorkerGivesUp: a mail that still fails RetryFor after its creation
// is given up; the last retry is scheduled at that limit.
func TestWorkerGivesUp(t *testing.T) {
	cfg := testConfig(t, closedAddr(t))
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	clock := flowtest.NewClock(t0.Add(5 * time.Minute))
	// Attempts 6: 8 min·2^6 is capped at MaxDelay, far past the limit.
	q := newMemQueue(flow.Mail{ID: 1, Kind: flow.MailActivated, To: "u@perso.example", Login: "u", Created: t0, Attempts: 6})
	wake := make(chan struct{}, 1)
	runWorker(t, NewWorker(q, wake, tr, NewRenderer(cfg), clock, nil,
		WorkerOptions{RetryFor: 10 * time.Minute, BaseDelay: 8 * time.Minute, MaxDelay: time.Hour, Poll: time.Hour}))

	kick(wake)
	q.waitUntil(t, "the mail failed once", func() bool { return q.get(1).Attempts == 7 })
	if m := q.get(1); m.State != flow.MailQueued || !m.NextAttempt.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("last retry: %+v, want at %v", m, t0.Add(10*time.Minute))
	}

	clock.Add(5 * time.Minute) // t0 + 10 min: the limit
	kick(wake)
	q.waitUntil(t, "the mail was given up", func() bool { return q.get(1).State == flow.MailFailed })
	if m := q.get(1); m.Attempts != 8 || !strings.Contains(m.LastError, "connect") {
		t.Fatalf("given up: %+v", m)
	}
}

// TestWorkerRecipientRefused: a refusal is kept as the reason of the retry.
func TestWorkerRecipientRefused(t *testing.T) {
	srv, err := smtptest.StartOptions("127.0.0.1:0", smtptest.Options{Reject: []string{"gone@perso.example"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	cfg := testConfig(t, srv.Addr)
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	q := newMemQueue(
		flow.Mail{ID: 1, Kind: flow.MailActivated, To: "gone@perso.example", Login: "a", Created: t0},
		flow.Mail{ID: 2, Kind: flow.MailActivated, To: "here@perso.example", Login: "b", Created: t0},
		flow.Mail{ID: 3, Kind: "unknown", To: "here@perso.example", Login: "c", Created: t0},
	)
	runWorker(t, NewWorker(q, nil, tr, NewRenderer(cfg), flowtest.NewClock(t0), nil, WorkerOptions{}))
	q.waitUntil(t, "every mail was tried", func() bool {
		return q.get(1).Attempts == 1 && q.get(2).State == flow.MailSent && q.get(3).Attempts == 1
	})
	if m := q.get(1); !strings.Contains(m.LastError, "550") || !strings.Contains(m.LastError, "RCPT") {
		t.Errorf("refused recipient: %+v", m)
	}
	if m := q.get(3); !strings.Contains(m.LastError, "template") {
		t.Errorf("unknown kind: %+v", m)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestWorkerManyMails: more mails than one batch all go out on one wake-up,
// here through the maildir transport (one file per mail in new/).
func TestWorkerManyMails(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Transport, cfg.Maildir = "maildir", filepath.Join(t.TempDir(), "Maildir")
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var mails []flow.Mail
	n := batch + 7
	for id := 1; id <= n; id++ {
		mails = append(mails, flow.Mail{ID: uint64(id), Kind: flow.MailAlreadyActive, To: fmt.Sprintf("u%d@perso.example", id), Lang: "en", Login: "u", Created: t0})
	}
	q := newMemQueue(mails...)
	wake := make(chan struct{}, 1)
	kick(wake)
	runWorker(t, NewWorker(q, wake, tr, NewRenderer(cfg), flowtest.NewClock(t0), nil, WorkerOptions{Poll: time.Hour}))
	q.waitUntil(t, "every mail was delivered", func() bool {
		for _, m := range q.all() {
			if m.State != flow.MailSent {
				return false
			}
		}
		return true
	})
	entries, err := os.ReadDir(filepath.Join(cfg.Maildir, "new"))
	if err != nil || len(entries) != n {
		t.Fatalf("new/: %v, %d files, want %d", err, len(entries), n)
	}
}

func TestBackoff(t *testing.T) {
	w := NewWorker(nil, nil, nil, nil, nil, nil, WorkerOptions{BaseDelay: time.Second, MaxDelay: time.Minute})
	for _, tc := range []struct {
		attempts int
		base     time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {5, 32 * time.Second}, {6, time.Minute}, {62, time.Minute}, {1000, time.Minute}} {
		for range 20 {
			d := w.backoff(tc.attempts)
			if d < tc.base*8/10 || d > tc.base*12/10 {
				t.Fatalf("backoff(%d) = %v, want %v ± 20%%", tc.attempts, d, tc.base)
			}
		}
	}
	if w.opts.RetryFor != 24*time.Hour || w.opts.Poll != 30*time.Second {
		t.Fatalf("defaults: %+v", w.opts)
	}
	w = NewWorker(nil, nil, nil, nil, nil, nil, WorkerOptions{BaseDelay: time.Hour, MaxDelay: 24 * time.Hour})
	for _, attempts := range []int{5, 39, 64, 1 << 20} {
		if d := w.backoff(attempts); d < 24*time.Hour*8/10 || d > 24*time.Hour*12/10 {
			t.Fatalf("backoff(%d) = %v, want 24h ± 20%%", attempts, d)
		}
	}
	w = NewWorker(nil, nil, nil, nil, nil, nil, WorkerOptions{BaseDelay: time.Hour, MaxDelay: time.Minute})
	if w.opts.MaxDelay != time.Hour {
		t.Fatalf("MaxDelay below BaseDelay kept: %+v", w.opts)
	}
}

// flakyQueue fails the next call of a method when told to.
type flakyQueue struct {
	*memQueue
	mu                                sync.Mutex
	failDue, failDelivered, failRetry int
}

var errStore = errors.New("store unavailable")

func (f *flakyQueue) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		f.memQueue.mu.Lock()
		f.memQueue.notify()
		f.memQueue.mu.Unlock()
		return true
	}
	return false
}

func (f *flakyQueue) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failDue + f.failDelivered + f.failRetry
}

func (f *flakyQueue) Due(now time.Time, limit int) ([]flow.Mail, error) {
	if f.take(&f.failDue) {
		return nil, errStore
	}
	return f.memQueue.Due(now, limit)
}

func (f *flakyQueue) Delivered(id uint64, at time.Time) error {
	if f.take(&f.failDelivered) {
		return errStore
	}
	return f.memQueue.Delivered(id, at)
}

func (f *flakyQueue) Retry(id uint64, next time.Time, reason string) error {
	if f.take(&f.failRetry) {
		return errStore
	}
	return f.memQueue.Retry(id, next, reason)
}

// TestWorkerStoreFailures: when the store cannot record an outcome the
// mail stays due; a mail accepted but not recorded as delivered is not
// sent again: only the marking is retried.
func TestWorkerStoreFailures(t *testing.T) {
	srv := smtptest.StartT(t)
	cfg := testConfig(t, srv.Addr)
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	q := &flakyQueue{memQueue: newMemQueue(flow.Mail{ID: 1, Kind: flow.MailActivated, To: "u@perso.example", Login: "u", Created: t0}),
		failDue: 1, failDelivered: 1}
	var logs flowtest.Buffer
	wake := make(chan struct{}, 1)
	runWorker(t, NewWorker(q, wake, tr, NewRenderer(cfg), flowtest.NewClock(t0), slog.New(slog.NewTextHandler(&logs, nil)), WorkerOptions{Poll: time.Hour}))

	q.waitUntil(t, "the first pass failed to read the outbox", func() bool { return q.pending() == 1 })
	kick(wake)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := srv.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if m := q.get(1); m.State != flow.MailQueued {
		t.Fatalf("delivered although the store failed: %+v", m)
	}
	kick(wake)
	q.waitUntil(t, "the mail was recorded as delivered", func() bool { return q.get(1).State == flow.MailSent })
	if msgs := srv.Messages(); len(msgs) != 1 {
		t.Fatalf("%d messages, want the mail once: only its marking is tried again", len(msgs))
	}

	// A failure the store cannot record leaves the mail due.
	srv.Stop()
	q.memQueue.mu.Lock()
	q.memQueue.mails[2] = &flow.Mail{ID: 2, Kind: flow.MailActivated, To: "v@perso.example", Login: "v", Created: t0, State: flow.MailQueued}
	q.memQueue.mu.Unlock()
	q.mu.Lock()
	q.failRetry = 1
	q.mu.Unlock()
	kick(wake)
	q.waitUntil(t, "recording the retry failed", func() bool { return q.pending() == 0 })
	if m := q.get(2); m.State != flow.MailQueued || m.Attempts != 0 || !m.NextAttempt.IsZero() {
		t.Fatalf("after a failed Retry: %+v", m)
	}
	kick(wake)
	q.waitUntil(t, "the retry was recorded", func() bool { return q.get(2).Attempts == 1 })

	out := logs.String()
	for _, want := range []string{"read due mails", "marking it delivered failed", "scheduling its retry failed", errStore.Error()} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestWorkerDropsExpiredCode: a mail whose code expired while it waited
// (an SMTP outage past 23:59) is given up instead of sent: a dead code
// would only confuse its reader. A mail without a code is still sent.
func TestWorkerDropsExpiredCode(t *testing.T) {
	srv := smtptest.StartT(t)
	cfg := testConfig(t, srv.Addr)
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	clock := flowtest.NewClock(t0.Add(2 * time.Hour))
	q := newMemQueue(
		flow.Mail{ID: 1, Kind: flow.MailRecovery, To: "u@perso.example", Lang: "fr", Login: "u", Code: testCode, Deadline: t0.Add(time.Hour), Created: t0},
		flow.Mail{ID: 2, Kind: flow.MailActivated, To: "v@perso.example", Lang: "fr", Login: "v", Created: t0},
	)
	wake := make(chan struct{}, 1)
	runWorker(t, NewWorker(q, wake, tr, NewRenderer(cfg), clock, nil, WorkerOptions{Poll: time.Hour}))
	kick(wake)
	q.waitUntil(t, "both mails handled", func() bool {
		return q.get(1).State != flow.MailQueued && q.get(2).State != flow.MailQueued
	})
	if m := q.get(1); m.State != flow.MailFailed || !strings.Contains(m.LastError, "expired") {
		t.Errorf("expired-code mail: %+v", m)
	}
	if m := q.get(2); m.State != flow.MailSent {
		t.Errorf("mail without a code: %+v", m)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "v@perso.example" {
		t.Errorf("sent: %+v", msgs)
	}
}
