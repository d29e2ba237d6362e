package main

// End-to-end tests of the password reset through the real server: the
// owner of an active account types their login (plain mode) or connects
// with the mailed code (TUI); staff mail a code (helpdesk); the charter is
// asked again when it changed; the directory's history refusal is shown.

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/internal/slapd"
)

// resetOld is pdurand's password before the reset.
const resetOld = "granite meadow lantern quiver"

func resetAccounts() []slapd.Account {
	a := e2eAccounts()
	a[2].Password = resetOld
	return a
}

// resetConsent sets pdurand's charter consent in the directory.
func resetConsent(h *harness, version string) {
	h.t.Helper()
	c, err := ldap.DialURL(h.ldap.URL)
	must(h.t, err)
	defer c.Close()
	must(h.t, c.Bind(h.ldap.AdminDN, h.ldap.AdminPassword))
	m := ldap.NewModifyRequest("uid=pdurand,"+h.ldap.PeopleDN, nil)
	m.Replace("supannConsentement", []string{"{RGPD}2024", "{CHARTE}" + version})
	must(h.t, c.Modify(m))
}

// resetChecked: the new password binds, the old one is refused, the entry
// is still active with its consent as want, and a notice was mailed.
func resetChecked(h *harness, wantConsent string, noticeAfter int) {
	h.t.Helper()
	if err := h.bindAs("pdurand", e2ePassword); err != nil {
		h.t.Errorf("bind with the new password: %v", err)
	}
	if err := h.bindAs("pdurand", resetOld); err == nil {
		h.t.Error("the old password still binds")
	}
	e := h.entry("pdurand")
	if got := e.GetAttributeValue("supannRessourceEtat"); got != slapd.StateActive {
		h.t.Errorf("supannRessourceEtat %q after the reset", got)
	}
	if got := e.GetAttributeValues("supannConsentement"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"{CHARTE}" + wantConsent, "{RGPD}2024"}) {
		h.t.Errorf("supannConsentement %q, want {CHARTE}%s and {RGPD}2024", got, wantConsent)
	}
	if m := h.waitMail("pierre@perso.example.net", noticeAfter); !strings.Contains(m.Subject, "password") || !strings.Contains(m.Subject, "changed") || codeRE.MatchString(m.Body) {
		h.t.Errorf("reset notice: %q\n%s", m.Subject, m.Body)
	}
}

// Plain mode, charter unchanged: login, code, the old password refused by
// the directory's history in words the user reads, then a new one.
func TestE2EResetPlain(t *testing.T) {
	h := newHarness(t, resetAccounts()...)
	current := flow.CharterVersion(demoCharter)
	resetConsent(h, current)
	p := h.openPlain("activate+plain", "en_US.UTF-8")
	p.waitPrompt("Login")
	p.answer("pdurand")
	p.waitPrompt("Code from the mail")
	p.answer(h.code("pierre@perso.example.net", 0))
	p.waitPrompt("New password")
	if out := p.out.String(); strings.Contains(out, "I have read and accept") || !strings.Contains(out, "Choose your new password") {
		t.Fatalf("the reset did not go straight to the new password:\n%s", tail(out, 1500))
	}
	p.answer(resetOld)
	p.waitPrompt("Confirm")
	p.answer(resetOld)
	out := p.waitPrompt("New password")
	if !strings.Contains(out, "already used on this account") {
		t.Errorf("no history refusal shown:\n%s", tail(out, 1500))
	}
	p.answer(e2ePassword)
	p.waitPrompt("Confirm")
	p.answer(e2ePassword)
	wizardWaitDone(p)
	if out := p.out.String(); !strings.Contains(out, "Your new password is saved") {
		t.Errorf("no end of reset shown:\n%s", tail(out, 1500))
	}
	resetChecked(h, current, 1)
}

// TUI, connecting with the code as the SSH user: the charter changed since
// the recorded acceptance, so it is asked first; its new version reaches
// the directory's consent value with the password.
func TestE2EResetTUIChangedCharter(t *testing.T) {
	h := newHarness(t, resetAccounts()...)
	resetConsent(h, "sha256:0000000000000000")
	// The owner asks at step 1, then reconnects with the code.
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepLogin))
	tm.send("pdurand", keyEnter)
	tm.waitFor(wizardScreen(flow.StepRecoveryCode))
	tm.close()
	code := h.code("pierre@perso.example.net", 0)
	tm = h.openTerm(code, 80, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepCharter), "has changed since you last accepted")
	tm.send(" ", keyEnter)
	tm.waitFor(wizardScreen(flow.StepPassword), "Choose your new password")
	tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
	tm.waitFor("Your new password is saved")
	resetChecked(h, flow.CharterVersion(demoCharter), 1)
}

