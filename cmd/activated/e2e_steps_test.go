package main

// End-to-end tests of the wizard defects found by walking it as a new
// user (issue 9), through the real server, in the TUI and in plain mode.

import (
	"context"
	"golang.org/x/text/encoding/charmap"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/internal/slapd"
)

const stepsHelpdesk = "Assistance 04 67 00 00 00 · help@univ.example"

func stepsAccounts() []slapd.Account {
	return []slapd.Account{
		{Login: "jdupont", GivenName: "Jeanne", Surname: "Dupont", RecoveryMail: "jeanne@perso.example.net", Affiliation: "staff"},
		{Login: "amartin", GivenName: "Alex", Surname: "Martin", RecoveryMail: "alex@perso.example.net", Affiliation: "student"},
		{Login: "bother", GivenName: "Bea", Surname: "Other", RecoveryMail: "bea@perso.example.net", Affiliation: "student"},
		{Login: "cnomail", GivenName: "Chris", Surname: "Nomail", RecoveryMail: "chris@perso.example.net", Affiliation: "student"},
		{Login: "hmoreau", GivenName: "Hélène", Surname: "Moreau", RecoveryMail: "helene@perso.example.net", Affiliation: "staff"},
		{Login: "rrevoke", GivenName: "Remi", Surname: "Revoke", RecoveryMail: "remi@perso.example.net", Affiliation: "student"},
		{Login: "mlimit", GivenName: "Max", Surname: "Limit", RecoveryMail: "max@perso.example.net", Affiliation: "student"},
		{Login: "llatin", GivenName: "Luc", Surname: "Latin", RecoveryMail: "luc@perso.example.net", Affiliation: "student"},
	}
}

// dropMail removes the institutional address of login's entry.
func (h *harness) dropMail(login string) {
	h.t.Helper()
	c, err := ldap.DialURL(h.ldap.URL)
	must(h.t, err)
	defer c.Close()
	must(h.t, c.Bind(h.ldap.AdminDN, h.ldap.AdminPassword))
	m := ldap.NewModifyRequest("uid="+login+","+h.ldap.PeopleDN, nil)
	m.Delete("mail", nil)
	must(h.t, c.Modify(m))
}

// plainTo walks a plain session in English from the login to the prompt
// of step to (charter accepted, not public, no redirect on the way).
func plainTo(h *harness, login, recovery string, to flow.Step) *plainSession {
	h.t.Helper()
	p := h.openPlain("activate", "en_US.UTF-8")
	p.waitPrompt("Login")
	n := len(h.mailsTo(recovery))
	p.answer(login)
	p.waitPrompt("Code from the mail")
	p.answer(h.code(recovery, n))
	for s := flow.StepCharter; s < to; s++ {
		switch s {
		case flow.StepCharter:
			p.waitPrompt("accept the IT charter")
			p.answer("y")
		case flow.StepDirectory:
			p.waitPrompt("public directory")
			p.answer("n")
		case flow.StepMailbox:
			p.waitPrompt("Redirect my mail")
			p.answer("n")
			s = flow.StepVerifyRedirect
		}
	}
	return p
}

