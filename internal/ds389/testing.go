package ds389

import (
	"context"
	"os"
	"testing"
	"time"

	"activated/internal/slapd"
)

// StartT starts a server seeded with accounts in t.TempDir() and stops it
// when the test ends. It fails the test, with the command to install it,
// when 389-ds is missing. The first start on a machine creates the
// template (dscreate, 15-30 s); later ones take a second or two.
func StartT(t testing.TB, opts Options, accounts ...slapd.Account) *Server {
	t.Helper()
	if _, err := os.Stat(NsSlapdPath); err != nil {
		t.Fatalf("389-ds not installed: run: %s", InstallHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Accounts = append(opts.Accounts, accounts...)
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start 389-ds: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop 389-ds: %v", err)
		}
	})
	return s
}
