package slapd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
)

func bind(t *testing.T, url, dn, pw string) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(dn, pw); err != nil {
		t.Fatalf("bind as %s: %v", dn, err)
	}
	return c
}

func entry(t *testing.T, c *ldap.Conn, dn string, attrs ...string) *ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil))
	if err != nil {
		t.Fatalf("read %s: %v", dn, err)
	}
	return res.Entries[0]
}

func TestSeed(t *testing.T) {
	accounts := append(slapd.DemoAccounts(), slapd.Account{Login: "pactif", GivenName: "Paul", Surname: "Actif",
		Affiliation: "employee", Active: true, Password: "initial-password-123", Mail: "paul.actif@example.org"})
	s := slapdtest.Start(t, accounts...)
	svc := bind(t, s.URL, s.ServiceDN, s.ServicePassword)

	e := entry(t, svc, accounts[0].DN(), "*")
	want := map[string][]string{
		"uid": {"hmoreau"}, "cn": {"Hélène Moreau"}, "sn": {"Moreau"}, "givenName": {"Hélène"},
		"displayName": {"Hélène Moreau"}, "mail": {"hmoreau@example.org"},
		"supannMailPerso": {"helene.moreau@example.net"}, "eduPersonAffiliation": {"staff", "member"},
		"eduPersonPrimaryAffiliation": {"staff"}, "supannRessourceEtat": {slapd.StatePending},
		"objectClass": {"inetOrgPerson", "eduPerson", "supannPerson"},
	}
	for a, v := range want {
		if got := e.GetAttributeValues(a); strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("%s = %q, want %q", a, got, v)
		}
	}
	if len(e.Attributes) != len(want) {
		t.Errorf("entry has %d attributes, want %d: %v", len(e.Attributes), len(want), e.Attributes)
	}

	act := entry(t, svc, accounts[3].DN(), "*", "userPassword")
	if got := act.GetAttributeValue("supannRessourceEtat"); got != slapd.StateActive {
		t.Errorf("active account state = %q", got)
	}
	if got := act.GetAttributeValue("mail"); got != "paul.actif@example.org" {
		t.Errorf("mail = %q", got)
	}
	if got := act.GetAttributeValues("userPassword"); len(got) != 0 {
		t.Errorf("the service account can read userPassword: %q", got)
	}
	bind(t, s.URL, accounts[3].DN(), "initial-password-123")

	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(accounts[0].DN(), "anything-at-all"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind as a pending account without password: %v, want invalid credentials", err)
	}

	res, err := svc.Search(ldap.NewSearchRequest(s.PeopleDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=nobody)", nil, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("search for a login not seeded: %v, %d entries", err, len(res.Entries))
	}
}

func TestPolicyAppliesToServiceAccount(t *testing.T) {
	s := slapdtest.Start(t, slapd.DemoAccounts()...)
	svc := bind(t, s.URL, s.ServiceDN, s.ServicePassword)
	dn := slapd.DemoAccounts()[1].DN()
	_, err := svc.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", "short-pw"))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		t.Fatalf("short password: %v, want constraint violation", err)
	}
	if _, err := svc.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", "a long enough passphrase")); err != nil {
		t.Fatalf("good password: %v", err)
	}
	admin := bind(t, s.URL, s.AdminDN, s.AdminPassword)
	pw := entry(t, admin, dn, "userPassword").GetAttributeValue("userPassword")
	if !strings.HasPrefix(pw, "{SSHA}") {
		t.Errorf("stored password is not hashed: prefix %.6q", pw)
	}
	bind(t, s.URL, dn, "a long enough passphrase")
}

func TestStopRestart(t *testing.T) {
	s := slapdtest.Start(t, slapd.DemoAccounts()...)
	dn := slapd.DemoAccounts()[0].DN()
	admin := bind(t, s.URL, s.AdminDN, s.AdminPassword)
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("description", []string{"survives a restart"})
	if err := admin.Modify(m); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	admin = bind(t, s.URL, s.AdminDN, s.AdminPassword)
	if got := entry(t, admin, dn, "description").GetAttributeValue("description"); got != "survives a restart" {
		t.Errorf("after restart: description = %q", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c, err := net.Dial("tcp", s.URL[len("ldap://"):]); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", s.URL)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	// A stopped server whose directory was given starts again.
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("restart after stop: %v", err)
	}
	bind(t, s.URL, s.ServiceDN, s.ServicePassword)
}

func TestStartOwnTempDir(t *testing.T) {
	s, err := slapd.Start(context.Background(), slapd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); err != nil {
		t.Fatalf("dir: %v", err)
	}
	bind(t, s.URL, s.ServiceDN, s.ServicePassword)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind: %v", s.Dir, err)
	}
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	for name, accounts := range map[string][]slapd.Account{
		"no surname": {{Login: "x", GivenName: "X"}},
		"no login":   {{GivenName: "X", Surname: "Y"}},
		"twice":      {{Login: "x", GivenName: "X", Surname: "Y"}, {Login: "X", GivenName: "X", Surname: "Y"}},
	} {
		if s, err := slapd.Start(ctx, slapd.Options{Dir: t.TempDir(), Accounts: accounts}); err == nil {
			s.Stop()
			t.Errorf("%s: Start succeeded", name)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	s, err := slapd.Start(ctx, slapd.Options{Dir: t.TempDir(), Port: port})
	if err == nil {
		s.Stop()
		t.Fatalf("Start on a port in use succeeded")
	}
	t.Logf("port in use: %v", err)
}

func TestTLS(t *testing.T) {
	s, err := slapd.Start(context.Background(), slapd.Options{Dir: t.TempDir(), TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	c := bind(t, s.URL, s.ServiceDN, s.ServicePassword) // plain still works on loopback
	c.Close()
	c, err = ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(tc); err != nil {
		t.Fatalf("starttls: %v", err)
	}
	if err := c.Bind(s.ServiceDN, s.ServicePassword); err != nil {
		t.Fatal(err)
	}
	c2, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(tc))
	if err != nil {
		t.Fatalf("ldaps: %v", err)
	}
	defer c2.Close()
	if err := c2.Bind(s.ServiceDN, s.ServicePassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
}
