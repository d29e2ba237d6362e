package flow

import (
	"slices"
	"sync"
	"time"
)

// Counter keeps the events that rate limits count. The default one lives
// in this node's memory (a restart forgets it, which errs on the side of
// the user); nodes sharing a store share one (Config.Limits), so that two
// nodes behind one name do not give twice the allowance.
type Counter interface {
	// Hits returns the times of key's events within window before now,
	// oldest first; the last n are enough. ErrUnavailable when the store
	// cannot tell.
	Hits(key string, n int, window time.Duration, now time.Time) ([]time.Time, error)
	// Hit records one event for key at now.
	Hit(key string, n int, window time.Duration, now time.Time) error
}

// limiter allows at most n events per key in a sliding window.
type limiter struct {
	name   string // keeps the limits apart in a shared Counter
	n      int
	window time.Duration
	c      Counter
}

// newLimiter counts in c, or in memory when c is nil.
func newLimiter(name string, n int, window time.Duration, c Counter) *limiter {
	if c == nil {
		c = &memCounter{hits: map[string][]time.Time{}}
	}
	return &limiter{name: name, n: n, window: window, c: c}
}

// Blocked reports how long key must wait before its next event, or 0.
// A Counter that cannot tell (ErrUnavailable) blocks: the limit is not
// lifted by an outage, which the user is told about like any other.
func (l *limiter) Blocked(key string, now time.Time) (time.Duration, error) {
	if l.n <= 0 {
		return 0, nil
	}
	h, err := l.c.Hits(l.name+"/"+key, l.n, l.window, now)
	if err != nil || len(h) < l.n {
		return 0, err
	}
	return max(h[len(h)-l.n].Add(l.window).Sub(now), 0), nil
}

// Hit records one event for key.
func (l *limiter) Hit(key string, now time.Time) error {
	if l.n <= 0 {
		return nil
	}
	return l.c.Hit(l.name+"/"+key, l.n, l.window, now)
}

// Take is Blocked then Hit: it returns a *RateLimitError instead of
// recording when the key is over its limit.
func (l *limiter) Take(key string, now time.Time) error {
	w, err := l.Blocked(key, now)
	if err != nil {
		return err
	}
	if w > 0 {
		return rateLimited(w)
	}
	return l.Hit(key, now)
}

func rateLimited(w time.Duration) error {
	return &RateLimitError{Wait: w.Round(time.Second) + time.Second}
}

// memCounter is the Counter of one node: each limiter has its own, so
// one window applies to all its keys.
type memCounter struct {
	mu   sync.Mutex
	hits map[string][]time.Time
}

// maxKeys bounds the memory a flood of distinct keys can take: past it, the
// table is pruned of every key whose window has passed.
const maxKeys = 100_000

func (m *memCounter) recent(key string, window time.Duration, now time.Time) []time.Time {
	h := m.hits[key]
	i := 0
	for i < len(h) && now.Sub(h[i]) >= window {
		i++
	}
	h = h[i:]
	if len(h) == 0 {
		delete(m.hits, key)
	}
	return h
}

func (m *memCounter) Hits(key string, n int, window time.Duration, now time.Time) ([]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recent(key, window, now)), nil
}

func (m *memCounter) Hit(key string, n int, window time.Duration, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.hits) > maxKeys {
		for k := range m.hits {
			m.recent(k, window, now)
		}
	}
	m.hits[key] = append(m.recent(key, window, now), now)
	return nil
}
