package mailer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"activated/flow"
)

// Queue is the outbox as the worker sees it (storage implements it).
type Queue interface {
	// Due returns up to limit queued mails whose next attempt is at or
	// before now, code included.
	Due(now time.Time, limit int) ([]flow.Mail, error)
	// Delivered marks a mail sent (the store drops its code).
	Delivered(id uint64, at time.Time) error
	// Retry records a failed attempt (Attempts+1) and when to try again.
	Retry(id uint64, next time.Time, reason string) error
	// GiveUp marks a mail failed for good.
	GiveUp(id uint64, at time.Time, reason string) error
}

// WorkerOptions tune the retries; zero fields take the defaults.
type WorkerOptions struct {
	RetryFor  time.Duration // give up this long after a mail was created (24h)
	BaseDelay time.Duration // delay after the first failure, doubled after each (30s)
	MaxDelay  time.Duration // longest delay between two attempts (1h)
	Poll      time.Duration // look at the outbox at least this often (30s)
	// Metrics counts deliveries and failed attempts; nil counts nothing.
	Metrics Metrics
}

// Metrics is what the worker counts, by mail kind.
type Metrics interface {
	Sent(kind string)   // the transport accepted a mail
	Failed(kind string) // an attempt failed (it may be retried)
}

type noMetrics struct{}

func (noMetrics) Sent(string)   {}
func (noMetrics) Failed(string) {}

// batch is how many mails one Due call returns.
const batch = 50

// Worker delivers the outbox: every due mail is rendered and sent; a
// failure schedules a retry with exponential backoff until RetryFor has
// passed since the mail was created, then the mail is given up. A mail
// stays queued until the transport accepted it, so nothing is lost; a
// crash between acceptance and Delivered sends it again with the same
// Message-ID (without a crash, only the marking is tried again).
type Worker struct {
	q     Queue
	wake  <-chan struct{}
	tr    Transport
	r     *Renderer
	clock flow.Clock
	log   *slog.Logger
	opts  WorkerOptions
	// sent holds the mails the transport accepted but the store failed to
	// mark delivered (a full disk): only the marking is tried again, so
	// nobody gets the same mail at every poll. Only Run's goroutine uses it.
	sent map[uint64]time.Time
}

// NewWorker builds a worker; wake tells it new mail was queued (nil: rely
// on polling).
func NewWorker(q Queue, wake <-chan struct{}, tr Transport, r *Renderer, clock flow.Clock, log *slog.Logger, opts WorkerOptions) *Worker {
	if opts.RetryFor <= 0 {
		opts.RetryFor = 24 * time.Hour
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 30 * time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Hour
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.Poll <= 0 {
		opts.Poll = 30 * time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if clock == nil {
		clock = flow.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{q: q, wake: wake, tr: tr, r: r, clock: clock, log: log, opts: opts, sent: map[uint64]time.Time{}}
}

// Run delivers due mails until ctx is done. It looks at the outbox when
// woken, when the earliest retry it scheduled falls due, and every Poll.
func (w *Worker) Run(ctx context.Context) {
	var next time.Time // earliest retry scheduled and not yet reached
	for ctx.Err() == nil {
		now := w.clock.Now()
		if !next.After(now) {
			next = time.Time{}
		}
		if soonest := w.deliverDue(ctx, now); !soonest.IsZero() && (next.IsZero() || soonest.Before(next)) {
			next = soonest
		}
		wait := w.opts.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(w.clock.Now()), 0))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliverDue tries every mail due at now and returns the earliest retry
// it scheduled (zero if none).
func (w *Worker) deliverDue(ctx context.Context, now time.Time) time.Time {
	var soonest time.Time
	for ctx.Err() == nil {
		mails, err := w.q.Due(now, batch)
		if err != nil {
			w.log.Error("mail outbox: read due mails", "err", err)
			return soonest
		}
		progress := false
		for _, m := range mails {
			if ctx.Err() != nil {
				return soonest
			}
			retry, ok := w.deliver(ctx, m)
			progress = progress || ok
			if !retry.IsZero() && (soonest.IsZero() || retry.Before(soonest)) {
				soonest = retry
			}
		}
		// A short batch means the outbox has nothing more due; a batch
		// where the store failed every time would come back unchanged.
		if len(mails) < batch || !progress {
			return soonest
		}
	}
	return soonest
}

// deliver makes one attempt at m. It returns when m is to be tried again
// (zero if it was sent or given up) and whether the store recorded the
// outcome.
func (w *Worker) deliver(ctx context.Context, m flow.Mail) (retry time.Time, ok bool) {
	log := w.log.With("mail", m.ID, "kind", string(m.Kind), "to", clean(m.To))
	if at, ok := w.sent[m.ID]; ok { // already sent: record it, do not send it again
		if err := w.q.Delivered(m.ID, at); err != nil {
			log.Error("marking a sent mail delivered failed again", "err", err)
			return time.Time{}, false
		}
		delete(w.sent, m.ID)
		log.Info("mail sent (recorded late)")
		return time.Time{}, true
	}
	if now := w.clock.Now(); !m.Deadline.IsZero() && now.After(m.Deadline) {
		// Its code died while the mail waited (an SMTP outage): sending
		// it now would only hand the user a dead code.
		if err := w.q.GiveUp(m.ID, now, "its code expired before it could be sent"); err != nil {
			log.Error("marking an expired mail failed", "err", err)
			return time.Time{}, false
		}
		log.Warn("mail given up: its code expired before it could be sent")
		return time.Time{}, true
	}
	err := w.send(ctx, m)
	now := w.clock.Now()
	if err == nil {
		w.opts.Metrics.Sent(string(m.Kind))
		if err := w.q.Delivered(m.ID, now); err != nil {
			// Sent but not recorded: remembered, so only the marking is
			// tried again (a restart meanwhile sends it again, same
			// Message-ID).
			w.sent[m.ID] = now
			log.Error("mail sent, but marking it delivered failed", "err", err)
			return time.Time{}, false
		}
		log.Info("mail sent", "attempt", m.Attempts+1)
		return time.Time{}, true
	}
	if ctx.Err() != nil {
		return time.Time{}, false // shutting down: the mail stays due
	}
	w.opts.Metrics.Failed(string(m.Kind))
	reason := err.Error()
	deadline := m.Created.Add(w.opts.RetryFor)
	if !now.Before(deadline) {
		if err := w.q.GiveUp(m.ID, now, reason); err != nil {
			log.Error("mail failed, and marking it failed failed too", "err", err)
			return time.Time{}, false
		}
		log.Error("mail given up", "attempts", m.Attempts+1, "err", reason)
		return time.Time{}, true
	}
	retry = now.Add(w.backoff(m.Attempts))
	if retry.After(deadline) {
		retry = deadline // one last attempt when the retry period ends
	}
	if err := w.q.Retry(m.ID, retry, reason); err != nil {
		log.Error("mail failed, and scheduling its retry failed", "err", err)
		return time.Time{}, false
	}
	log.Warn("mail not sent, will retry", "attempt", m.Attempts+1, "retry_at", retry, "err", reason)
	return retry, true
}

func (w *Worker) send(ctx context.Context, m flow.Mail) error {
	msg, err := w.r.Render(m)
	if err != nil {
		return err
	}
	from, err := w.r.sender()
	if err != nil {
		return err
	}
	return w.tr.Send(ctx, from, m.To, msg)
}

// backoff is BaseDelay·2^attempts, capped at MaxDelay, ±20% jitter so
// mails that failed together do not retry together.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.opts.BaseDelay
	for i := 0; i < attempts && d < w.opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