// Staff mail a reset code; it shows in status, list and audit; the user
// uses it.
func TestE2EResetStaff(t *testing.T) {
	h := newHarness(t, resetAccounts()...)
	current := flow.CharterVersion(demoCharter)
	resetConsent(h, current)
	sc := staffDial(h)
	var out staffOutcomes
	sc.json(&out, 0, "", "reset pdurand --json")
	if len(out.Results) != 1 || out.Results[0].Outcome != "reset-mailed" || !strings.Contains(out.Results[0].Detail, "pierre@perso.example.net") {
		t.Fatalf("reset --json: %+v", out)
	}
	if r := sc.run("", "reset amartin"); r.code != 1 || !strings.Contains(r.stderr, "not active yet") {
		t.Errorf("reset of a pending account: exit %d, %q", r.code, r.stderr)
	}
	code := h.code("pierre@perso.example.net", 0)
	tm := h.openTerm(code, 80, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepPassword), "Choose your new password")
	if r := sc.run("", "status pdurand"); !strings.Contains(r.stdout, "under way since") || strings.Contains(r.stdout, code) {
		t.Errorf("status during the reset:\n%s", r.stdout)
	}
	if r := sc.run("", "list"); !strings.Contains(r.stdout, "activated (reset)*") {
		t.Errorf("list during the reset:\n%s", r.stdout)
	}
	tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
	tm.waitFor("Your new password is saved")
	resetChecked(h, current, 1)
	r := sc.run("", "audit --login pdurand")
	for _, want := range []string{"reset", "Alice Helpdesk", "password-reset"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit lacks %q:\n%s", want, r.stdout)
		}
	}
}

// A charter campaign: staff see who has not accepted the current charter,
// a dry run sends nothing, remind mails a code that leads to the charter
// alone; accepting it updates the consent value and nothing else.
func TestE2EResetCharterCampaign(t *testing.T) {
	h := newHarness(t, resetAccounts()...)
	resetConsent(h, "sha256:0000000000000000")
	sc := staffDial(h)
	var out staffOutcomes
	sc.json(&out, 0, "", "reset pdurand --json") // gives pdurand a dossier, unused
	h.waitMail("pierre@perso.example.net", 0)
	var st flow.CharterCount
	sc.json(&st, 0, "", "charter status --json")
	if st.Version != flow.CharterVersion(demoCharter) || st.Active != 1 || st.Current != 0 || !slices.Equal(st.Outdated, []string{"pdurand"}) {
		t.Fatalf("charter status: %+v", st)
	}
	sc.json(&out, 0, "", "charter remind --dry-run --json")
	if len(out.Results) != 1 || out.Results[0].Outcome != "would-remind" {
		t.Fatalf("dry run: %+v", out)
	}
	sc.json(&out, 0, "", "charter remind --json")
	if len(out.Results) != 1 || out.Results[0].Outcome != "reminded" {
		t.Fatalf("remind: %+v", out)
	}
	m := h.waitMail("pierre@perso.example.net", 1)
	if !strings.Contains(m.Subject, "charter has changed") {
		t.Errorf("campaign mail: %q", m.Subject)
	}
	tm := h.openTerm(h.code("pierre@perso.example.net", 1), 80, 24, "en_US.UTF-8")
	tm.waitFor(wizardScreen(flow.StepCharter))
	tm.send(" ", keyEnter)
	tm.waitFor("Your acceptance of the new IT charter is recorded")
	e := h.entry("pdurand")
	if got := slices.Sorted(slices.Values(e.GetAttributeValues("supannConsentement"))); !slices.Equal(got, []string{"{CHARTE}" + st.Version, "{RGPD}2024"}) {
		t.Errorf("supannConsentement %q", got)
	}
	if err := h.bindAs("pdurand", resetOld); err != nil {
		t.Errorf("the campaign changed the password: %v", err)
	}
	sc.json(&st, 0, "", "charter status --json")
	if st.Current != 1 || len(st.Outdated) != 0 {
		t.Errorf("charter status after acceptance: %+v", st)
	}
	if r := sc.run("", "charter status"); !strings.Contains(r.stdout, "Accepted it") {
		t.Errorf("charter status table:\n%s", r.stdout)
	}
}
