package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"

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

// At 40×12 the last screen is taller than the window and says "more below
// (Tab)": Tab and ↓ bring the rest (the services, the confirmation mail)
// into view, ↑ goes back up.
func TestSmallWindowDoneScrolls(t *testing.T) {
	e := newEnv(t)
	h := e.start(t, Options{Services: []string{"ENT", "Mail", "Moodle"}}, 40, 12)
	h.walk(func(snapshot) {})
	s := h.waitStep(flow.StepDone)
	h.mustShow(s, i18n.T("en", "scroll.below"))
	last := i18n.T("en", "done.bye")
	if shows(s, last) {
		t.Fatalf("the whole last screen fits at 40×12; the test needs a taller one:\n%s", s.text)
	}
	for range 12 {
		h.send(tab)
	}
	s = h.wait("the end of the last screen", func(s snapshot) bool { return shows(s, last) && shows(s, "- Moodle") })
	checkFits(t, s)
	for range 12 {
		h.send(tea.KeyPressMsg{Code: tea.KeyUp})
	}
	h.wait("back to the top", func(s snapshot) bool { return shows(s, "Your account is active.") })
}
