package sshapp

import (
	"sync"
	"time"
)

// Penalties a client address (flow.Source) earns when one of its
// connections misbehaves, after OpenSSH's PerSourcePenalties. They add up;
// once a source owes more than penaltyMin, its new connections are
// refused at accept until the debt has run down, at most penaltyMax ahead.
// Honest users behind one NAT address cost nothing however many they are:
// only misbehaviour counts (wrong codes are counted by flow).
const (
	penaltySilent    = 5 * time.Second  // connected, sent nothing, never authenticated
	penaltyNoAuth    = 1 * time.Second  // left during the handshake (a "no" at the host key prompt)
	penaltyProtocol  = 5 * time.Second  // a handshake that failed on an error
	penaltyGrace     = 10 * time.Second // still not authenticated at the handshake timeout
	penaltyNoSession = 10 * time.Second // authenticated, then opened no session in time (closed by the server)
	penaltyMin       = 15 * time.Second
	// A startup that has sent nothing for silentAfter, or nothing more for
	// stalledAfter, makes room for a new connection when the door is full.
	silentAfter  = time.Second
	stalledAfter = 5 * time.Second
	penaltyMax   = 10 * time.Minute
	// maxPenalized bounds the penalty table: past it, expired entries are
	// dropped, and while it stays full new penalties are not recorded
	// (OpenSSH's "permissive" overflow mode: a flood of addresses cannot
	// grow memory, nor lock out addresses it has not used).
	maxPenalized = 65_536
)

// admission is what the door says about a new connection.
type admission int

const (
	admitted admission = iota
	// explain: the source is penalized; this connection (one at a time per
	// source) is let through the handshake only to be told why in the
	// authentication banner, then refused.
	explain
	refused // closed at once, before any cryptography
)

// door applies, at accept and before any cryptography, the caps on
// connections that have not finished authentication (OpenSSH's
// MaxStartups), server-wide and per source, and the per-source penalties.
// Its tables hold only sources with a connection in the handshake or a
// penalty, so their memory is bounded.
type door struct {
	max, perSource int // < 0: no cap
	maxPenalized   int
	now            func() time.Time

	mu       sync.Mutex
	startups map[*loggedConn]struct{} // connections not yet authenticated
	bySource map[string]int           // startups per source
	explains map[string]bool          // sources with an explaining connection open
	penalty  map[string]time.Time     // source → end of its penalty
}

func newDoor(max, perSource int) *door {
	return &door{
		max: max, perSource: perSource, maxPenalized: maxPenalized, now: time.Now,
		startups: map[*loggedConn]struct{}{}, bySource: map[string]int{},
		explains: map[string]bool{}, penalty: map[string]time.Time{},
	}
}

// admit decides on c, a new connection. An admitted connection counts as a
// startup until authenticated or closed. When a cap is reached, an idle
// startup makes room for c: first the oldest that has sent nothing at all
// for a second (a silent flood, never an honest client: those speak
// first), else the one whose last byte is the oldest, if that is more than
// stalledAfter ago (a handshake left hanging; an honest client waits that
// long only at OpenSSH's host key prompt).
func (d *door) admit(c *loggedConn) admission {
	d.mu.Lock()
	defer d.mu.Unlock()
	src := c.rec.source
	verdict := admitted
	if until, ok := d.penalty[src]; ok {
		switch {
		case !d.now().Before(until):
			delete(d.penalty, src)
		case until.Sub(d.now()) > penaltyMin:
			if d.explains[src] {
				return refused
			}
			verdict = explain
		}
	}
	if d.perSource >= 0 && d.bySource[src] >= d.perSource {
		if victim := d.idlest(src); victim != nil {
			d.release(victim)
			go victim.evict()
		} else {
			return refused
		}
	}
	if d.max >= 0 && len(d.startups) >= d.max {
		if victim := d.idlest(""); victim != nil {
			d.release(victim)
			go victim.evict()
		} else {
			return refused
		}
	}
	d.startups[c] = struct{}{}
	d.bySource[src]++
	if verdict == explain {
		d.explains[src] = true
		c.rec.explaining = true
	}
	return verdict
}

// idlest is the startup (of src, or of any source when src is "") to
// evict, nil when none is idle enough: see admit.
func (d *door) idlest(src string) *loggedConn {
	var silent, stalled *loggedConn
	now := d.now()
	var stalledSince int64
	for c := range d.startups {
		if src != "" && c.rec.source != src {
			continue
		}
		switch heard := c.heard.Load(); {
		case heard == 0 && c.rec.start.Before(now.Add(-silentAfter)):
			if silent == nil || c.rec.start.Before(silent.rec.start) {
				silent = c
			}
		case heard != 0 && heard < now.Add(-stalledAfter).UnixNano():
			if stalled == nil || heard < stalledSince {
				stalled, stalledSince = c, heard
			}
		}
	}
	if silent != nil {
		return silent
	}
	return stalled
}

// release ends c's startup: it authenticated, or it is closing.
func (d *door) release(c *loggedConn) {
	if _, ok := d.startups[c]; !ok {
		return
	}
	delete(d.startups, c)
	src := c.rec.source
	if d.bySource[src]--; d.bySource[src] <= 0 {
		delete(d.bySource, src)
	}
	if c.rec.explaining {
		delete(d.explains, src)
	}
}

// authenticated ends c's startup.
func (d *door) authenticated(c *loggedConn) {
	d.mu.Lock()
	d.release(c)
	d.mu.Unlock()
}

// closed ends c's startup, if any, and charges its source for cost.
func (d *door) closed(c *loggedConn, cost time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release(c)
	if cost > 0 {
		d.penalize(c.rec.source, cost)
	}
}

func (d *door) penalize(src string, cost time.Duration) {
	now := d.now()
	until, ok := d.penalty[src]
	if !ok && len(d.penalty) >= d.maxPenalized {
		for s, u := range d.penalty {
			if !now.Before(u) {
				delete(d.penalty, s)
			}
		}
		if len(d.penalty) >= d.maxPenalized {
			return
		}
	}
	if until.Before(now) {
		until = now
	}
	until = until.Add(cost)
	if limit := now.Add(penaltyMax); until.After(limit) {
		until = limit
	}
	d.penalty[src] = until
}

// penalized tells whether src's new connections are refused now.
func (d *door) penalized(src string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.penalty[src]
	return ok && until.Sub(d.now()) > penaltyMin
}

// counts is the number of startups now, server-wide and for src.
func (d *door) counts(src string) (all, fromSrc int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.startups), d.bySource[src]
}
