package directory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
)

var people = []slapd.Account{
	{Login: "jdupont", GivenName: "Jean", Surname: "Dupont", RecoveryMail: "jean.dupont@example.net", Affiliation: "student"},
	{Login: "mlefevre", GivenName: "Marie", Surname: "Lefèvre", RecoveryMail: "marie.lefevre@example.net", Affiliation: "staff"},
	{Login: "pactif", GivenName: "Paul", Surname: "Actif", RecoveryMail: "paul.actif@example.net", Affiliation: "faculty",
		Active: true, Password: "initial-password-1234"},
}

const goodPassword = "correct horse battery staple"

func newDir(t *testing.T, s *slapd.Server, edit ...func(*Config)) *Directory {
	t.Helper()
	cfg := Config{URL: s.URL, BindDN: s.ServiceDN, BindPassword: s.ServicePassword,
		PeopleBase: s.PeopleDN, MailDomain: slapd.MailDomain}
	for _, f := range edit {
		f(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// admin is a connection bound as the rootdn, to look behind the adapter.
func admin(t *testing.T, s *slapd.Server) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

// attrs reads an entry as attribute → values (names lower-cased, values
// sorted), for comparisons.
func attrs(t *testing.T, c *ldap.Conn, dn string, which ...string) map[string][]string {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", which, nil))
	if err != nil {
		t.Fatalf("read %s: %v", dn, err)
	}
	m := map[string][]string{}
	for _, a := range res.Entries[0].Attributes {
		m[strings.ToLower(a.Name)] = slices.Sorted(slices.Values(a.Values))
	}
	return m
}

func modify(t *testing.T, c *ldap.Conn, dn string, f func(*ldap.ModifyRequest)) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	if err := c.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

func canBind(s *slapd.Server, dn, pw string) error {
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(dn, pw)
}

func TestLookup(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	ctx := t.Context()

	got, err := d.Lookup(ctx, "jdupont")
	if err != nil {
		t.Fatal(err)
	}
	want := flow.Account{
		DN: "uid=jdupont," + s.PeopleDN, Login: "jdupont", GivenName: "Jean", Surname: "Dupont",
		DisplayName: "Jean Dupont", Mail: "jdupont@example.org", RecoveryMails: []string{"jean.dupont@example.net"},
		Affiliations: []string{"student", "member"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lookup(jdupont)\n got %+v\nwant %+v", got, want)
	}

	got, err = d.Lookup(ctx, "PActif")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Active || got.Login != "pactif" {
		t.Errorf("Lookup(PActif): active=%v login=%q, want true, the directory's spelling", got.Active, got.Login)
	}
}

func TestLookupFindsNothing(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	for _, login := range []string{"*)(uid=*", "jdupont)(|(uid=*", "*", "jdupont*", "j*", "", `\2a`, "nobody", "jdupont\x00"} {
		if acc, err := d.Lookup(t.Context(), login); !errors.Is(err, flow.ErrNoAccount) {
			t.Errorf("Lookup(%q) = %+v, %v; want ErrNoAccount", login, acc, err)
		}
	}

	// Eligibility filter.
	staff := newDir(t, s, func(c *Config) { c.Filter = "(eduPersonAffiliation=staff)" })
	if _, err := staff.Lookup(t.Context(), "jdupont"); !errors.Is(err, flow.ErrNoAccount) {
		t.Errorf("student through the staff filter: %v", err)
	}
	if _, err := staff.Lookup(t.Context(), "mlefevre"); err != nil {
		t.Errorf("staff through the staff filter: %v", err)
	}

	// Two entries with one login: refuse rather than pick one.
	a := admin(t, s)
	for _, add := range []*ldap.AddRequest{
		addReq("ou=annex,"+s.PeopleDN, "objectClass", "organizationalUnit", "ou", "annex"),
		addReq("uid=jdupont,ou=annex,"+s.PeopleDN, "objectClass", "inetOrgPerson", "uid", "jdupont", "cn", "J D", "sn", "D"),
	} {
		if err := a.Add(add); err != nil {
			t.Fatal(err)
		}
	}
	if acc, err := d.Lookup(t.Context(), "jdupont"); !errors.Is(err, flow.ErrNoAccount) {
		t.Errorf("Lookup of a login held twice = %+v, %v; want ErrNoAccount", acc, err)
	}
}

func addReq(dn string, kv ...string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	vals := map[string][]string{}
	var order []string
	for i := 0; i < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			order = append(order, kv[i])
		}
		vals[kv[i]] = append(vals[kv[i]], kv[i+1])
	}
	for _, k := range order {
		r.Attribute(k, vals[k])
	}
	return r
}

// The day is taken in act.When's location: 23:30 UTC is the next day in UTC+1.
var when = time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC).In(time.FixedZone("UTC+1", 3600))

func TestActivate(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	ctx := t.Context()
	dn := "uid=jdupont," + s.PeopleDN
	// Values the adapter must keep: other labels, and a stale {COMPTE} date.
	modify(t, a, dn, func(m *ldap.ModifyRequest) {
		m.Add("supannRessourceEtat", []string{"{MAIL}A:SupannActif"})
		m.Add("supannRessourceEtatDate", []string{"{COMPTE}I:SupannCree:20250101:", "{MAIL}A:SupannActif:20250101:"})
		m.Add("supannConsentement", []string{"{RGPD}2024-01", "{CHARTE}2019"})
		m.Add("mailForwardingAddress", []string{"old@example.com"})
	})
	before := attrs(t, a, dn, "*")

	acc, err := d.Lookup(ctx, "jdupont")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetPassword(ctx, acc, goodPassword); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	act := flow.Activation{When: when, CharterVersion: "2026-09", Public: false, Redirect: "jean@example.com", KeepCopy: true}
	if err := d.Activate(ctx, acc, act); err != nil {
		t.Fatalf("Activate: %v", err)
	}

	after := attrs(t, a, dn, "*")
	want := maps.Clone(before)
	for k, v := range map[string][]string{
		"supannressourceetat":     {"{COMPTE}A:SupannActif", "{MAIL}A:SupannActif"},
		"supannressourceetatdate": {"{COMPTE}A:SupannActif:20261125:", "{MAIL}A:SupannActif:20250101:"},
		"supannlisterouge":        {"TRUE"},
		"supannconsentement":      {"{CHARTE}2026-09", "{RGPD}2024-01"},
		"mailforwardingaddress":   {"jdupont@example.org", "jean@example.com"},
	} {
		want[k] = v
	}
	if pw := after["userpassword"]; len(pw) != 1 || !strings.HasPrefix(pw[0], "{SSHA}") {
		t.Errorf("userPassword not one {SSHA} value (%d values)", len(pw))
	}
	delete(after, "userpassword")
	if !reflect.DeepEqual(after, want) {
		t.Errorf("entry after Activate:\n got %v\nwant %v", after, want)
	}
	if err := canBind(s, dn, goodPassword); err != nil {
		t.Errorf("bind with the new password: %v", err)
	}
	if acc, err := d.Lookup(ctx, "jdupont"); err != nil || !acc.Active {
		t.Errorf("Lookup after Activate: active=%v, %v", acc.Active, err)
	}
}

func TestActivateChoices(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	// An entry without supannPerson: Activate adds the class.
	if err := a.Add(addReq("uid=nsupann,"+s.PeopleDN, "objectClass", "inetOrgPerson", "uid", "nsupann",
		"cn", "Nadia Supann", "sn", "Supann", "mail", "nsupann@example.org")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		login       string
		act         flow.Activation
		hidden      string
		forward     []string
		objectClass []string
	}{
		{"mlefevre", flow.Activation{Public: true}, "FALSE", nil, nil},
		{"pactif", flow.Activation{Redirect: "paul@example.com"}, "TRUE", []string{"paul@example.com"}, nil},
		{"jdupont", flow.Activation{Public: true, Redirect: "JDupont@Example.org", KeepCopy: true}, "FALSE",
			[]string{"JDupont@Example.org"}, nil},
		{"nsupann", flow.Activation{Redirect: "n@example.com", KeepCopy: true}, "TRUE",
			[]string{"n@example.com", "nsupann@example.org"}, []string{"inetOrgPerson", "supannPerson"}},
	} {
		acc, err := d.Lookup(t.Context(), tc.login)
		if err != nil {
			t.Fatal(err)
		}
		tc.act.When, tc.act.CharterVersion = when, "v3"
		if err := d.Activate(t.Context(), acc, tc.act); err != nil {
			t.Errorf("%s: Activate: %v", tc.login, err)
			continue
		}
		e := attrs(t, a, acc.DN, "supannListeRouge", "mailForwardingAddress", "objectClass", "supannConsentement")
		if got := e["supannlisterouge"]; !slices.Equal(got, []string{tc.hidden}) {
			t.Errorf("%s: supannListeRouge = %v, want %s", tc.login, got, tc.hidden)
		}
		if got := e["mailforwardingaddress"]; !slices.Equal(got, tc.forward) {
			t.Errorf("%s: mailForwardingAddress = %q, want %q", tc.login, got, tc.forward)
		}
		if got := e["supannconsentement"]; !slices.Equal(got, []string{"{CHARTE}v3"}) {
			t.Errorf("%s: supannConsentement = %q", tc.login, got)
		}
		if tc.objectClass != nil && !slices.Equal(e["objectclass"], tc.objectClass) {
			t.Errorf("%s: objectClass = %q, want %q", tc.login, e["objectclass"], tc.objectClass)
		}
	}
}

func TestActivateTwice(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	acc, err := d.Lookup(t.Context(), "mlefevre")
	if err != nil {
		t.Fatal(err)
	}
	act := flow.Activation{When: when, CharterVersion: "2026-09", Public: true, Redirect: "marie@example.com"}
	if err := d.Activate(t.Context(), acc, act); err != nil {
		t.Fatal(err)
	}
	first := attrs(t, a, acc.DN, "*")
	if err := d.Activate(t.Context(), acc, act); err != nil {
		t.Fatalf("second Activate: %v", err)
	}
	if second := attrs(t, a, acc.DN, "*"); !reflect.DeepEqual(first, second) {
		t.Errorf("second Activate changed the entry:\n%v\n%v", first, second)
	}
}

func TestSetPasswordRefused(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	acc, err := d.Lookup(t.Context(), "pactif")
	if err != nil {
		t.Fatal(err)
	}
	before := attrs(t, a, acc.DN, "*", "+")
	err = d.SetPassword(t.Context(), acc, "short-pw1") // under pwdMinLength 12
	var refused *flow.PasswordRefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("SetPassword(short) = %v, want *flow.PasswordRefusedError", err)
	}
	// From the password policy control (passwordTooShort); slapd's text
	// says no more, so it is not repeated to the user.
	if refused.Problem != flow.PasswordTooShort || refused.Reason != "" {
		t.Errorf("refusal %+v, want PasswordTooShort without the generic text", refused)
	}
	if strings.Contains(err.Error(), "short-pw1") {
		t.Errorf("the error shows the password: %v", err)
	}
	if after := attrs(t, a, acc.DN, "*", "+"); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused password changed the entry:\n%v\n%v", before, after)
	}
	if err := canBind(s, acc.DN, "initial-password-1234"); err != nil {
		t.Errorf("old password no longer works: %v", err)
	}

	// The same password twice: ppolicy refuses the reuse, with its text.
	if err := d.SetPassword(t.Context(), acc, goodPassword); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPassword(t.Context(), acc, goodPassword); !errors.As(err, &refused) || refused.Problem != flow.PasswordInHistory {
		t.Errorf("reuse: %v, want *flow.PasswordRefusedError PasswordInHistory", err)
	}
}

