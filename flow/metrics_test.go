package flow_test

import (
	"context"
	"maps"
	"sync"
	"testing"

	"activated/flow"
)

// countMetrics is flow.Metrics in memory.
type countMetrics struct {
	mu        sync.Mutex
	steps     map[string]int
	activated int
}

func (m *countMetrics) StepEntered(s string) { m.mu.Lock(); m.steps[s]++; m.mu.Unlock() }
func (m *countMetrics) Activated()           { m.mu.Lock(); m.activated++; m.mu.Unlock() }

// Each step a dossier moves on to is counted once: a second Begin, a
// revoke that sends it back, a write that changes no step count nothing.
func TestMetricsCountStepsOnce(t *testing.T) {
	e := newEnv(t)
	m := &countMetrics{steps: map[string]int{}}
	e.cfg.Metrics = m
	e.restart()
	e.svc.EnterLogin()
	must(t, e.svc.Begin(context.Background(), "amartin", user)) // walk begins again: a new code, the same step
	d := walk(t, e, "amartin", "", func(string, *flow.Session) *flow.Session { return nil })
	if d.Activated.IsZero() {
		t.Fatal("not activated")
	}
	want := map[string]int{"login": 1, "recovery-code": 1, "charter": 1, "directory": 1, "mailbox": 1, "password": 1, "done": 1}
	if !maps.Equal(m.steps, want) || m.activated != 1 {
		t.Fatalf("steps %v, activations %d; want %v, 1", m.steps, m.activated, want)
	}
	// Staff revoke a dossier half-way: it goes back, which is no step entered.
	must(t, e.svc.Begin(context.Background(), "jdupont", user))
	x, err := e.svc.Open(context.Background(), e.lastCode("jdupont", flow.MailRecovery), user)
	must(t, err)
	x.Close()
	must(t, e.svc.Revoke("jdupont", flow.Client{Actor: "staff:test"}))
	if m.steps["recovery-code"] != 2 || m.steps["charter"] != 2 {
		t.Fatalf("after a revoke: %v", m.steps)
	}
}
