// Package slapdtest starts a throwaway slapd for a test. It lives apart
// from package slapd, which the demo links into the production binary,
// so that the binary does not carry the testing package.
package slapdtest

import (
	"context"
	"os"
	"testing"
	"time"

	"activated/internal/slapd"
)

// Start starts a server seeded with accounts in t.TempDir() and stops it
// when the test ends. It fails the test, with the command to install it,
// when slapd is missing.
func Start(t testing.TB, accounts ...slapd.Account) *slapd.Server {
	t.Helper()
	if _, err := os.Stat(slapd.SlapdPath); err != nil {
		t.Fatalf("slapd not installed: run: %s", slapd.InstallHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := slapd.Start(ctx, slapd.Options{Dir: t.TempDir(), Accounts: accounts})
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
