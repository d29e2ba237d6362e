package sshapp_test

import (
	"strings"
	"testing"
	"time"

	"activated/flow/i18n"
	"activated/sshapp"
)

// A plain-mode user closed for idleness is told to come back in plain
// mode: "ssh CODE@host" would open the full-screen wizard.
func TestIdlePlainSessionSaysComeBackInPlainMode(t *testing.T) {
	f := startServer(t, func(c *sshapp.Config) { c.KeepAlive, c.IdleTimeout = 100*time.Millisecond, 300*time.Millisecond })
	s, _, out := openSession(t, f.mustDial(t, "activate"), "", map[string]string{"LANG": "en_US.UTF-8"})
	_ = s.Wait() // the connection is closed after the message
	waitFor(t, "the idle message", func() bool { return strings.Contains(out.String(), idleSaid) })
	if got := out.String(); !strings.Contains(got, "ssh -p 2222 CODE+plain@activate.example.org") {
		t.Errorf("the idle message does not keep plain mode:\n%q", tailOf(got, 300))
	}
}

// A mistyped code with the "+plain" suffix is refused with commands that
// keep the suffix: the user asked for plain mode.
func TestUnknownPlainUserToldPlainCommands(t *testing.T) {
	f := startServer(t, nil)
	stdout, stderr, status := run(t, f.mustDial(t, "K7M2-9XV4+plain"), "", map[string]string{"LANG": "en_GB.UTF-8"})
	want := i18n.T("en", "username.unknown",
		"ssh -p 2222 activate+plain@activate.example.org", "ssh -p 2222 "+i18n.T("en", "ssh.code")+"+plain@activate.example.org")
	if got := stdout + stderr; status != 1 || got != strings.ReplaceAll(want, "\r\n", "\n") {
		t.Errorf("status %d, output %q; want 1, %q", status, got, want)
	}
}

// A script tells how a plain session ended from its exit status: the
// input ended before the procedure did (the user left) is 2, not the 0 of
// a procedure gone to its end.
func TestPlainExitStatusSaysTheUserLeft(t *testing.T) {
	f := startServer(t, nil)
	stdout, _, status := run(t, f.mustDial(t, "activate+plain"), "", map[string]string{"LANG": "en_GB.UTF-8"})
	if status != 2 || !strings.Contains(stdout, "Login> ") {
		t.Errorf("plain session left at the login prompt: exit status %d, output %q; want 2", status, stdout)
	}
}
