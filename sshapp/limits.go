package sshapp

import (
	"net"
	"net/netip"

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
