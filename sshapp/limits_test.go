package sshapp

import (
	"net"
	"testing"
	"time"
)

func tcpAddr(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }

func TestConnLimiter(t *testing.T) {
	l := newConnLimiter(2)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := tcpAddr("192.0.2.1:1000")
	want := []verdict{allow, allow, limited, limited, drop, drop}
	for i, w := range want {
		if got := l.take(a, now.Add(time.Duration(i)*time.Second)); got != w {
			t.Errorf("connection %d: %v, want %v", i+1, got, w)
		}
	}
	if got := l.take(tcpAddr("192.0.2.2:1000"), now); got != allow {
		t.Errorf("another address: %v, want allow", got)
	}
	if got := l.take(tcpAddr("[::ffff:192.0.2.1]:2000"), now); got != drop {
		t.Errorf("the same IPv4 address mapped in IPv6: %v, want drop", got)
	}
	if got := l.take(a, now.Add(time.Minute)); got != allow {
		t.Errorf("a minute later: %v, want allow", got)
	}

	// IPv6 addresses count per /64.
	l.take(tcpAddr("[2001:db8:1:2::1]:22"), now)
	l.take(tcpAddr("[2001:db8:1:2::2]:22"), now)
	if got := l.take(tcpAddr("[2001:db8:1:2:ffff::3]:22"), now); got != limited {
		t.Errorf("third address of a /64: %v, want limited", got)
	}
	if got := l.take(tcpAddr("[2001:db8:1:3::1]:22"), now); got != allow {
		t.Errorf("another /64: %v, want allow", got)
	}

	if got := newConnLimiter(-1).take(a, now); got != allow {
		t.Errorf("no limit: %v", got)
	}
}

func TestConnLimiterPrunes(t *testing.T) {
	l := newConnLimiter(1)
	now := time.Now()
	for i := range maxTracked {
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
		l.take(&net.TCPAddr{IP: ip, Port: 1}, now)
	}
	l.take(tcpAddr("192.0.2.9:1"), now.Add(2*time.Minute))
	if len(l.windows) != 1 {
		t.Errorf("%d windows kept after pruning, want 1", len(l.windows))
	}
}

func TestSessionSlots(t *testing.T) {
	s := make(sessionSlots, 2)
	if !s.acquire() || !s.acquire() {
		t.Fatal("could not take two slots of two")
	}
	if s.acquire() {
		t.Fatal("took a third slot of two")
	}
	s.release()
	if !s.acquire() {
		t.Fatal("a released slot was not reusable")
	}
}
