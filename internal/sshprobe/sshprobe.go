// Package sshprobe holds what the abuse tool and the front-door tests do
// as a client: reach the wizard's first prompt.
package sshprobe

import (
	"fmt"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// Prompt ends every prompt of the wizard in plain mode (SPEC: "Each
// prompt is one line ending in `> `").
const Prompt = "> "

// FirstPrompt opens a plain shell session on c (no PTY, as a script or a
// screen reader's client does) and reads until the wizard's first prompt.
// It returns what was read. The caller bounds the time (a deadline on the
// connection, or closing c).
func FirstPrompt(c *gossh.Client) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := s.Shell(); err != nil {
		return "", err
	}
	var seen strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), Prompt) {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			return seen.String(), fmt.Errorf("before the first prompt: %w; output %q", err, seen.String())
		}
	}
	return seen.String(), nil
}
