package sshapp

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// verdict is what the connection rate limiter says about a new connection.
type verdict int

const (
	allow   verdict = iota
	limited         // over the limit: told so in the auth banner, then refused
	drop            // far over it (a flood): closed before any cryptography
)

// maxTracked bounds the memory a flood of addresses can take: past it, the
// table is pruned of every address whose window has passed.
const maxTracked = 100_000

// connLimiter counts connections per client address in fixed one-minute
// windows. IPv6 addresses count per /64, the block one subscriber gets.
type connLimiter struct {
	perMinute int // < 0: no limit
	mu        sync.Mutex
	windows   map[netip.Prefix]*window
}

type window struct {
	start time.Time
	n     int
}

func newConnLimiter(perMinute int) *connLimiter {
	return &connLimiter{perMinute: perMinute, windows: map[netip.Prefix]*window{}}
}

// take counts one connection from addr.
func (l *connLimiter) take(addr net.Addr, now time.Time) verdict {
	if l.perMinute < 0 {
		return allow
	}
	key := clientBlock(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= time.Minute {
		if len(l.windows) >= maxTracked {
			for k, old := range l.windows {
				if now.Sub(old.start) >= time.Minute {
					delete(l.windows, k)
				}
			}
		}
		w = &window{start: now}
		l.windows[key] = w
	}
	w.n++
	switch {
	case w.n <= l.perMinute:
		return allow
	case w.n <= 2*l.perMinute:
		return limited
	default:
		return drop
	}
}

// clientIP is the address of a client without its port.
func clientIP(addr net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// clientBlock is what the rate limit counts: the IPv4 address, or the /64
// of an IPv6 address.
func clientBlock(addr net.Addr) netip.Prefix {
	ip := clientIP(addr)
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// sessionSlots caps the sessions open at once on the whole server.
type sessionSlots chan struct{}

func (s sessionSlots) acquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s sessionSlots) release() { <-s }
