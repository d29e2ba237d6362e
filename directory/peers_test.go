package directory

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/ds389"
	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
)

// A peer is a real directory the adapter is tested against: OpenLDAP's
// slapd (plain ldap:// on loopback) or 389-ds (ldaps://localhost with its
// self-signed CA: it refuses Password Modify in clear).
type peer struct {
	name       string
	cfg        Config
	minLength  int                        // the directory's own password policy
	admin      func() (*ldap.Conn, error) // bound as the rootdn / Directory Manager
	bind       func(dn, pw string) error
	plainURL   string // a cleartext URL to the same server
	adminSays  string // what the directory says of a too short password, if anything
	peopleBase string
}

// The 389 server is shared by the package's tests (its start takes a few
// seconds): each test uses accounts of its own.
var ds struct {
	once sync.Once
	s    *ds389.Server
	err  error
}

// passphrase passes both policies.
const passphrase = "violet canyon quartz 7Qz"

// minLength389 is the 389 server's global passwordMinLength.
const minLength389 = 20

// people389 are the accounts of the shared 389 server, one set per test.
var people389 = func() []slapd.Account {
	var out []slapd.Account
	for _, p := range []string{"e2e", "pol", "tls", "acl", "chk"} {
		out = append(out,
			slapd.Account{Login: p + "dupont", GivenName: "Jean", Surname: "Dupont", RecoveryMail: p + ".jean@example.net", Affiliation: "student"},
			slapd.Account{Login: p + "actif", GivenName: "Paul", Surname: "Actif", RecoveryMail: p + ".paul@example.net", Affiliation: "faculty",
				Active: true, Password: "initial-password-1234-5678"})
	}
	return out
}()

func TestMain(m *testing.M) {
	code := m.Run()
	if ds.s != nil {
		ds.s.Stop()
	}
	os.Exit(code)
}

func server389(t *testing.T) *ds389.Server {
	t.Helper()
	if _, err := os.Stat(ds389.NsSlapdPath); err != nil {
		t.Fatalf("389-ds not installed: run: %s", ds389.InstallHint)
	}
	ds.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ds.s, ds.err = ds389.Start(ctx, ds389.Options{Accounts: people389, MinLength: minLength389})
	})
	if ds.err != nil {
		t.Fatalf("start 389-ds: %v", ds.err)
	}
	return ds.s
}

// peers returns slapd (accounts people) and 389-ds (accounts people389
// whose logins start with prefix, renamed to people's logins is not
// possible: the test passes the login prefix).
func peers(t *testing.T) []peer {
	s := slapdtest.Start(t, people...)
	d := server389(t)
	return []peer{
		{
			name: "slapd", minLength: slapd.PolicyMinLength, peopleBase: s.PeopleDN, plainURL: s.URL,
			cfg: Config{URL: s.URL, BindDN: s.ServiceDN, BindPassword: s.ServicePassword, PeopleBase: s.PeopleDN, MailDomain: slapd.MailDomain},
			admin: func() (*ldap.Conn, error) {
				c, err := ldap.DialURL(s.URL)
				if err == nil {
					err = c.Bind(s.AdminDN, s.AdminPassword)
				}
				return c, err
			},
			bind: func(dn, pw string) error { return canBind(s, dn, pw) },
		},
		{
			name: "389-ds", minLength: minLength389, peopleBase: d.PeopleDN, plainURL: d.URL,
			cfg: Config{URL: d.LDAPSURL, CAFile: d.CAFile, BindDN: d.ServiceDN, BindPassword: d.ServicePassword,
				PeopleBase: d.PeopleDN, MailDomain: slapd.MailDomain},
			admin: d.Admin,
			bind: func(dn, pw string) error {
				c, err := d.DialTLS()
				if err != nil {
					return err
				}
				defer c.Close()
				return c.Bind(dn, pw)
			},
		},
	}
}

// login is the peer's account for a test: slapd's seeded people, or the
// 389 server's own set for this test.
func (p peer) login(set, base string) string {
	if p.name == "389-ds" {
		return set + base
	}
	return map[string]string{"dupont": "jdupont", "actif": "pactif"}[base]
}

