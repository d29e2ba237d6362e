package sshapp

import (
	"net"
	"net/netip"
	"strings"

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
