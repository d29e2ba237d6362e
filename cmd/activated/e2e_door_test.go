package main

import (
	"os"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"activated/internal/sshprobe"
)

// reachStep1 connects as activate, opens a plain session and waits for
// the login prompt.
func (h *harness) reachStep1() error {
	c, err := h.dial("activate")
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = sshprobe.FirstPrompt(c)
	return err
}

// With the default config, the front door lets a crowd behind one address
// in (the old per-minute cap let 30 in), and refuses staff as soon as the
// staff keys file is made world-writable.
func TestE2EFrontDoorDefaults(t *testing.T) {
	h := newHarness(t, e2eAccounts()...)

	const users, atOnce = 60, 6
	errs := make(chan error, users)
	sem := make(chan struct{}, atOnce)
	var wg sync.WaitGroup
	for range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- h.reachStep1()
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed == 0 {
				t.Errorf("first refusal: %v", err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d users behind one address did not reach step 1", failed, users)
	}

	staffHelp := func() error {
		c, err := h.dial("staff", gossh.PublicKeys(h.staffKey))
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Run("help")
	}
	must(t, staffHelp())
	must(t, os.Chmod(h.cfg.SSH.StaffAuthorizedKeys, 0o666))
	if staffHelp() == nil {
		t.Fatal("staff accepted with a world-writable staff keys file")
	}
	must(t, os.Chmod(h.cfg.SSH.StaffAuthorizedKeys, 0o600))
	must(t, staffHelp())
}