func (p peer) dir(t *testing.T, edit ...func(*Config)) *Directory {
	t.Helper()
	cfg := p.cfg
	cfg.Timeout = 10 * time.Second
	for _, f := range edit {
		f(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("%s: New: %v", p.name, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The same activation, end to end, on both directories.
func TestActivationOnEveryDirectory(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			d := p.dir(t)
			ctx := t.Context()
			if detail, err := d.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			} else {
				t.Logf("Check: %s", detail)
			}
			acc, err := d.Lookup(ctx, p.login("e2e", "dupont"))
			if err != nil {
				t.Fatal(err)
			}
			if acc.Active || len(acc.RecoveryMails) != 1 || acc.Mail == "" {
				t.Errorf("Lookup: %+v", acc)
			}
			if err := d.SetPassword(ctx, acc, passphrase); err != nil {
				t.Fatalf("SetPassword: %v", err)
			}
			act := flow.Activation{When: when, CharterVersion: "2026-09", Public: true, Redirect: "jean@example.com", KeepCopy: true}
			if err := d.Activate(ctx, acc, act); err != nil {
				t.Fatalf("Activate: %v", err)
			}
			a, err := p.admin()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			got := attrs(t, a, acc.DN, "supannRessourceEtat", "supannRessourceEtatDate", "supannListeRouge",
				"supannConsentement", "mailForwardingAddress", "userPassword")
			for k, v := range map[string][]string{
				"supannressourceetat":     {"{COMPTE}A:SupannActif"},
				"supannressourceetatdate": {"{COMPTE}A:SupannActif:20261125:"},
				"supannlisterouge":        {"FALSE"},
				"supannconsentement":      {"{CHARTE}2026-09"},
				"mailforwardingaddress":   {acc.Mail, "jean@example.com"},
			} {
				if !equalFold(got[k], v) {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if pw := got["userpassword"]; len(pw) != 1 || !strings.HasPrefix(pw[0], "{") || strings.Contains(pw[0], passphrase) {
				t.Errorf("userPassword is not one hashed value: %d values", len(pw))
			}
			if err := p.bind(acc.DN, passphrase); err != nil {
				t.Errorf("bind with the new password: %v", err)
			}
			if acc, err := d.Lookup(ctx, acc.Login); err != nil || !acc.Active {
				t.Errorf("Lookup after Activate: active=%v, %v", acc.Active, err)
			}
		})
	}
}

func equalFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		found := false
		for _, y := range a {
			found = found || strings.EqualFold(x, y)
		}
		if !found {
			return false
		}
	}
	return true
}

// The directory's own policy reaches the user as what to change.
func TestPolicyRefusalSaysWhatToChange(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			d := p.dir(t)
			ctx := t.Context()
			acc, err := d.Lookup(ctx, p.login("pol", "actif"))
			if err != nil {
				t.Fatal(err)
			}
			// One short of slapd's 12; 17 characters, enough for
			// activated's own rules, not for 389's 20.
			short := "tulip-mead1"
			if p.name == "389-ds" {
				short = "violet-canyon-7Qz"
			}
			err = d.SetPassword(ctx, acc, short)
			var refused *flow.PasswordRefusedError
			if !errors.As(err, &refused) || refused.Problem != flow.PasswordTooShort {
				t.Fatalf("SetPassword(%d characters) = %v, want PasswordTooShort", len(short), err)
			}
			en, fr := i18n.Error("en", err, ""), i18n.Error("fr", err, "")
			t.Logf("en: %s\nfr: %s", en, fr)
			if p.name == "389-ds" {
				if refused.MinLength != minLength389 || !strings.Contains(en, "at least 20 characters") || !strings.Contains(fr, "au moins 20 caractères") {
					t.Errorf("389's minimum not said: %+v\n%s\n%s", refused, en, fr)
				}
			} else if !strings.Contains(en, "too short") {
				t.Errorf("slapd: %q does not say the password is too short", en)
			}
			if err := p.bind(acc.DN, "initial-password-1234-5678"); p.name == "389-ds" && err != nil {
				t.Errorf("a refused password changed the entry: %v", err)
			}

			// A password already used: the history.
			if err := d.SetPassword(ctx, acc, passphrase); err != nil {
				t.Fatal(err)
			}
			err = d.SetPassword(ctx, acc, passphrase)
			if !errors.As(err, &refused) || refused.Problem != flow.PasswordInHistory {
				t.Errorf("reuse: %v, want PasswordInHistory", err)
			} else if en := i18n.Error("en", err, ""); !strings.Contains(en, "already used") {
				t.Errorf("reuse: %q", en)
			}
		})
	}
}

