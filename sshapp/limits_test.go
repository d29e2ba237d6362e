package sshapp

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"activated/flow"
)

// session is a wizard session (or a staff one) from src, idle for idle.
func session(src string, idle time.Duration, staff bool) *activeSession {
	a := &activeSession{source: src, evictable: !staff, evicted: make(chan struct{})}
	a.last.Store(time.Now().Add(-idle).UnixNano())
	return a
}

func evicted(a *activeSession) bool {
	select {
	case <-a.evicted:
		return true
	default:
		return false
	}
}

func TestSessionTable(t *testing.T) {
	const minute = time.Minute
	t.Run("staff get a place past the cap, taken from no one", func(t *testing.T) {
		tb := newSessionTable(1, minute)
		idle := session("A", 9*minute, false)
		tb.acquire(idle, false)
		if !tb.acquire(session("B", 0, true), true) || evicted(idle) {
			t.Fatalf("staff refused, or took an idle wizard's place (evicted %v)", evicted(idle))
		}
	})
	t.Run("a released place is reusable", func(t *testing.T) {
		tb := newSessionTable(2, minute)
		a, b := session("A", 0, false), session("B", 0, false)
		if !tb.acquire(a, false) || !tb.acquire(b, false) {
			t.Fatal("could not take two places of two")
		}
		if tb.acquire(session("C", 0, false), false) {
			t.Fatal("took a third place of two, no session idle")
		}
		tb.release(a)
		if !tb.acquire(session("C", 0, false), false) {
			t.Fatal("a released place was not reusable")
		}
	})
	t.Run("the longest idle of the biggest source gives its place", func(t *testing.T) {
		tb := newSessionTable(4, minute)
		a1, a2, a3 := session("A", 2*minute, false), session("A", 5*minute, false), session("A", 0, false)
		b := session("B", 9*minute, false)
		for _, s := range []*activeSession{a1, a2, a3, b} {
			if !tb.acquire(s, false) {
				t.Fatal("place refused below the cap")
			}
		}
		c := session("C", 0, false)
		if !tb.acquire(c, false) {
			t.Fatal("newcomer refused while A holds three sessions, two idle")
		}
		if !evicted(a2) || evicted(a1) || evicted(a3) || evicted(b) {
			t.Fatalf("evicted: a1 %v a2 %v a3 %v b %v; want a2 only (A's longest idle)", evicted(a1), evicted(a2), evicted(a3), evicted(b))
		}
		tb.release(a2) // its session ends later: the place is not given back twice
		if tb.acquire(session("D", 0, false), false) && !evicted(a1) {
			t.Fatal("a place was counted twice")
		}
	})
	t.Run("no place taken from sessions in use, from staff, or from a source no bigger", func(t *testing.T) {
		for name, held := range map[string][]*activeSession{
			"in use":         {session("A", 30*time.Second, false), session("A", 0, false), session("A", 10*time.Second, false)},
			"staff":          {session("A", 9*minute, true), session("A", 9*minute, true), session("A", 9*minute, true)},
			"newcomer's own": {session("C", 9*minute, false), session("C", 9*minute, false), session("C", 9*minute, false)},
			"one more only":  {session("A", 9*minute, false), session("A", 9*minute, false), session("C", 9*minute, false)},
		} {
			tb := newSessionTable(3, minute)
			for _, s := range held {
				tb.acquire(s, false)
			}
			if tb.acquire(session("C", 0, false), false) {
				t.Errorf("%s: a newcomer from C took a place", name)
			}
			for _, s := range held {
				if evicted(s) {
					t.Errorf("%s: a session was told it gave its place", name)
				}
			}
		}
	})
	t.Run("a bigger source with no session to give does not shield a smaller one's idle sessions", func(t *testing.T) {
		// A lecture hall (A) typing, or staff, holds the most; B holds two
		// sessions idle for minutes: a newcomer from C takes B's idlest.
		for name, a := range map[string][]*activeSession{
			"in use": {session("A", 0, false), session("A", 0, false), session("A", 0, false)},
			"staff":  {session("A", 9*minute, true), session("A", 9*minute, true), session("A", 9*minute, true)},
		} {
			tb := newSessionTable(5, minute)
			b1, b2 := session("B", 3*minute, false), session("B", 7*minute, false)
			for _, s := range append(a, b1, b2) {
				if !tb.acquire(s, false) {
					t.Fatalf("%s: place refused below the cap", name)
				}
			}
			if !tb.acquire(session("C", 0, false), false) {
				t.Errorf("%s: newcomer from C refused while B holds two sessions idle for minutes", name)
			}
			if !evicted(b2) || evicted(b1) {
				t.Errorf("%s: evicted b1 %v b2 %v; want b2 only (B's longest idle)", name, evicted(b1), evicted(b2))
			}
			for _, s := range a {
				if evicted(s) {
					t.Errorf("%s: a session of A gave its place", name)
				}
			}
		}
	})
}

