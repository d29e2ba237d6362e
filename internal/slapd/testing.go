package slapd

import (
	"context"
	"os"
	"testing"
	"time"
)

// StartT starts a server seeded with accounts in t.TempDir() and stops it
// when the test ends. It fails the test, with the command to install it,
// when slapd is missing.
func StartT(t testing.TB, accounts ...Account) *Server {
	t.Helper()
	if _, err := os.Stat(SlapdPath); err != nil {
		t.Fatalf("slapd not installed: run: apt-get install -y slapd ldap-utils")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Dir: t.TempDir(), Accounts: accounts})
	if err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop slapd: %v", err)
		}
	})
	return s
}