// 389 checks a password against the user's own entry, and says so.
func TestPolicyRefusalNamesTheEntry389(t *testing.T) {
	p := peers(t)[1]
	d := p.dir(t)
	acc, err := d.Lookup(t.Context(), p.login("pol", "dupont"))
	if err != nil {
		t.Fatal(err)
	}
	err = d.SetPassword(t.Context(), acc, "poldupont-is-my-name-2026")
	var refused *flow.PasswordRefusedError
	if !errors.As(err, &refused) || refused.Problem != flow.PasswordQuality || refused.Reason == "" {
		t.Fatalf("SetPassword(login inside) = %v, want PasswordQuality with 389's words", err)
	}
	t.Logf("%s", i18n.Error("en", err, ""))
}

// Cleartext to a 389 that demands confidentiality: a configuration error,
// not an outage, which Check reports before any user meets it.
func TestConfidentialityRequired389(t *testing.T) {
	p := peers(t)[1]
	d := p.dir(t, func(c *Config) { c.URL, c.CAFile = p.plainURL, "" })
	acc, err := d.Lookup(t.Context(), p.login("tls", "dupont"))
	if err != nil {
		t.Fatalf("Lookup in clear: %v", err)
	}
	err = d.SetPassword(t.Context(), acc, passphrase)
	if !errors.Is(err, flow.ErrMisconfigured) || errors.Is(err, flow.ErrUnavailable) || !strings.Contains(err.Error(), "encrypted connection") {
		t.Errorf("SetPassword in clear = %v, want ErrMisconfigured saying to encrypt", err)
	}
	if s := i18n.Error("en", err, ""); s != i18n.T("en", "err.misconfigured") {
		t.Errorf("the user reads %q", s)
	}
	_, err = d.Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("Check in clear = %v, want the reason", err)
	}
}

// A missing grant is a configuration error naming the grant, on both.
func TestMissingGrant(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			// A person's account has none of the service's grants.
			who := p.login("acl", "actif")
			d := p.dir(t, func(c *Config) {
				c.BindDN, c.BindPassword = "uid="+who+","+p.peopleBase, "initial-password-1234-5678"
				if p.name == "slapd" {
					c.BindPassword = "initial-password-1234"
				}
			})
			acc := flow.Account{DN: "uid=" + p.login("acl", "dupont") + "," + p.peopleBase, Login: p.login("acl", "dupont")}
			err := d.SetPassword(t.Context(), acc, passphrase)
			if !errors.Is(err, flow.ErrMisconfigured) || !strings.Contains(err.Error(), "lacks a grant: write on userPassword") {
				t.Errorf("SetPassword without the grant = %v", err)
			}
			_, err = d.Check(t.Context())
			if err == nil || !strings.Contains(err.Error(), "lacks a grant") {
				t.Errorf("Check without the grant = %v, want the missing grant named", err)
			}
		})
	}
}

// 389's default certificate names localhost only: StartTLS to localhost
// works, ldaps:// to 127.0.0.1 is a configuration error naming the cause.
func TestCertificateName389(t *testing.T) {
	p := peers(t)[1]
	d := p.dir(t, func(c *Config) { c.URL = strings.Replace(c.URL, "localhost", "127.0.0.1", 1) })
	_, err := d.Check(t.Context())
	if !errors.Is(err, flow.ErrMisconfigured) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("ldaps://127.0.0.1 with a certificate for localhost: %v", err)
	}
	if _, err := d.Lookup(t.Context(), p.login("chk", "dupont")); !errors.Is(err, flow.ErrMisconfigured) {
		t.Errorf("Lookup: %v, want ErrMisconfigured", err)
	}
	starttls := p.dir(t, func(c *Config) {
		c.URL, c.StartTLS = strings.Replace(p.plainURL, "127.0.0.1", "localhost", 1), true
	})
	if detail, err := starttls.Check(t.Context()); err != nil {
		t.Errorf("StartTLS to localhost: %v", err)
	} else if !strings.Contains(detail, "grants checked") {
		t.Errorf("StartTLS to localhost: %s", detail)
	}
}
