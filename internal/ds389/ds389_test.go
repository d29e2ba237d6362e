package ds389

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"activated/internal/slapd"
)

func TestStart(t *testing.T) {
	a := slapd.Account{Login: "jdupont", GivenName: "Jean", Surname: "Dupont", RecoveryMail: "jean@example.net", Affiliation: "student"}
	s := StartT(t, Options{}, a)
	if !strings.HasPrefix(s.URL, "ldap://127.0.0.1:") || !strings.HasPrefix(s.LDAPSURL, "ldaps://localhost:") {
		t.Errorf("URLs %s %s are not loopback", s.URL, s.LDAPSURL)
	}
	c, err := s.DialTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.ServiceDN, s.ServicePassword); err != nil {
		t.Fatalf("service bind: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest(s.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=jdupont)", []string{"supannMailPerso", "eduPersonAffiliation"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("supannMailPerso") != "jean@example.net" {
		t.Fatalf("service reads jdupont: %v %+v", err, res)
	}
	// The shipped eduPerson schema is intact: an attribute the project's
	// own minimal schema lacks is still allowed.
	ad, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	m := ldap.NewModifyRequest(a.DN(), nil)
	m.Add("eduPersonPrincipalName", []string{"jdupont@example.org"})
	if err := ad.Modify(m); err != nil {
		t.Errorf("eduPersonPrincipalName refused: the shipped eduPerson schema was replaced: %v", err)
	}
}
