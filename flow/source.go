package flow

import "net/netip"

// Source is what every per-client limit counts: the IPv4 address, or the
// /64 of an IPv6 address (the block one subscriber gets). remote is an
// address with or without its port; an unparsable one is its own source.
func Source(remote string) string {
	ip, err := netip.ParseAddr(remote)
	if err != nil {
		ap, err := netip.ParseAddrPort(remote)
		if err != nil {
			return remote
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
