package tui

import (
	"context"
	"testing"

	"activated/flow"
	"activated/flow/i18n"
)

// At 40×12 a screen taller than the window says there is more, and the
// charter says how far it was read.
func TestSmallWindowSaysMore(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailInvitation)}, 40, 12)
	s := h.waitStep(flow.StepCharter)
	h.mustShow(s, i18n.T("en", "charter.position", 0))
	h.send(space, enter)
	h.waitStep(flow.StepDirectory)
	h.send(space, down, down, space, enter)
	h.waitStep(flow.StepMailbox)
	h.send(space) // redirect: the address, the keep-copy box and the note below
	s = h.wait("more below", func(s snapshot) bool { return shows(s, i18n.T("en", "scroll.below")) })
	checkFits(t, s)
	h.send(tab, tab)
	s = h.wait("keep-copy in view", func(s snapshot) bool { return shows(s, "> [x] Keep a copy") })
	checkFits(t, s)
}

// A terminal whose charset is not UTF-8 gets only ASCII.
func TestASCIIOnly(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{ASCII: true, Code: e.code(t, "jdupont", flow.MailInvitation), Client: flow.Client{Remote: "192.0.2.1:1", Actor: "user", Lang: "fr"}}, 80, 24)
	for _, step := range []flow.Step{flow.StepCharter, flow.StepDirectory} {
		s := h.waitStep(step)
		for i := 0; i < len(s.raw); i++ {
			if s.raw[i] >= 0x80 {
				t.Fatalf("step %s: byte %#x at %d:\n%s", step, s.raw[i], i, s.text)
			}
		}
		h.mustShow(s, "Etape")
		h.send(space, enter)
	}
}
