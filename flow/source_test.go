package flow

import "testing"

func TestSource(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"192.0.2.7:5555":            "192.0.2.7",
		"[::ffff:192.0.2.7]:22":     "192.0.2.7",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:22": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:22":         "fe80::/64",
		"not an address":            "not an address",
	} {
		if got := Source(in); got != want {
			t.Errorf("Source(%q) = %q, want %q", in, got, want)
		}
	}
}