// testDoor is a door with a settable clock.
type testDoor struct {
	*door
	t   *testing.T
	now time.Time
}

func newTestDoor(t *testing.T, max, perSource int) *testDoor {
	d := &testDoor{door: newDoor(max, perSource), t: t, now: time.Unix(1_700_000_000, 0)}
	d.door.now = func() time.Time { return d.now }
	return d
}

// conn is a new connection from source src, opened now.
func (d *testDoor) conn(src string) *loggedConn {
	a, b := net.Pipe()
	d.t.Cleanup(func() { a.Close(); b.Close() })
	return &loggedConn{Conn: a, rec: &connRecord{start: d.now, remote: src, source: src},
		log: slog.New(slog.DiscardHandler), door: d.door, closed: func() {}}
}

func TestDoorCapsStartupsPerSourceAndServerWide(t *testing.T) {
	d := newTestDoor(t, 3, 2)
	a1, a2, a3 := d.conn("10.0.0.1"), d.conn("10.0.0.1"), d.conn("10.0.0.1")
	if d.admit(a1) != admitted || d.admit(a2) != admitted {
		t.Fatal("the first two from one source were not admitted")
	}
	if d.admit(a3) != refused {
		t.Fatal("a third startup from one source was admitted")
	}
	if d.admit(d.conn("10.0.0.2")) != admitted {
		t.Fatal("another source was refused below the server-wide cap")
	}
	if d.admit(d.conn("10.0.0.3")) != refused {
		t.Fatal("a fourth startup was admitted past the server-wide cap of 3")
	}
	// Authenticated connections are no longer startups: a lecture hall
	// behind one address gets in, a few at a time.
	d.authenticated(a1)
	if d.admit(a3) != admitted {
		t.Fatal("refused after a startup of its source authenticated")
	}
	if all, src := d.counts("10.0.0.1"); all != 3 || src != 2 {
		t.Errorf("counts %d, %d; want 3, 2", all, src)
	}
}

// Addresses in one IPv6 /64 are one source: rotating through them buys
// nothing.
func TestDoorCountsAnIPv6Slash64AsOneSource(t *testing.T) {
	d := newTestDoor(t, -1, 2)
	for i, remote := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::abcd"} {
		c := d.conn(flow.Source(remote))
		if got, want := d.admit(c), []admission{admitted, admitted, refused}[i]; got != want {
			t.Errorf("%s: %v, want %v", remote, got, want)
		}
	}
	if d.admit(d.conn(flow.Source("2001:db8:1:3::1"))) != admitted {
		t.Error("the next /64 was refused")
	}
}

func TestDoorEvictsTheOldestSilentStartup(t *testing.T) {
	d := newTestDoor(t, 2, -1)
	silent, talking := d.conn("10.0.0.1"), d.conn("10.0.0.2")
	talking.heard.Store(d.now.UnixNano())
	d.admit(silent)
	d.admit(talking)
	if d.admit(d.conn("10.0.0.3")) != refused {
		t.Fatal("a silent startup younger than a second was evicted")
	}
	d.now = d.now.Add(2 * time.Second)
	if d.admit(d.conn("10.0.0.3")) != admitted {
		t.Fatal("a new connection was refused while a silent one held a startup")
	}
	if _, err := silent.Conn.Write([]byte("x")); err == nil {
		t.Error("the silent connection is still open")
	}
	if _, src := d.counts("10.0.0.2"); src != 1 {
		t.Error("the connection that had spoken was evicted")
	}
}