func TestSetPasswordOutsidePeople(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	for _, dn := range []string{s.ServiceDN, s.PeopleDN, "not a dn", ""} {
		acc := flow.Account{DN: dn, Login: "x"}
		if err := d.SetPassword(t.Context(), acc, goodPassword); err == nil {
			t.Errorf("SetPassword on %q succeeded", dn)
		}
		if err := d.Activate(t.Context(), acc, flow.Activation{When: when}); err == nil {
			t.Errorf("Activate on %q succeeded", dn)
		}
	}
	gone := flow.Account{DN: "uid=gone," + s.PeopleDN, Login: "gone"}
	if err := d.Activate(t.Context(), gone, flow.Activation{When: when}); !errors.Is(err, flow.ErrNoAccount) {
		t.Errorf("Activate of a missing entry: %v, want ErrNoAccount", err)
	}
	if err := d.SetPassword(t.Context(), gone, goodPassword); !errors.Is(err, flow.ErrNoAccount) {
		t.Errorf("SetPassword of a missing entry: %v, want ErrNoAccount", err)
	}
}

// A failure between SetPassword and Activate: the directory goes away, the
// activation fails as unavailable, and a retry once it is back completes.
func TestActivateAfterOutage(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	ctx := t.Context()
	acc, err := d.Lookup(ctx, "jdupont")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetPassword(ctx, acc, goodPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	act := flow.Activation{When: when, CharterVersion: "2026-09"}
	if err := d.Activate(ctx, acc, act); !errors.Is(err, flow.ErrUnavailable) {
		t.Fatalf("Activate with slapd stopped = %v, want ErrUnavailable", err)
	}
	if _, err := d.Lookup(ctx, "jdupont"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Lookup with slapd stopped = %v, want ErrUnavailable", err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Activate(ctx, acc, act); err != nil {
		t.Fatalf("Activate after restart: %v", err)
	}
	a = admin(t, s)
	e := attrs(t, a, acc.DN, "supannRessourceEtat", "supannRessourceEtatDate", "supannConsentement")
	want := map[string][]string{
		"supannressourceetat":     {"{COMPTE}A:SupannActif"},
		"supannressourceetatdate": {"{COMPTE}A:SupannActif:20261125:"},
		"supannconsentement":      {"{CHARTE}2026-09"},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("after retry: %v, want %v", e, want)
	}
	if err := canBind(s, acc.DN, goodPassword); err != nil {
		t.Errorf("bind with the password set before the outage: %v", err)
	}
}

func TestLookupAfterRestart(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	if _, err := d.Lookup(t.Context(), "jdupont"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lookup(t.Context(), "jdupont"); err != nil {
			t.Fatalf("Lookup after restart %d: %v", i+1, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	d, err := New(Config{URL: "ldap://" + addr, BindDN: "cn=x", BindPassword: "y", PeopleBase: "dc=x"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Lookup(t.Context(), "jdupont"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Lookup: %v, want ErrUnavailable", err)
	}
	if _, err := d.Check(t.Context()); err == nil {
		t.Errorf("Check succeeded")
	}
}

func TestCanceledContext(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := d.Lookup(ctx, "jdupont")
	if !errors.Is(err, flow.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup with a canceled context: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	if _, err := d.Lookup(t.Context(), "jdupont"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lookup(t.Context(), "jdupont"); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Lookup after Close: %v", err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				login := people[(i+j)%len(people)].Login
				acc, err := d.Lookup(t.Context(), login)
				if err == nil && acc.Login != login {
					err = fmt.Errorf("Lookup(%s) returned %s", login, acc.Login)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCreate(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	ctx := t.Context()
	n := flow.NewAccount{Login: "nlegrand", GivenName: "Noémie", Surname: "Legrand",
		RecoveryMail: "noemie.legrand@example.net", Affiliation: "affiliate"}
	created, err := d.Create(ctx, n)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	found, err := d.Lookup(ctx, "nlegrand")
	if err != nil {
		t.Fatalf("Lookup after Create: %v", err)
	}
	if !reflect.DeepEqual(created, found) {
		t.Errorf("Create returned %+v\nLookup returns %+v", created, found)
	}
	if found.Active || found.Mail != "nlegrand@example.org" || found.DisplayName != "Noémie Legrand" {
		t.Errorf("created account: %+v", found)
	}
	e := attrs(t, a, found.DN, "*")
	want := map[string][]string{
		"objectclass": {"eduPerson", "inetOrgPerson", "supannPerson"}, "uid": {"nlegrand"},
		"cn": {"Noémie Legrand"}, "sn": {"Legrand"}, "givenname": {"Noémie"}, "displayname": {"Noémie Legrand"},
		"mail": {"nlegrand@example.org"}, "supannmailperso": {"noemie.legrand@example.net"},
		"edupersonaffiliation": {"affiliate"}, "edupersonprimaryaffiliation": {"affiliate"},
		"supannressourceetat": {StatePending},
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("created entry:\n got %v\nwant %v", e, want)
	}

	if _, err := d.Create(ctx, n); !errors.Is(err, ErrExists) {
		t.Errorf("Create twice: %v, want ErrExists", err)
	}
	if _, err := d.Create(ctx, flow.NewAccount{Login: "JDupont", GivenName: "J", Surname: "D"}); !errors.Is(err, ErrExists) {
		t.Errorf("Create of an existing login in another case: %v, want ErrExists", err)
	}
	if _, err := d.Create(ctx, flow.NewAccount{Login: "x", GivenName: "X"}); err == nil {
		t.Errorf("Create without a surname succeeded")
	}

	// A login with DN special characters is escaped as a value.
	odd, err := d.Create(ctx, flow.NewAccount{Login: "a,b+c=d", GivenName: "Odd", Surname: "Login"})
	if err != nil {
		t.Fatalf("Create(a,b+c=d): %v", err)
	}
	if want := `uid=a\,b\+c=d,` + s.PeopleDN; odd.DN != want {
		t.Errorf("DN = %q, want %q", odd.DN, want)
	}
	got, err := d.Lookup(ctx, "a,b+c=d")
	if err != nil {
		t.Fatalf("Lookup(a,b+c=d): %v", err)
	}
	// The server answers with its own escaping (uid=a\2Cb...): compare parsed.
	if !sameDN(got.DN, odd.DN) || got.Login != "a,b+c=d" {
		t.Errorf("Lookup(a,b+c=d) = %+v", got)
	}
	if err := d.Activate(ctx, got, flow.Activation{When: when, CharterVersion: "v1"}); err != nil {
		t.Errorf("Activate(a,b+c=d): %v", err)
	}
}

func TestCheck(t *testing.T) {
	s := slapdtest.Start(t, people...)
	if _, err := newDir(t, s).Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	bad := newDir(t, s, func(c *Config) { c.BindPassword = "wrong" })
	if _, err := bad.Check(t.Context()); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("Check with a wrong password: %v", err)
	}
	// Waiting will not cure a wrong password: a configuration error, saying so.
	if _, err := bad.Lookup(t.Context(), "jdupont"); !errors.Is(err, flow.ErrMisconfigured) || errors.Is(err, flow.ErrUnavailable) ||
		!strings.Contains(err.Error(), "cannot bind: check ldap bind_dn") {
		t.Errorf("Lookup with a wrong bind password: %v, want ErrMisconfigured", err)
	}
	noBase := newDir(t, s, func(c *Config) { c.PeopleBase = "ou=nowhere,dc=example,dc=org" })
	if _, err := noBase.Check(t.Context()); err == nil {
		t.Errorf("Check with a missing people base succeeded")
	}
	// This server has no TLS: StartTLS must fail, never fall back to clear.
	tls := newDir(t, s, func(c *Config) { c.StartTLS = true })
	if _, err := tls.Check(t.Context()); err == nil {
		t.Errorf("StartTLS to a server without TLS succeeded")
	}
}

func TestTLS(t *testing.T) {
	s, err := slapd.Start(t.Context(), slapd.Options{Dir: t.TempDir(), Accounts: people, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	localhost := func(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"starttls+ca", func(c *Config) { c.StartTLS, c.CAFile = true, s.CAFile }, true},
		{"starttls+ca localhost", func(c *Config) { c.URL, c.StartTLS, c.CAFile = localhost(s.URL), true, s.CAFile }, true},
		{"ldaps+ca", func(c *Config) { c.URL, c.CAFile = s.LDAPSURL, s.CAFile }, true},
		{"starttls unknown CA", func(c *Config) { c.StartTLS = true }, false},
		{"ldaps unknown CA", func(c *Config) { c.URL = s.LDAPSURL }, false},
		{"ldaps to the plain port", func(c *Config) { c.URL, c.CAFile = strings.Replace(s.URL, "ldap:", "ldaps:", 1), s.CAFile }, false},
	} {
		d := newDir(t, s, func(c *Config) { c.Timeout = 5 * time.Second }, tc.edit)
		_, err := d.Check(t.Context())
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		_, err = d.Lookup(t.Context(), "jdupont")
		if tc.ok && err != nil {
			t.Errorf("%s: Lookup: %v", tc.name, err)
		}
		// A certificate refused: waiting will not cure it. TLS to a plain
		// port ends in EOF, which an outage may give too.
		want := flow.ErrMisconfigured
		if strings.Contains(tc.name, "plain port") {
			want = flow.ErrUnavailable
		}
		if !tc.ok && !errors.Is(err, want) {
			t.Errorf("%s: Lookup = %v, want %v", tc.name, err, want)
		}
	}
}

func TestNew(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{BindDN: "cn=activated,ou=services,dc=example,dc=org", BindPassword: "secret",
		PeopleBase: "ou=people,dc=example,dc=org"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = accepted; else a part of the error
	}{
		{"ldaps", func(c *Config) { c.URL = "ldaps://ldap.example.org" }, ""},
		{"ldap+starttls", func(c *Config) { c.URL, c.StartTLS = "ldap://ldap.example.org:389", true }, ""},
		{"plain loopback v4", func(c *Config) { c.URL = "ldap://127.0.0.1:3389" }, ""},
		{"plain loopback v6", func(c *Config) { c.URL = "ldap://[::1]" }, ""},
		{"plain localhost", func(c *Config) { c.URL = "ldap://localhost" }, ""},
		{"plain remote", func(c *Config) { c.URL = "ldap://ldap.example.org" }, "loopback"},
		{"plain remote ip", func(c *Config) { c.URL = "ldap://192.0.2.10:389" }, "loopback"},
		{"plain lookalike", func(c *Config) { c.URL = "ldap://127.0.0.1.example.org" }, "loopback"},
		{"ldaps+starttls", func(c *Config) { c.URL, c.StartTLS = "ldaps://ldap.example.org", true }, "start_tls"},
		{"other scheme", func(c *Config) { c.URL = "http://ldap.example.org" }, "scheme"},
		{"no host", func(c *Config) { c.URL = "ldaps://" }, "no host"},
		{"no bind dn", func(c *Config) { c.URL, c.BindDN = "ldaps://x", "" }, "bind_dn"},
		{"no password", func(c *Config) { c.URL, c.BindPassword = "ldaps://x", "" }, "password"},
		{"no people base", func(c *Config) { c.URL, c.PeopleBase = "ldaps://x", "" }, "people_base"},
		{"bad filter", func(c *Config) { c.URL, c.Filter = "ldaps://x", "(objectClass=inetOrgPerson" }, "filter"},
		{"missing ca", func(c *Config) { c.URL, c.CAFile = "ldaps://x", ca+".missing" }, "ca_file"},
		{"bad ca", func(c *Config) { c.URL, c.CAFile = "ldaps://x", ca }, "no PEM"},
		// The same rules as the config's (CheckURL and ValidAttrName are
		// the config's checks too).
		{"base dn in url", func(c *Config) { c.URL = "ldaps://ldap.example.org/dc=example,dc=org" }, "must not hold a base DN"},
		{"credentials in url", func(c *Config) { c.URL = "ldaps://cn=x:secret@ldap.example.org" }, "must not hold credentials"},
		{"port 0", func(c *Config) { c.URL = "ldaps://ldap.example.org:0" }, "port must be from 1 to 65535"},
		{"attribute name", func(c *Config) { c.URL, c.Attrs.Forward = "ldaps://x", "mail forward" }, `not an LDAP attribute name: "mail forward"`},
		{"attribute oid", func(c *Config) { c.URL, c.Attrs.RecoveryMail = "ldaps://x", "1.3.6.1.4.1.7135.1.2.1.2" }, ""},
	} {
		cfg := base
		tc.edit(&cfg)
		d, err := New(cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
		if d != nil {
			d.Close()
		}
	}
}

func TestDefaults(t *testing.T) {
	d, err := New(Config{URL: "ldaps://x", BindDN: "cn=x", BindPassword: "y", PeopleBase: "dc=x",
		Attrs: Attrs{Forward: "mailRoutingAddress"}})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultAttrs()
	want.Forward = "mailRoutingAddress"
	if d.cfg.Attrs != want {
		t.Errorf("attrs = %+v", d.cfg.Attrs)
	}
	if d.cfg.Timeout != 10*time.Second || d.cfg.ConsentLabel != "{CHARTE}" || d.cfg.Filter != "(objectClass=inetOrgPerson)" {
		t.Errorf("defaults: %+v", d.cfg)
	}
}

func sameDN(a, b string) bool {
	pa, err1 := ldap.ParseDN(a)
	pb, err2 := ldap.ParseDN(b)
	return err1 == nil && err2 == nil && pa.EqualFold(pb)
}

// proxy forwards TCP connections to a target; freeze makes the connections
// open so far swallow what the client sends (a silent network failure: the
// client notices only when its request times out). New connections work.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	gen    int // connections of an older generation are frozen
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			gen := p.gen
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			wg.Go(func() { p.pipe(c, s, gen); s.Close(); c.Close() })
			wg.Go(func() { p.pipe(s, c, -1); s.Close(); c.Close() })
		}
	})
	return p
}

// pipe copies from src to dst; with gen >= 0, it drops the data once the
// proxy moved past gen.
func (p *proxy) pipe(src, dst net.Conn, gen int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		frozen := gen >= 0 && p.gen > gen
		p.mu.Unlock()
		if frozen {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *proxy) freeze() { p.mu.Lock(); p.gen++; p.mu.Unlock() }

// A connection that looks alive but is dead: the request times out, the
// adapter redials once and the lookup succeeds; a password change is not
// repeated (it may have been applied) and reports the outage.
func TestRedialAfterSilentFailure(t *testing.T) {
	s := slapdtest.Start(t, people...)
	p := startProxy(t, strings.TrimPrefix(s.URL, "ldap://"))
	d := newDir(t, s, func(c *Config) { c.URL, c.Timeout = "ldap://"+p.l.Addr().String(), time.Second })
	ctx := t.Context()
	acc, err := d.Lookup(ctx, "pactif")
	if err != nil {
		t.Fatal(err)
	}

	p.freeze()
	if _, err := d.Lookup(ctx, "pactif"); err != nil {
		t.Fatalf("Lookup on a dead connection was not retried: %v", err)
	}

	p.freeze()
	err = d.SetPassword(ctx, acc, goodPassword)
	if !errors.Is(err, flow.ErrUnavailable) {
		t.Fatalf("SetPassword on a dead connection = %v, want ErrUnavailable", err)
	}
	if err := canBind(s, acc.DN, "initial-password-1234"); err != nil {
		t.Errorf("the swallowed SetPassword was repeated: old password fails: %v", err)
	}

	p.freeze()
	act := flow.Activation{When: when, CharterVersion: "v1"}
	if err := d.Activate(ctx, acc, act); err != nil {
		t.Fatalf("Activate on a dead connection was not retried: %v", err)
	}
	if err := d.SetPassword(ctx, acc, goodPassword); err != nil {
		t.Errorf("SetPassword on the new connection: %v", err)
	}
}

// A directory that accepts connections and never answers: requests that
// arrive while the dial hangs share it, so each user waits one timeout
// instead of queueing behind the others' dials.
func TestHangingDirectorySharesOneDial(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	d, err := New(Config{URL: "ldap://" + l.Addr().String(), BindDN: "cn=x", BindPassword: "y", PeopleBase: "dc=x", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := d.Lookup(t.Context(), "jdupont")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, flow.ErrUnavailable) {
			t.Errorf("Lookup: %v, want ErrUnavailable", err)
		}
	}
	d.mu.Lock()
	dials := d.dials
	d.mu.Unlock()
	if dials != 1 {
		t.Errorf("%d dials for 5 concurrent requests, want 1 shared", dials)
	}
}

// A charter accepted again at a reset: only the {CHARTE} consent value
// changes (other labels, state, choices kept), and Lookup reads it back.
func TestAcceptCharter(t *testing.T) {
	s := slapdtest.Start(t, people...)
	d := newDir(t, s)
	a := admin(t, s)
	ctx := t.Context()
	dn := "uid=pactif," + s.PeopleDN
	modify(t, a, dn, func(m *ldap.ModifyRequest) {
		m.Replace("supannConsentement", []string{"{RGPD}2024-01", "{CHARTE}2019"})
		m.Replace("supannListeRouge", []string{"FALSE"})
	})
	before := attrs(t, a, dn, "*")
	acc, err := d.Lookup(ctx, "pactif")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Charter != "2019" || !acc.Active {
		t.Fatalf("Lookup: charter %q active %v, want 2019 true", acc.Charter, acc.Active)
	}
	if err := d.AcceptCharter(ctx, acc, "sha256:0123456789abcdef"); err != nil {
		t.Fatalf("AcceptCharter: %v", err)
	}
	after := attrs(t, a, dn, "*")
	want := maps.Clone(before)
	want["supannconsentement"] = []string{"{CHARTE}sha256:0123456789abcdef", "{RGPD}2024-01"}
	if !reflect.DeepEqual(after, want) {
		t.Errorf("entry after AcceptCharter:\n got %v\nwant %v", after, want)
	}
	if acc, err := d.Lookup(ctx, "pactif"); err != nil || acc.Charter != "sha256:0123456789abcdef" {
		t.Errorf("Lookup after AcceptCharter: charter %q, %v", acc.Charter, err)
	}
	if err := canBind(s, dn, "initial-password-1234"); err != nil {
		t.Errorf("the password changed: %v", err)
	}
}
