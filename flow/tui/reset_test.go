package tui

import (
	"context"
	"testing"

	"activated/flow"
)

// A password reset in the TUI: the reset code opens the password step
// (charter unchanged), with no way back offered, and ends on its own
// sentence.
func TestResetScreens(t *testing.T) {
	e := newEnv(t)
	a := e.dir.Account("jdupont")
	a.Active, a.Charter = true, e.svc.CharterVersion()
	e.dir.Put(a)
	if err := e.svc.Begin(context.Background(), "jdupont", flow.Client{Remote: "192.0.2.1:1"}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailReset)}, 80, 24)
	s := h.waitStep(flow.StepPassword)
	h.mustShow(s, "Choose your new password.")
	if shows(s, "Esc: back") {
		t.Errorf("a reset offers a way back:\n%s", s.text)
	}
	h.send(esc)
	h.tm.Type(goodPassword)
	h.wait("checklist met", func(s snapshot) bool { return s.check })
	h.send(tab)
	h.tm.Type(goodPassword)
	h.send(enter)
	s = h.waitStep(flow.StepDone)
	h.mustShow(s, "Your new password is saved.")
	if e.dir.Password("jdupont") != goodPassword {
		t.Error("the directory did not get the new password")
	}
}
