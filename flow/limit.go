package flow

import (
	"sync"
	"time"
)

// limiter allows at most n events per key in a sliding window. It lives in
// memory: a restart forgets it, which errs on the side of the user.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	hits   map[string][]time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, hits: map[string][]time.Time{}}
}

// maxKeys bounds the memory a flood of distinct keys can take: past it, the
// table is pruned of every key whose window has passed.
const maxKeys = 100_000

func (l *limiter) recent(key string, now time.Time) []time.Time {
	h := l.hits[key]
	i := 0
	for i < len(h) && now.Sub(h[i]) >= l.window {
		i++
	}
	h = h[i:]
	if len(h) == 0 {
		delete(l.hits, key)
	}
	return h
}

// Blocked reports how long key must wait before its next event, or 0.
func (l *limiter) Blocked(key string, now time.Time) time.Duration {
	if l.n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.recent(key, now)
	if len(h) < l.n {
		return 0
	}
	return h[len(h)-l.n].Add(l.window).Sub(now)
}

// Hit records one event for key.
func (l *limiter) Hit(key string, now time.Time) {
	if l.n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > maxKeys {
		for k := range l.hits {
			l.recent(k, now)
		}
	}
	h := l.recent(key, now)
	l.hits[key] = append(h, now)
}

// Take is Blocked then Hit: it returns a *RateLimitError instead of
// recording when the key is over its limit.
func (l *limiter) Take(key string, now time.Time) error {
	if w := l.Blocked(key, now); w > 0 {
		return &RateLimitError{Wait: w.Round(time.Second) + time.Second}
	}
	l.Hit(key, now)
	return nil
}
