package sshapp_test

import (
	"strings"
	"testing"
)

// The first screen is drawn once. charm.land/ssh queues the PTY's own
// window on the window-change channel, and wish forwards it as a window
// size: bubbletea has already reported that size, and a second report
// taken as a window change cleared and drew the whole screen again.
func TestFirstScreenDrawnOnce(t *testing.T) {
	f := startServer(t, nil)
	s, _, out := openSession(t, f.mustDial(t, "activate"), "xterm-256color", map[string]string{"LANG": "en_US.UTF-8"})
	waitFor(t, "the login screen", func() bool { return strings.Contains(out.String(), "Ctrl+C: quit") })
	// A real window change comes after the PTY's own window on the same
	// channel, so once it is drawn, the start's reports have all been.
	if err := s.WindowChange(12, 40); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the screen at 40 columns", func() bool {
		return strings.Contains(out.String(), "\r\nby mail when your account was created.")
	})
	if n := strings.Count(out.String(), "\x1b[2J"); n != 2 {
		t.Errorf("the screen was cleared %d times, want 2 (the first screen, the window change):\n%q", n, out.String())
	}
}
