package sshapp_test

import (
	"sync"
	"testing"

	"activated/sshapp"
)

// outcomes counts ConnectionOutcome by outcome.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) ConnectionOutcome(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[outcome]++
}
func (o *outcomes) SessionOpened(string) {}
func (o *outcomes) SessionClosed(string) {}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// A connection the door turns away (max_startups, max_startups_per_source)
// is counted, as "busy": an operator sees a lecture hall being refused in
// activated_ssh_connections_total, not only in debug logs.
func TestDoorRefusalCounted(t *testing.T) {
	m := &outcomes{n: map[string]int{}}
	f := startServer(t, func(c *sshapp.Config) { c.MaxStartups, c.MaxStartupsPerSource, c.Metrics = 4, 2, m })
	var flood silentConns
	flood.open(t, f.addr, loopbacks(2, 1), 3)
	waitFor(t, "the third startup from one address closed", func() bool { return flood.held.Load() == 2 })
	waitFor(t, "the refusal counted as busy", func() bool { return m.get("busy") == 1 })
}
