package main

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/internal/ds389"
	"activated/internal/flowtest"
	"activated/internal/slapd"
)

// The same walk as on slapd, against 389 Directory Server (ldaps://, its
// self-signed CA, a 20-character minimum); then, with plain ldap:// to the
// same 389, which demands confidentiality for Password Modify, check
// fails on its LDAP line and a user reaching the last step is told it
// cannot be finished now, not to try again in a few minutes.
func TestE2E389(t *testing.T) {
	cmoreau := slapd.Account{Login: "cmoreau", GivenName: "Claire", Surname: "Moreau", RecoveryMail: "claire@perso.example.net", Affiliation: "student"}
	d := ds389.StartT(t, ds389.Options{MinLength: 20}, append(e2eAccounts(), cmoreau)...)

	h := (&harness{t: t, dir: t.TempDir(), logs: &flowtest.Buffer{}}).setup(harnessLDAP{
		URL: d.LDAPSURL, CAFile: d.CAFile, BindDN: d.ServiceDN, BindPassword: d.ServicePassword, PeopleDN: d.PeopleDN})
	u := wizardAlex
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	wizardWalk(h, tm, u, flow.StepLogin, flow.StepPassword)
	// 17 characters: enough for activated's rules, not for 389's policy.
	const short = "violet-canyon-7Qz"
	tm.waitFor(wizardScreen(flow.StepPassword))
	tm.send(short, keyEnter, short, keyEnter)
	screen := tm.waitFor("at least 20 characters")
	t.Logf("refused:\n%s", screen)
	tm.send(keyCtrlU, keyTab, keyCtrlU) // empty both fields, the first one focused
	wizardWalk(h, tm, u, flow.StepPassword, flow.StepDone)
	tm.waitFor(wizardScreen(flow.StepDone), "Login: amartin")
	tm.close()
	c := dial389(t, d)
	if err := c.Bind("uid=amartin,"+d.PeopleDN, e2ePassword); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	c = dial389(t, d)
	must(t, c.Bind(d.AdminDN, d.AdminPassword))
	r, err := c.Search(ldap.NewSearchRequest("uid=amartin,"+d.PeopleDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"supannRessourceEtat", "supannListeRouge", "userPassword"}, nil))
	must(t, err)
	if e := r.Entries[0]; e.GetAttributeValue("supannRessourceEtat") != slapd.StateActive || e.GetAttributeValue("supannListeRouge") != "TRUE" ||
		!strings.HasPrefix(e.GetAttributeValue("userPassword"), "{PBKDF2") {
		t.Errorf("entry after the walk: state %q, liste rouge %q, password scheme %.14s", e.GetAttributeValue("supannRessourceEtat"),
			e.GetAttributeValue("supannListeRouge"), e.GetAttributeValue("userPassword"))
	}
	h.stop()

	// Plain ldap:// to the same 389.
	p := (&harness{t: t, dir: t.TempDir(), logs: &flowtest.Buffer{}}).setup(harnessLDAP{
		URL: d.URL, BindDN: d.ServiceDN, BindPassword: d.ServicePassword, PeopleDN: d.PeopleDN})
	code, out, _ := runCmd("check", "-config", p.writeConfig(nil))
	if code != 1 || !strings.Contains(out, "ldap       FAIL") || !strings.Contains(out, "encrypted connection") {
		t.Errorf("check with ldap:// to a 389 demanding confidentiality: exit %d\n%s", code, out)
	}
	t.Logf("check:\n%s", out)
	p.stop()
	p.cfg.Activation.Helpdesk = "helpdesk@example.org, 01 23 45 67 89"
	p.start()
	v := wizardUser{login: "cmoreau", recovery: "claire@perso.example.net"}
	tm = p.openTerm("activate", 80, 24, "en_US.UTF-8")
	wizardWalk(p, tm, v, flow.StepLogin, flow.StepPassword)
	tm.waitFor(wizardScreen(flow.StepPassword))
	tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
	screen = tm.waitFor("This cannot be finished now", "helpdesk@example.org, 01 23 45 67 89")
	t.Logf("screen:\n%s", screen)
	if strings.Contains(screen, "Try again in a few minutes") {
		t.Errorf("a configuration error reads as an outage:\n%s", screen)
	}
	if !strings.Contains(p.logs.String(), "level=ERROR") || !strings.Contains(p.logs.String(), "use an ldaps:// url") {
		t.Errorf("the log does not say what to fix:\n%s", p.logs.String())
	}
}

func dial389(t *testing.T, d *ds389.Server) *ldap.Conn {
	t.Helper()
	c, err := d.DialTLS()
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
