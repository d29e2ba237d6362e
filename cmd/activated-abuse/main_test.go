package main

import (
	"strings"
	"testing"
)

func TestOnlyLoopbackUnlessRemote(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		flood  int
		err    string
	}{
		{"127.0.0.1:2222", false, 2000, ""},
		{"[::1]:2222", false, 2000, ""},
		{"192.0.2.1:22", false, 2000, "not a loopback address"},
		{"192.0.2.1:22", true, 2000, ""},
		{"127.0.0.1:2222", false, 100_000, "bounded"},
		{"127.0.0.1", false, 2000, "-addr"},
	} {
		o := options{addr: tc.addr, remote: tc.remote, flood: tc.flood, abrupt: 1000, natUsers: 300, floodSources: 100}
		err := o.check()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s remote=%v flood=%d: %v, want %q", tc.addr, tc.remote, tc.flood, err, tc.err)
		}
	}
}