// A handshake left hanging after a few bytes (a slow-loris flood that
// sends its version, then nothing) makes room too, but only once it has
// been quiet for stalledAfter, and after any silent one.
func TestDoorEvictsAStalledStartup(t *testing.T) {
	d := newTestDoor(t, 2, -1)
	stalled := d.conn("10.0.0.1")
	stalled.heard.Store(d.now.UnixNano())
	d.admit(stalled)
	d.now = d.now.Add(stalledAfter - time.Second)
	silent := d.conn("10.0.0.2")
	d.admit(silent)
	d.now = d.now.Add(2 * time.Second) // the silent one: 2 s; the stalled one: quiet for stalledAfter+1 s
	if d.admit(d.conn("10.0.0.3")) != admitted {
		t.Fatal("refused while idle startups held the door")
	}
	if _, src := d.counts("10.0.0.2"); src != 0 {
		t.Error("the stalled connection was evicted before the silent one")
	}
	if d.admit(d.conn("10.0.0.4")) != admitted {
		t.Fatal("refused while a stalled startup held the door")
	}
	if _, src := d.counts("10.0.0.1"); src != 0 {
		t.Error("the stalled connection was not evicted")
	}
	if d.admit(d.conn("10.0.0.5")) != refused {
		t.Error("a startup younger than a second was evicted")
	}
}

func TestDoorPenalizesMisbehaviourOnly(t *testing.T) {
	d := newTestDoor(t, -1, -1)
	// Honest clients cost nothing, however many.
	for range 1000 {
		c := d.conn("10.0.0.1")
		d.admit(c)
		c.heard.Store(d.now.UnixNano())
		c.rec.auth(user{kind: userActivate}, nil)
		d.authenticated(c)
		c.rec.openChannel()
		c.Close()
	}
	if d.penalized("10.0.0.1") {
		t.Fatal("honest connections were penalized")
	}
	// Ten that authenticate and leave at once (a monitoring probe): 1 s each.
	for range 10 {
		c := d.conn("10.0.0.1")
		d.admit(c)
		c.heard.Store(d.now.UnixNano())
		c.rec.auth(user{kind: userActivate}, nil)
		d.authenticated(c)
		c.Close()
	}
	if d.penalized("10.0.0.1") {
		t.Fatal("ten probes that authenticated and left were penalized")
	}
	d.now = d.now.Add(time.Minute)
	// Two connections that authenticate and open no session: 20 s owed,
	// past the 15 s threshold.
	for range 2 {
		c := d.conn("10.0.0.1")
		d.admit(c)
		c.heard.Store(d.now.UnixNano())
		c.rec.auth(user{kind: userActivate}, nil)
		d.authenticated(c)
		c.closeUnlessSession()
	}
	if !d.penalized("10.0.0.1") || d.penalized("10.0.0.2") {
		t.Fatal("penalty not applied to the misbehaving source only")
	}
	// One connection at a time is let through to be told why.
	first := d.conn("10.0.0.1")
	if d.admit(first) != explain || d.admit(d.conn("10.0.0.1")) != refused {
		t.Fatal("not one explaining connection at a time")
	}
	first.heard.Store(d.now.UnixNano())
	first.Close()
	if d.admit(d.conn("10.0.0.1")) != explain {
		t.Fatal("no explaining connection after the first closed")
	}
	// The debt runs down with time.
	d.now = d.now.Add(penaltyNoSession)
	if d.penalized("10.0.0.1") {
		t.Error("still penalized after the debt ran below the threshold")
	}
}

func TestDoorSilentConnectionsPenalized(t *testing.T) {
	d := newTestDoor(t, -1, -1)
	for range 4 {
		c := d.conn("10.0.0.9")
		d.admit(c)
		c.Close() // nothing ever received
	}
	if !d.penalized("10.0.0.9") {
		t.Error("four silent connections left their source unpenalized")
	}
}

func TestDoorPenaltyTableBounded(t *testing.T) {
	d := newTestDoor(t, -1, -1)
	d.maxPenalized = 1000
	for i := range d.maxPenalized + 100 {
		d.penalize(fmt.Sprintf("src%d", i), time.Minute)
	}
	if n := len(d.penalty); n > d.maxPenalized {
		t.Fatalf("%d penalties kept, bound %d", n, d.maxPenalized)
	}
	d.now = d.now.Add(2 * time.Minute)
	d.penalize("late", time.Minute)
	if len(d.penalty) != 1 {
		t.Errorf("%d penalties after the others expired, want 1", len(d.penalty))
	}
}
