package tui

import (
	"context"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"activated/flow"
	"activated/flow/i18n"
)

// A client that sends no LANG (Windows' OpenSSH, PuTTY) reads the language
// saved in the dossier, and the dossier keeps it.
func TestNoLangKeepsSavedLanguage(t *testing.T) {
	e := newEnv(t) // default language: English
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	x, err := e.svc.Open(context.Background(), code, flow.Client{})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.SetLang("fr"); err != nil {
		t.Fatal(err)
	}
	x.Close()
	h := e.start(t, Options{Code: code, Client: flow.Client{Remote: "192.0.2.1:1234", Actor: "user"}}, 80, 24)
	s := h.waitStep(flow.StepCharter)
	h.mustShow(s, "Étape 3 sur 7 — Charte informatique")
	if d := e.dossier(t, "jdupont"); d.Lang != "fr" {
		t.Fatalf("dossier language %q, want fr (saved)", d.Lang)
	}
}

// gatedDir holds SetPassword until the test lets it go: an operation in
// flight the user may press keys during.
type gatedDir struct {
	flow.Directory
	entered chan struct{}
	release chan struct{}
}

func (g *gatedDir) SetPassword(ctx context.Context, a flow.Account, pw string) error {
	g.entered <- struct{}{}
	<-g.release
	return g.Directory.SetPassword(ctx, a, pw)
}

// F2 while Finish talks to the directory: the session is safe to use
// meanwhile (go test -race), the switch shows and is saved.
func TestLangSwitchWhileFinishing(t *testing.T) {
	e := newEnv(t)
	g := &gatedDir{Directory: e.dir, entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := flow.New(e.svc.Config(), e.db, g, e.clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	h := e.start(t, Options{Code: e.code(t, "jdupont", flow.MailInvitation)}, 80, 24)
	h.finishInvited()
	<-g.entered
	h.send(f2)
	h.wait("French while busy", func(s snapshot) bool { return s.busy && shows(s, i18n.T("fr", "pw.finishing")) })
	close(g.release)
	s := h.waitStep(flow.StepDone)
	h.mustShow(s, i18n.T("fr", "done.title"))
	h.wait("language saved", func(snapshot) bool { return e.dossier(t, "jdupont").Lang == "fr" })
	h.send(enter)
	h.tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// finishInvited walks a session opened with an invitation code from the
// charter to the password, typed twice and sent.
func (h *harness) finishInvited() {
	h.t.Helper()
	h.waitStep(flow.StepCharter)
	h.send(space, enter)
	h.waitStep(flow.StepDirectory)
	h.send(space, down, down, space, enter)
	h.waitStep(flow.StepMailbox)
	h.send(enter)
	h.waitStep(flow.StepPassword)
	h.tm.Type(goodPassword)
	h.wait("checklist met", func(s snapshot) bool { return s.check })
	h.send(tab)
	h.tm.Type(goodPassword)
	h.send(enter)
}
