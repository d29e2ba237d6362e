package main

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

const e2ePassword = "violet staple orbit canyon"

// bindAs checks the user can now bind to the directory with password.
func (h *harness) bindAs(login, password string) error {
	c, err := ldap.DialURL(h.ldap.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind("uid="+login+","+h.ldap.PeopleDN, password)
}

// entry reads the attributes activation writes.
func (h *harness) entry(login string) *ldap.Entry {
	h.t.Helper()
	c, err := ldap.DialURL(h.ldap.URL)
	must(h.t, err)
	defer c.Close()
	must(h.t, c.Bind(h.ldap.AdminDN, h.ldap.AdminPassword))
	r, err := c.Search(ldap.NewSearchRequest("uid="+login+","+h.ldap.PeopleDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"supannRessourceEtat", "supannListeRouge", "supannConsentement", "mailForwardingAddress"}, nil))
	must(h.t, err)
	return r.Entries[0]
}

// The staff member walks every step in the TUI, with a redirect that must
// be verified, all in one session.
func TestE2ETUIStaffWithRedirect(t *testing.T) {
	h := newHarness(t)
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	h.walkJeanneTUI(tm)
	tm.waitFor("Your account is active.", "jdupont", "Moodle")
	if err := h.bindAs("jdupont", e2ePassword); err != nil {
		t.Fatalf("bind with the new password: %v", err)
	}
	e := h.entry("jdupont")
	if got := e.GetAttributeValues("mailForwardingAddress"); strings.Join(got, ",") != "jeanne.dupont@ailleurs.example.com,jdupont@example.org" {
		t.Errorf("forward %v", got)
	}
	if e.GetAttributeValue("supannListeRouge") != "FALSE" || e.GetAttributeValue("supannRessourceEtat") != "{COMPTE}A:SupannActif" {
		t.Errorf("entry %v", e.Attributes)
	}
	notice := h.waitMail("jeanne@perso.example.net", 1)
	if !strings.Contains(notice.Body, "jdupont") {
		t.Errorf("activation notice:\n%s", notice.Body)
	}
}

// walkJeanneTUI walks jdupont through every step in the TUI tm (open at
// step 1), with a redirect verified in the same session, up to the
// confirmation screen.
func (h *harness) walkJeanneTUI(tm *term) {
	h.t.Helper()
	tm.waitFor("Step 1 of 7", "Login")
	tm.send("jdupont", keyEnter)
	tm.waitFor("Step 2 of 7")
	tm.send(h.code("jeanne@perso.example.net", 0), keyEnter)
	tm.waitFor("Step 3 of 7", "I have read and accept")
	tm.send(" ", keyEnter)
	tm.waitFor("Step 4 of 7")
	tm.send(" ", keyDown, keyDown, " ", keyEnter) // appear: yes; confirm
	tm.waitFor("Step 5 of 7", "As a staff member")
	tm.send(" ", keyTab, keyCtrlU, "jeanne.dupont@ailleurs.example.com", keyEnter)
	tm.waitFor("Step 6 of 7", "jeanne.dupont@ailleurs.example.com")
	tm.send(h.code("jeanne.dupont@ailleurs.example.com", 0), keyEnter)
	tm.waitFor("Step 7 of 7")
	tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
	tm.waitFor("Your account is active.")
}