func TestE2EStepsDefects(t *testing.T) {
	h := newHarness(t, stepsAccounts()...)
	h.cfg.Activation.Helpdesk = stepsHelpdesk
	h.restart()
	h.dropMail("cnomail")
	ctx := context.Background()
	other := func() string { // a live code of bother's
		n := len(h.mailsTo("bea@perso.example.net"))
		must(t, h.app.svc.Begin(ctx, "bother", flow.Client{Remote: "127.0.0.1"}))
		return h.code("bea@perso.example.net", n)
	}
	paste := func(code string) string { return "ssh -p 2222 " + code + "@activate.example.org" }

	// 1 and 8: at step 2, another login's code is wrong; the whole command
	// pasted from the mail works.
	t.Run("code of another login, pasted command", func(t *testing.T) {
		h := wizardSub(h, t)
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.waitFor("Step 1 of 7")
		tm.send("amartin", keyEnter)
		tm.waitFor("Step 2 of 7")
		code := h.code("alex@perso.example.net", 0)
		tm.send(other(), keyEnter)
		tm.waitFor("This code is not right.")
		tm.send(keyCtrlU, paste(code), keyEnter)
		tm.waitFor("Step 3 of 7")
		tm.close()
		wizardWaitReleased(h, "amartin")

		p := h.openPlain("activate", "en_US.UTF-8")
		p.waitPrompt("Login")
		p.answer("amartin")
		p.waitPrompt("Code from the mail")
		code = h.code("alex@perso.example.net", 1)
		p.answer(other())
		p.waitOut("This code is not right.")
		p.waitPrompt("Code from the mail")
		p.answer(paste(code))
		p.waitPrompt("accept the IT charter")
	})

	// 2: no institutional mailbox, no copy to keep.
	t.Run("keep-copy only with a mailbox", func(t *testing.T) {
		h := wizardSub(h, t)
		p := plainTo(h, "cnomail", "chris@perso.example.net", flow.StepMailbox)
		p.waitPrompt("Redirect my mail")
		p.answer("y")
		p.waitPrompt("Redirect address")
		p.answer("")
		p.waitPrompt("New password")
		if out := p.out.String(); strings.Contains(out, "Keep a copy") {
			t.Fatalf("keep-copy asked without a mailbox:\n%s", tail(out, 800))
		}
		p.client.Close()
		wizardWaitReleased(h, "cnomail")
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.send("cnomail", keyEnter)
		tm.waitFor("Step 2 of 7")
		tm.send(h.code("chris@perso.example.net", 1), keyEnter)
		tm.waitFor("Step 7 of 7")
		tm.send(wizardKeyEsc)
		s := tm.waitFor("Step 5 of 7", "Redirect address")
		if strings.Contains(s, "Keep a copy") {
			t.Fatalf("keep-copy offered without a mailbox:\n%s", s)
		}
	})

	// 4: names and institution make no password.
	t.Run("password of names", func(t *testing.T) {
		h := wizardSub(h, t)
		p := plainTo(h, "hmoreau", "helene@perso.example.net", flow.StepPassword)
		p.waitPrompt("New password")
		p.answer("Hélène Moreau Université")
		out := p.waitOut("does not meet every rule")
		if !strings.Contains(out, "Not met: Hard to guess") {
			t.Fatalf("a password of names passes:\n%s", tail(out, 800))
		}
	})

	// 5: a revoked dossier names the helpdesk, in both front ends, and
	// mails carry it.
	t.Run("revoked: helpdesk", func(t *testing.T) {
		h := wizardSub(h, t)
		must(t, h.app.svc.Begin(ctx, "rrevoke", flow.Client{Remote: "127.0.0.1"}))
		code := h.code("remi@perso.example.net", 0)
		if m := h.mailsTo("remi@perso.example.net")[0]; !strings.Contains(m.Body, stepsHelpdesk) {
			t.Errorf("the mail lacks the helpdesk:\n%s", m.Body)
		}
		must(t, h.app.svc.Revoke("rrevoke", flow.Client{Actor: "staff:test"}))
		tm := h.openTerm(code, 80, 24, "en_US.UTF-8")
		tm.waitFor("IT staff cancelled this activation", stepsHelpdesk)
		p := h.openPlain(code+"+plain", "fr_FR.UTF-8")
		wizardWaitDone(p)
		if out := p.out.String(); !strings.Contains(out, "Le service informatique a annulé cette activation") || !strings.Contains(out, "\n"+stepsHelpdesk) {
			t.Fatalf("plain mode:\n%s", out)
		}
	})

	// 3 and 10: no redirect into the institution; the last screen gives the
	// university address and the redirect, so does the notice mail; Ctrl+C
	// says how to come back.
	t.Run("redirect loop, last screen, Ctrl+C", func(t *testing.T) {
		h := wizardSub(h, t)
		p := plainTo(h, "jdupont", "jeanne@perso.example.net", flow.StepMailbox)
		p.waitPrompt("Redirect my mail")
		p.answer("y")
		p.waitPrompt("Redirect address")
		p.answer("Jeanne.Dupont@" + slapd.MailDomain)
		p.waitOut("This address is at the institution") // at once: no "Keep a copy" asked first
		if strings.Contains(p.out.String(), "Keep a copy") {
			t.Errorf("plain mode asked about a copy before refusing the address:\n%s", p.out.String())
		}
		p.client.Close()
		wizardWaitReleased(h, "jdupont")

		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.send("jdupont", keyEnter)
		tm.waitFor("Step 2 of 7")
		tm.send(h.code("jeanne@perso.example.net", 1), keyEnter)
		tm.waitFor("Step 5 of 7")
		tm.send(" ", keyTab, keyCtrlU, "jdupont@"+slapd.MailDomain, keyEnter)
		tm.waitFor("This address is at the institution")
		tm.send(keyCtrlU, "jeanne@perso.example.net", keyEnter)
		tm.waitFor("Step 7 of 7")
		tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
		tm.waitFor("Your account is active.", "Your university address: jdupont@"+slapd.MailDomain,
			"redirected to jeanne@perso.example.net; a copy stays")
		m := h.waitMail("jeanne@perso.example.net", 2)
		if !strings.Contains(m.Body, "jdupont@"+slapd.MailDomain) || !strings.Contains(m.Body, "forwarded to jeanne@perso.example.net") {
			t.Errorf("the notice lacks the addresses:\n%s", m.Body)
		}
		tm.send(keyEnter)
		tm.waitEnd()

		tm = h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.waitFor("Step 1 of 7")
		tm.send(keyCtrlC)
		tm.waitEnd()
		if s := strings.Join(strings.Fields(tm.screen()), " "); !strings.Contains(s, "Come back with: ssh -p 2222 activate@activate.example.org") {
			t.Fatalf("Ctrl+C:\n%s", s)
		}
	})

	// 10: the mail limit speaks of mails and minutes, and names the helpdesk.
	t.Run("mail limit", func(t *testing.T) {
		h := wizardSub(h, t)
		p := h.openPlain("activate", "en_US.UTF-8")
		p.waitPrompt("Login")
		p.answer("mlimit")
		for i := 1; i < 5; i++ {
			p.waitPrompt("Code from the mail")
			p.answer("!resend")
			h.waitMail("max@perso.example.net", i)
		}
		p.waitPrompt("Code from the mail")
		p.answer("!resend")
		out := p.waitOut("Several mails were already sent for this account in the last hour")
		if !regexp.MustCompile(`or try again in \d+ minutes\.\n`).MatchString(out) || !strings.Contains(out, "\n"+stepsHelpdesk) {
			t.Fatalf("the mail limit:\n%s", tail(out, 600))
		}
	})

	// 12: the redirect-verification mail, maybe to a stranger, names no
	// account.
	t.Run("redirect mail names no account", func(t *testing.T) {
		h := wizardSub(h, t)
		p := plainTo(h, "bother", "bea@perso.example.net", flow.StepMailbox)
		p.waitPrompt("Redirect my mail")
		p.answer("y")
		p.waitPrompt("Redirect address")
		p.answer("bea.typo@elsewhere.example")
		p.waitPrompt("Keep a copy")
		p.answer("y")
		p.waitPrompt("Code sent to the redirect address")
		m := h.waitMail("bea.typo@elsewhere.example", 0)
		for _, s := range []string{"bother", "Bea", "Other"} {
			if strings.Contains(m.Body, s) || strings.Contains(m.Header.Get("To"), s) {
				t.Errorf("the redirect mail gives %q away:\n%s", s, m.Body)
			}
		}
		if !codeRE.MatchString(m.Body) || !strings.Contains(m.Body, stepsHelpdesk) {
			t.Errorf("the redirect mail lacks its code or the helpdesk:\n%s", m.Body)
		}
	})

	// 11: a terminal whose charset is not UTF-8 gets ASCII.
	t.Run("ASCII for an ISO-8859-1 terminal", func(t *testing.T) {
		h := wizardSub(h, t)
		tm := h.openTerm("activate", 80, 24, "fr_FR.ISO-8859-1")
		s := tm.waitFor("Etape 1 sur 7 - Identifiant", "Saisissez votre identifiant")
		for _, r := range s {
			if r >= 0x80 {
				t.Fatalf("%q on the screen:\n%s", r, s)
			}
		}
		tm.close()
		p := h.openPlain("activate", "fr_FR.ISO-8859-1")
		out := p.waitPrompt("Identifiant")
		for i := 0; i < len(out); i++ {
			if out[i] >= 0x80 || !strings.Contains(out, "Etape 1 sur 7 - Identifiant") {
				t.Fatalf("plain mode, byte %#x at %d:\n%s", out[i], i, out)
			}
		}
		// What is typed there comes in ISO-8859-1: a password with
		// accents is the one set, in UTF-8 (it lost its "é"s before).
		const pw = "Crème brûlée à sept heures précises"
		latin, err := charmap.ISO8859_1.NewEncoder().String(pw)
		must(t, err)
		n := len(h.mailsTo("luc@perso.example.net"))
		p.answer("llatin")
		p.waitPrompt("Code recu par mail")
		p.answer(h.code("luc@perso.example.net", n))
		for _, q := range []string{"charte informatique", "annuaire public", "Rediriger mes mails"} {
			p.waitPrompt(q)
			p.answer(map[bool]string{true: "o", false: "n"}[q == "charte informatique"])
		}
		p.waitPrompt("Nouveau mot de passe")
		p.answer(latin)
		p.waitPrompt("Confirmez le mot de passe")
		p.answer(latin)
		p.waitOut("Votre compte est active.")
		if err := h.bindAs("llatin", pw); err != nil {
			t.Fatalf("bind with the password typed in ISO-8859-1, as UTF-8: %v", err)
		}
	})

	// 7: a TUI session closed for inactivity (here shorter than the
	// keepalive period) leaves the terminal restored, then the sentence.
	t.Run("idle close restores the terminal", func(t *testing.T) {
		h := wizardSub(h, t)
		h.cfg.SSH.IdleTimeout = Duration{500 * time.Millisecond}
		h.restart()
		tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tm.waitFor("Step 1 of 7")
		tm.waitEnd()
		tm.mu.Lock()
		alt := tm.vt.IsAltScreen()
		tm.mu.Unlock()
		if s := strings.Join(strings.Fields(tm.screen()), " "); alt || !strings.Contains(s, "Session closed after a long time without activity") {
			t.Fatalf("alternate screen %t; screen:\n%s", alt, tm.screen())
		}
	})
}

// waitOut waits until the output shows text.
func (p *plainSession) waitOut(text string) string {
	p.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		out := p.out.String()
		if strings.Contains(out, text) {
			return out
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("output never showed %q; it ends:\n%s", text, tail(out, 1500))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
