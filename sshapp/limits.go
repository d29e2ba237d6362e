package sshapp

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"activated/flow/i18n"
)

// clientIP is the address of a client without its port.
func clientIP(addr net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// bothLangs is a message in French then English, for the places where SSH
// carries text before the client's language is known.
func bothLangs(key string) string {
	return i18n.T("fr", key) + "\r\n" + i18n.T("en", key) + "\r\n"
}

// asciiFold spells French text without its accents, for the one place
// (the keyboard-interactive instruction) where OpenSSH prints anything
// beyond ASCII as octal escapes, whatever the locale.
func asciiFold(s string) string {
	return strings.NewReplacer(
		"à", "a", "â", "a", "ä", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
		"î", "i", "ï", "i", "ô", "o", "ö", "o", "ù", "u", "û", "u", "ü", "u", "ÿ", "y",
		"œ", "oe", "æ", "ae", "À", "A", "Â", "A", "Ç", "C", "É", "E", "È", "E", "Ê", "E",
		"Î", "I", "Ô", "O", "Ù", "U", "Û", "U", "’", "'", "«", "\"", "»", "\"", "\u00a0", " ", "\u202f", " ",
	).Replace(s)
}

// sessionTable holds the sessions open on the whole server, at most max.
// When it is full, a newcomer takes the place of a session that nobody
// uses: the wizard session idle longest (at least evictIdle) of the
// source holding the most sessions among those that have such a session,
// when that source holds at least two more than the newcomer's. One
// address cannot keep everyone else out with idle sessions (nor behind a
// bigger source whose sessions are in use), and a lecture hall behind one
// address gives up only sessions idle for minutes, only when the server is
// full. Staff sessions (a dashboard, audit --follow) are never taken.
type sessionTable struct {
	mu        sync.Mutex
	max       int
	evictIdle time.Duration
	n         int
	bySource  map[string]map[*activeSession]struct{}
}

func newSessionTable(max int, evictIdle time.Duration) *sessionTable {
	return &sessionTable{max: max, evictIdle: evictIdle, bySource: map[string]map[*activeSession]struct{}{}}
}

// acquire takes a place for a, or reports false: the server is full and
// no session gives up its place. A session that gives it up is told
// through its evicted channel. always: a place even past max (staff, whom
// an incident must not keep out), taken from no one.
func (t *sessionTable) acquire(a *activeSession, always bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n >= t.max && !always {
		v := t.victim(a.source)
		if v == nil {
			return false
		}
		t.drop(v)
		close(v.evicted)
	}
	m := t.bySource[a.source]
	if m == nil {
		m = map[*activeSession]struct{}{}
		t.bySource[a.source] = m
	}
	m[a] = struct{}{}
	t.n++
	return true
}

// release gives a's place back, unless it gave it up already.
func (t *sessionTable) release(a *activeSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.bySource[a.source][a]; ok {
		t.drop(a)
	}
}

func (t *sessionTable) drop(a *activeSession) {
	m := t.bySource[a.source]
	delete(m, a)
	if len(m) == 0 {
		delete(t.bySource, a.source)
	}
	t.n--
}

// victim is the session a newcomer from source takes the place of, or nil:
// the longest idle of the biggest source that has one to give. A source
// whose sessions are all in use (a lecture hall typing) or staff does not
// shield a smaller one's idle sessions.
func (t *sessionTable) victim(source string) *activeSession {
	var v *activeSession
	most := 0 // sessions of v's source
	for src, m := range t.bySource {
		if src == source || len(m) < len(t.bySource[source])+2 || len(m) < most {
			continue
		}
		for a := range m {
			if !a.evictable || a.idle() < t.evictIdle {
				continue
			}
			if v == nil || len(m) > most || a.idle() > v.idle() {
				v, most = a, len(m)
			}
		}
	}
	return v
}
