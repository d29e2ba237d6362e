package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// minimal holds the keys that have no default.
const minimal = `
[ldap]
url = "ldaps://ldap.example.org"
bind_dn = "uid=activated,ou=services,dc=example,dc=org"
bind_password_file = "/etc/activated/ldap.secret"
people_base = "ou=people,dc=example,dc=org"

[mail]
smtp_url = "smtp://smtp.example.org:25"
from = "activation@example.org"

[activation]
public_host = "activate.example.org"
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "activated.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// validConfig returns a validated configuration built from minimal.
func validConfig(t *testing.T) *Config {
	t.Helper()
	c, err := LoadConfig(writeConfig(t, minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := validConfig(t)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"ssh.listen", c.SSH.Listen, ":22"},
		{"ssh.host_key", c.SSH.HostKey, "/var/lib/activated/host_ed25519"},
		{"ssh.staff_authorized_keys", c.SSH.StaffAuthorizedKeys, ""},
		{"ssh.idle_timeout", c.SSH.IdleTimeout.Duration, 10 * time.Minute},
		{"ssh.max_timeout", c.SSH.MaxTimeout.Duration, 2 * time.Hour},
		{"ssh.max_sessions", c.SSH.MaxSessions, 1000},
		{"ssh.max_startups", c.SSH.MaxStartups, 100},
		{"ssh.max_startups_per_source", c.SSH.MaxStartupsPerSource, 20},
		{"ssh.connections_per_minute", c.SSH.ConnectionsPerMinute, 0},
		{"ssh.handshake_timeout", c.SSH.HandshakeTimeout.Duration, 120 * time.Second},
		{"storage.path", c.Storage.Path, "/var/lib/activated/activated.db"},
		{"ldap.start_tls", c.LDAP.StartTLS, false},
		{"ldap.timeout", c.LDAP.Timeout.Duration, 10 * time.Second},
		{"ldap.consent_label", c.LDAP.ConsentLabel, "{CHARTE}"},
		{"ldap.filter", c.LDAP.Filter, "(objectClass=inetOrgPerson)"},
		{"ldap.attributes.login", c.LDAP.Attributes.Login, "uid"},
		{"ldap.attributes.recovery_mail", c.LDAP.Attributes.RecoveryMail, "supannMailPerso"},
		{"ldap.attributes.liste_rouge", c.LDAP.Attributes.ListeRouge, "supannListeRouge"},
		{"ldap.attributes.consent", c.LDAP.Attributes.Consent, "supannConsentement"},
		{"ldap.attributes.forward", c.LDAP.Attributes.Forward, "mailForwardingAddress"},
		{"ldap.attributes.state", c.LDAP.Attributes.State, "supannRessourceEtat"},
		{"ldap.attributes.state_date", c.LDAP.Attributes.StateDate, "supannRessourceEtatDate"},
		{"ldap.attributes.affiliation", c.LDAP.Attributes.Affiliation, "eduPersonAffiliation"},
		{"mail.transport", c.Mail.Transport, "smtp"},
		{"mail.retry_for", c.Mail.RetryFor.Duration, 24 * time.Hour},
		{"activation.public_port", c.Activation.PublicPort, 22},
		{"activation.timezone", c.Activation.Timezone, "Europe/Paris"},
		{"activation.language", c.Activation.Language, "fr"},
		{"activation.staff_affiliations", c.Activation.StaffAffiliations, []string{"staff", "employee", "faculty"}},
		{"activation.institution", c.Activation.Institution, "Université"},
		{"activation.services", c.Activation.Services, []string{"ENT", "Mail", "Moodle"}},
		{"activation.mails_per_hour", c.Activation.MailsPerHour, 5},
		{"activation.logins_per_minute", c.Activation.LoginsPerMinute, 600},
		{"password.min_length", c.Password.MinLength, 15},
		{"password.max_length", c.Password.MaxLength, 256},
		{"password.min_score", c.Password.MinScore, 3},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if got := c.Location().String(); got != "Europe/Paris" {
		t.Errorf("Location() = %s, want Europe/Paris", got)
	}
}

// Every attribute name has a non-empty default, so the table is complete.
func TestEveryAttributeHasADefault(t *testing.T) {
	for _, f := range DefaultConfig().fields() {
		if strings.HasPrefix(f.key, "ldap.attributes.") && f.v.String() == "" {
			t.Errorf("%s has no default", f.key)
		}
	}
}

func TestDefaultsAloneAreNotEnough(t *testing.T) {
	_, err := LoadConfig("", nil)
	if err == nil {
		t.Fatal("defaults alone validated; the keys without default must be required")
	}
	for _, key := range []string{"ldap.url", "ldap.bind_dn", "ldap.bind_password_file", "ldap.people_base",
		"mail.smtp_url", "mail.from", "activation.public_host"} {
		if !strings.Contains(err.Error(), key+": required") {
			t.Errorf("error does not say %s is required:\n%v", key, err)
		}
	}
}

func TestFileValues(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, minimal+`
[ssh]
listen = "127.0.0.1:2222"
idle_timeout = "5m"
max_sessions = 7

[password]
min_length = 12
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SSH.Listen != "127.0.0.1:2222" || c.SSH.IdleTimeout.Duration != 5*time.Minute ||
		c.SSH.MaxSessions != 7 || c.Password.MinLength != 12 {
		t.Errorf("file values not applied: %+v %+v", c.SSH, c.Password)
	}
	if c.LDAP.URL != "ldaps://ldap.example.org" || c.Activation.PublicHost != "activate.example.org" {
		t.Errorf("file values not applied: %+v", c.LDAP)
	}
	if c.SSH.MaxTimeout.Duration != 2*time.Hour {
		t.Error("a key the file leaves out lost its default")
	}
}

func TestFileListReplacesDefault(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, strings.Replace(minimal, "[activation]",
		"[activation]\nstaff_affiliations = []\nservices = [\"ENT\"]", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Activation.StaffAffiliations) != 0 || !slices.Equal(c.Activation.Services, []string{"ENT"}) {
		t.Errorf("lists = %q %q, want [] [ENT]", c.Activation.StaffAffiliations, c.Activation.Services)
	}
}

func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("testdata/example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LDAP.URL != "ldaps://ldap.example.org" || c.Activation.Institution != "Université Exemple" {
		t.Errorf("example not read: %+v", c.LDAP)
	}

	// The example shows every key, so the README can point at it.
	var any map[string]any
	md, err := toml.DecodeFile("testdata/example.toml", &any)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range c.fields() {
		if !md.IsDefined(strings.Split(f.key, ".")...) {
			t.Errorf("testdata/example.toml lacks %s", f.key)
		}
	}
}

// The example spells out the defaults: a key set there to something else
// than its default must say so in a comment, not silently differ.
func TestExampleShowsDefaults(t *testing.T) {
	ex, err := LoadConfig("testdata/example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	differs := map[string]bool{}
	def := DefaultConfig()
	exFields := ex.fields()
	for i, f := range def.fields() {
		if !reflect.DeepEqual(f.v.Interface(), exFields[i].v.Interface()) {
			differs[f.key] = true
		}
	}
	// Keys with no default, or set to a sample value on purpose.
	want := map[string]bool{
		"ssh.listen": true, "ssh.staff_authorized_keys": true,
		"ldap.url": true, "ldap.bind_dn": true, "ldap.bind_password_file": true, "ldap.people_base": true, "ldap.mail_domain": true,
		"mail.smtp_url": true, "mail.smtp_username": true, "mail.smtp_password_file": true, "mail.from": true,
		"activation.public_host": true, "activation.charter_file": true, "activation.institution": true,
		"metrics.listen": true,
	}
	if !reflect.DeepEqual(differs, want) {
		t.Errorf("keys of the example that differ from the defaults = %v, want %v", differs, want)
	}
}

func TestUnknownKey(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, minimal+`
[ssh]
listne = ":22"

[ldap.attributes]
forwrd = "x"

[extra]
a = 1
`), nil)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, key := range []string{"ssh.listne", "ldap.attributes.forwrd", "extra"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestBadFile(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml"), nil); err == nil {
		t.Error("missing file accepted")
	}
	_, err := LoadConfig(writeConfig(t, minimal+"\n[ssh]\nmax_sessions = \"many\"\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "max_sessions") {
		t.Errorf("wrong type: err = %v, want one naming max_sessions", err)
	}
	_, err = LoadConfig(writeConfig(t, minimal+"\n[ssh]\nidle_timeout = \"ten minutes\"\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "idle_timeout") {
		t.Errorf("bad duration: err = %v, want one naming idle_timeout", err)
	}
	_, err = LoadConfig(writeConfig(t, minimal+"\n[ssh]\nidle_timeout = 600\n"), nil)
	if err == nil {
		t.Error("a duration as a bare integer was accepted (unit unknown)")
	}
	_, err = LoadConfig(writeConfig(t, "[ssh\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line ") {
		t.Errorf("syntax error: err = %v, want one with the line", err)
	}
}

func TestEnvOverrideEachKind(t *testing.T) {
	path := writeConfig(t, minimal)
	env := []string{
		"HOME=/root", // not ours: ignored
		"ACTIVATED_LDAP_URL=ldap://ldap.example.org:389",                 // string
		"ACTIVATED_LDAP_START_TLS=true",                                  // bool
		"ACTIVATED_SSH_MAX_SESSIONS=42",                                  // int
		"ACTIVATED_SSH_IDLE_TIMEOUT=90s",                                 // duration
		"ACTIVATED_ACTIVATION_STAFF_AFFILIATIONS= staff , faculty,,",     // list
		"ACTIVATED_LDAP_ATTRIBUTES_FORWARD=mailForwardingAddressPerso",   // nested table
		"ACTIVATED_MAIL_FROM=Université <activation@univ.example.org>",   // value with spaces, non-ASCII
		"ACTIVATED_LDAP_CONSENT_LABEL={CHARTE=1}",                        // value holding '='
		"ACTIVATED_ACTIVATION_SERVICES=",                                 // empty list
		"ACTIVATED_SSH_STAFF_AUTHORIZED_KEYS=/etc/activated/staff_keys",  // key with underscores
		"ACTIVATED_PASSWORD_MIN_SCORE=4",                                 // last section
		"ACTIVATED_STORAGE_PATH=/srv/activated.db",                       // one-key section
		"ACTIVATED_ACTIVATION_TIMEZONE=America/Montreal",                 // changes Location
		"ACTIVATED_SSH_HANDSHAKE_TIMEOUT=1m",                             // duration, again
		"ACTIVATED_ACTIVATION_PUBLIC_PORT=2222",                          // int, again
		"ACTIVATED_LDAP_ATTRIBUTES_LOGIN=supannAliasLogin",               // nested, again
		"ACTIVATED_MAIL_TRANSPORT=log",                                   // enum
		"ACTIVATED_SSH_MAX_TIMEOUT=3h",                                   // file default overridden
		"ACTIVATED_LDAP_TIMEOUT=2s",                                      // duration in [ldap]
		"ACTIVATED_ACTIVATION_LANGUAGE=en",                               // enum
		"ACTIVATED_ACTIVATION_MAILS_PER_HOUR=3",                          // int
		"ACTIVATED_PASSWORD_MIN_LENGTH=20",                               // int
		"ACTIVATED_LDAP_FILTER=(objectClass=supannPerson)",               // filter
		"ACTIVATED_SSH_MAX_SESSIONS=43",                                  // repeated: last wins
		"ACTIVATED_ACTIVATION_INSTITUTION=Université de Test",            // string
		"ACTIVATED_MAIL_RETRY_FOR=48h",                                   // duration in [mail]
		"ACTIVATED_LDAP_CA_FILE=/etc/ssl/ca.pem",                         // string
		"ACTIVATED_ACTIVATION_CHARTER_FILE=/etc/activated/charter.md",    // string
		"ACTIVATED_ACTIVATION_PUBLIC_HOST=activate.univ.example.org",     // string
		"ACTIVATED_MAIL_MAILDIR=/var/spool/activated",                    // string
		"ACTIVATED_LDAP_PEOPLE_BASE=ou=people,dc=univ,dc=example,dc=org", // DN
	}
	c, err := LoadConfig(path, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"string", c.LDAP.URL, "ldap://ldap.example.org:389"},
		{"bool", c.LDAP.StartTLS, true},
		{"int", c.SSH.MaxSessions, 43},
		{"duration", c.SSH.IdleTimeout.Duration, 90 * time.Second},
		{"list", c.Activation.StaffAffiliations, []string{"staff", "faculty"}},
		{"nested", c.LDAP.Attributes.Forward, "mailForwardingAddressPerso"},
		{"spaces", c.Mail.From, "Université <activation@univ.example.org>"},
		{"equals", c.LDAP.ConsentLabel, "{CHARTE=1}"},
		{"empty list", c.Activation.Services, []string{}},
		{"underscores", c.SSH.StaffAuthorizedKeys, "/etc/activated/staff_keys"},
		{"score", c.Password.MinScore, 4},
		{"storage", c.Storage.Path, "/srv/activated.db"},
		{"timezone", c.Location().String(), "America/Montreal"},
		{"max_timeout", c.SSH.MaxTimeout.Duration, 3 * time.Hour},
		{"login attr", c.LDAP.Attributes.Login, "supannAliasLogin"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

// Every key can be overridden from the environment, each with its own
// variable name.
func TestEnvReachesEveryKey(t *testing.T) {
	seen := map[string]string{}
	def := DefaultConfig()
	var env []string
	for _, f := range def.fields() {
		if other, dup := seen[f.env]; dup {
			t.Errorf("%s and %s share the variable %s", other, f.key, f.env)
		}
		seen[f.env] = f.key
		var v string
		switch f.v.Interface().(type) {
		case string:
			v = "x-" + f.key
		case int:
			v = "12345"
		case bool:
			v = "true"
		case Duration:
			v = "17s"
		case []string:
			v = "a,b"
		default:
			t.Fatalf("%s: a type the test does not know: %T", f.key, f.v.Interface())
		}
		env = append(env, f.env+"="+v)
	}
	c := DefaultConfig()
	if err := c.applyEnv(env); err != nil {
		t.Fatal(err)
	}
	for i, f := range c.fields() {
		if reflect.DeepEqual(f.v.Interface(), def.fields()[i].v.Interface()) {
			t.Errorf("%s: %s did not change the value", f.key, f.env)
		}
	}
	if len(seen) < 40 {
		t.Errorf("only %d keys found by reflection", len(seen))
	}
	for _, want := range []string{"ACTIVATED_LDAP_URL", "ACTIVATED_SSH_MAX_SESSIONS",
		"ACTIVATED_ACTIVATION_STAFF_AFFILIATIONS", "ACTIVATED_LDAP_ATTRIBUTES_FORWARD", "ACTIVATED_LDAP_CONSENT_LABEL"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no key answers to %s", want)
		}
	}
}

func TestEnvBadValues(t *testing.T) {
	path := writeConfig(t, minimal)
	_, err := LoadConfig(path, []string{
		"ACTIVATED_SSH_MAX_SESSIONS=lots",
		"ACTIVATED_LDAP_START_TLS=perhaps",
		"ACTIVATED_SSH_IDLE_TIMEOUT=10",
		"ACTIVATED_LDAP_URLL=ldaps://x",
	})
	if err == nil {
		t.Fatal("bad variables accepted")
	}
	for _, want := range []string{
		"ACTIVATED_SSH_MAX_SESSIONS (ssh.max_sessions): not an integer",
		"ACTIVATED_LDAP_START_TLS (ldap.start_tls): not a boolean",
		"ACTIVATED_SSH_IDLE_TIMEOUT (ssh.idle_timeout): not a duration",
		"ACTIVATED_LDAP_URLL: unknown variable",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// A problem with a value that came from the environment names the variable.
func TestValidationNamesEnvVariable(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, minimal), []string{"ACTIVATED_PASSWORD_MIN_SCORE=9"})
	want := "password.min_score: must be from 0 to 4, got 9 (set by ACTIVATED_PASSWORD_MIN_SCORE)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}

func TestValidationMessages(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		want string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"transport", func(c *Config) { c.Mail.Transport = "sendmail" },
			`mail.transport: must be "smtp", "maildir" or "log", got "sendmail"`},
		{"maildir needs dir", func(c *Config) { c.Mail.Transport = "maildir" }, "mail.maildir: required"},
		{"maildir", func(c *Config) { c.Mail.Transport = "maildir"; c.Mail.Maildir = "/tmp/m" }, ""},
		{"log", func(c *Config) { c.Mail.Transport = "log"; c.Mail.SMTPURL = "" }, ""},
		{"smtp needs url", func(c *Config) { c.Mail.SMTPURL = "" }, "mail.smtp_url: required"},
		{"smtp scheme", func(c *Config) { c.Mail.SMTPURL = "http://smtp.example.org" },
			"mail.smtp_url: scheme must be smtp://, smtp+starttls:// or smtps://"},
		{"smtps", func(c *Config) { c.Mail.SMTPURL = "smtps://smtp.example.org:465" }, ""},
		{"smtp+starttls", func(c *Config) { c.Mail.SMTPURL = "smtp+starttls://smtp.example.org" }, ""},
		{"smtp credentials in url", func(c *Config) { c.Mail.SMTPURL = "smtp://u:p@smtp.example.org" },
			"mail.smtp_url: must not hold credentials"},
		{"smtp no host", func(c *Config) { c.Mail.SMTPURL = "smtp://:25" }, "mail.smtp_url: has no host"},
		{"smtp port", func(c *Config) { c.Mail.SMTPURL = "smtp://smtp.example.org:99999" }, "mail.smtp_url: port must be from 1 to 65535"},
		{"smtp user without password", func(c *Config) { c.Mail.SMTPUsername = "u" },
			"mail.smtp_password_file: required when mail.smtp_username is set"},
		{"smtp password without user", func(c *Config) { c.Mail.SMTPPasswordFile = "/p" },
			"mail.smtp_username: required when mail.smtp_password_file is set"},
		{"from", func(c *Config) { c.Mail.From = "not an address" }, "mail.from: not a mail address"},
		{"retry", func(c *Config) { c.Mail.RetryFor.Duration = 0 }, "mail.retry_for: must be a positive duration"},

		{"ldap scheme", func(c *Config) { c.LDAP.URL = "http://ldap.example.org" }, "ldap.url: scheme must be ldaps:// or ldap://"},
		{"ldap plain remote", func(c *Config) { c.LDAP.URL = "ldap://ldap.example.org" },
			"ldap.url: plain ldap:// is only allowed to a loopback address; use ldaps:// or set ldap.start_tls = true"},
		{"ldap plain remote IP", func(c *Config) { c.LDAP.URL = "ldap://192.0.2.1:389" }, "ldap.url: plain ldap:// is only allowed"},
		{"ldap plain 127.0.0.1", func(c *Config) { c.LDAP.URL = "ldap://127.0.0.1:3389" }, ""},
		{"ldap plain 127.1.2.3", func(c *Config) { c.LDAP.URL = "ldap://127.1.2.3" }, ""},
		{"ldap plain ::1", func(c *Config) { c.LDAP.URL = "ldap://[::1]:389" }, ""},
		{"ldap plain localhost", func(c *Config) { c.LDAP.URL = "ldap://localhost" }, ""},
		{"ldap plain localhost.evil", func(c *Config) { c.LDAP.URL = "ldap://localhost.evil.example" }, "ldap.url: plain ldap:// is only allowed"},
		{"ldap starttls", func(c *Config) { c.LDAP.URL = "ldap://ldap.example.org"; c.LDAP.StartTLS = true }, ""},
		{"ldaps with starttls", func(c *Config) { c.LDAP.StartTLS = true }, "ldap.start_tls: applies to ldap:// only"},
		{"ldap credentials", func(c *Config) { c.LDAP.URL = "ldaps://cn=x:secret@ldap.example.org" }, "ldap.url: must not hold credentials"},
		{"ldap base in url", func(c *Config) { c.LDAP.URL = "ldaps://ldap.example.org/dc=example,dc=org" }, "ldap.url: must not hold a base DN"},
		{"ldap no host", func(c *Config) { c.LDAP.URL = "ldaps://" }, "ldap.url: has no host"},
		{"ldap port", func(c *Config) { c.LDAP.URL = "ldaps://ldap.example.org:0" }, "ldap.url: port must be from 1 to 65535"},
		{"bind dn", func(c *Config) { c.LDAP.BindDN = "not a dn" }, "ldap.bind_dn: not a DN"},
		{"people base", func(c *Config) { c.LDAP.PeopleBase = "ou=people,,dc=x" }, "ldap.people_base: not a DN"},
		{"filter", func(c *Config) { c.LDAP.Filter = "objectClass=person" }, "ldap.filter: not an LDAP filter"},
		{"no filter", func(c *Config) { c.LDAP.Filter = "" }, ""},
		{"ldap timeout", func(c *Config) { c.LDAP.Timeout.Duration = -time.Second }, "ldap.timeout: must be a positive duration"},
		{"attribute", func(c *Config) { c.LDAP.Attributes.Forward = "mail forward" }, `ldap.attributes.forward: not an LDAP attribute name: "mail forward"`},
		{"attribute empty", func(c *Config) { c.LDAP.Attributes.Login = "" }, `ldap.attributes.login: not an LDAP attribute name: ""`},
		{"attribute OID", func(c *Config) { c.LDAP.Attributes.ListeRouge = "1.3.6.1.4.1.7135.1.2.1.1" }, ""},

		{"timezone", func(c *Config) { c.Activation.Timezone = "Mars/Olympus" }, `activation.timezone: unknown time zone "Mars/Olympus"`},
		{"timezone empty", func(c *Config) { c.Activation.Timezone = "" }, "activation.timezone: required"},
		{"language", func(c *Config) { c.Activation.Language = "de" }, `activation.language: must be "fr" or "en", got "de"`},
		{"english", func(c *Config) { c.Activation.Language = "en" }, ""},
		{"public port 0", func(c *Config) { c.Activation.PublicPort = 0 }, "activation.public_port: must be from 1 to 65535, got 0"},
		{"public port big", func(c *Config) { c.Activation.PublicPort = 65536 }, "activation.public_port: must be from 1 to 65535, got 65536"},
		{"public host", func(c *Config) { c.Activation.PublicHost = "ssh://activate.example.org" }, "activation.public_host: not a host name"},
		{"public host IP", func(c *Config) { c.Activation.PublicHost = "2001:db8::1" }, ""},
		{"empty affiliation", func(c *Config) { c.Activation.StaffAffiliations = []string{"staff", " "} }, "activation.staff_affiliations: holds an empty affiliation"},
		{"mails per hour", func(c *Config) { c.Activation.MailsPerHour = 0 }, "activation.mails_per_hour: must be at least 1"},
		{"logins per minute", func(c *Config) { c.Activation.LoginsPerMinute = 0 }, "activation.logins_per_minute: must be at least 1"},

		{"min > max", func(c *Config) { c.Password.MinLength = 30; c.Password.MaxLength = 20 },
			"password.min_length: 30 is greater than password.max_length (20)"},
		{"min 0", func(c *Config) { c.Password.MinLength = 0 }, "password.min_length: must be at least 1"},
		{"score low", func(c *Config) { c.Password.MinScore = -1 }, "password.min_score: must be from 0 to 4, got -1"},
		{"score high", func(c *Config) { c.Password.MinScore = 5 }, "password.min_score: must be from 0 to 4, got 5"},
		{"score 0", func(c *Config) { c.Password.MinScore = 0 }, ""},

		{"listen", func(c *Config) { c.SSH.Listen = "0.0.0.0" }, "ssh.listen: not a host:port address"},
		{"listen port", func(c *Config) { c.SSH.Listen = ":ssh" }, "ssh.listen: port must be a number"},
		{"listen random port", func(c *Config) { c.SSH.Listen = "127.0.0.1:0" }, ""},
		{"listen empty", func(c *Config) { c.SSH.Listen = "" }, "ssh.listen: required"},
		{"host key", func(c *Config) { c.SSH.HostKey = "" }, "ssh.host_key: required"},
		{"storage", func(c *Config) { c.Storage.Path = " " }, "storage.path: required"},
		{"idle > max", func(c *Config) { c.SSH.IdleTimeout.Duration = 3 * time.Hour },
			"ssh.idle_timeout: 3h0m0s is longer than ssh.max_timeout (2h0m0s)"},
		{"handshake", func(c *Config) { c.SSH.HandshakeTimeout.Duration = 0 }, `ssh.handshake_timeout: must be a positive duration such as "30s" or "10m", got "0s"`},
		{"max sessions", func(c *Config) { c.SSH.MaxSessions = 0 }, "ssh.max_sessions: must be at least 1, got 0"},
		{"max startups", func(c *Config) { c.SSH.MaxStartups = 0 }, "ssh.max_startups: must be at least 1, got 0"},
		{"max startups per source", func(c *Config) { c.SSH.MaxStartupsPerSource = 0 }, "ssh.max_startups_per_source: must be from 1 to ssh.max_startups (100), got 0"},
		{"per source over server-wide", func(c *Config) { c.SSH.MaxStartups, c.SSH.MaxStartupsPerSource = 10, 11 },
			"ssh.max_startups_per_source: must be from 1 to ssh.max_startups (10), got 11"},
		{"connections per minute still accepted", func(c *Config) { c.SSH.ConnectionsPerMinute = 30 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.edit(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error:\n%v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want %q", tc.want)
			case tc.want != "" && !slices.ContainsFunc(strings.Split(err.Error(), "\n"), func(line string) bool {
				return strings.HasPrefix(line, tc.want)
			}):
				t.Errorf("error:\n%v\nhas no line starting with %q", err, tc.want)
			}
		})
	}
}

// Validate reports every problem at once, one line each.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig(t)
	c.Mail.Transport = "pigeon"
	c.Activation.Language = "de"
	c.Password.MinScore = 7
	c.LDAP.URL = "ldap://ldap.example.org"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Errorf("got %d lines, want 4:\n%v", len(lines), err)
	}
	for i, key := range []string{"ldap.url:", "mail.transport:", "activation.language:", "password.min_score:"} {
		if i < len(lines) && !strings.HasPrefix(lines[i], key) {
			t.Errorf("line %d = %q, want it to start with %s", i, lines[i], key)
		}
	}
}

func TestLocationWithoutValidate(t *testing.T) {
	c := DefaultConfig()
	c.Activation.Timezone = "Asia/Tokyo"
	if got := c.Location().String(); got != "Asia/Tokyo" {
		t.Errorf("Location() = %s", got)
	}
	c.Activation.Timezone = "Nowhere/Nothing"
	if got := c.Location(); got != time.UTC {
		t.Errorf("Location() of a bad zone = %s, want UTC", got)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ content, want string }{
		{"s3cret\n", "s3cret"},
		{"s3cret", "s3cret"},
		{"s3cret\r\n", "s3cret"},
		{"s3cret\n\n", "s3cret\n"}, // only one newline goes
		{" spaced \n", " spaced "},
	} {
		got, err := readSecretFile(write("ok", tc.content, 0o600))
		if err != nil || got != tc.want {
			t.Errorf("readSecretFile(%q) = %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
	if got, err := readSecretFile(write("ro", "x\n", 0o400)); err != nil || got != "x" {
		t.Errorf("mode 0400: %q, %v", got, err)
	}

	for _, mode := range []os.FileMode{0o640, 0o644, 0o604} {
		p := write("open", "topsecret\n", mode)
		_, err := readSecretFile(p)
		if err == nil {
			t.Errorf("mode %04o accepted", mode)
			continue
		}
		if !strings.Contains(err.Error(), "chmod 600 "+p) || !strings.Contains(err.Error(), p) {
			t.Errorf("mode %04o: error %q does not say chmod 600 %s", mode, err, p)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Error("the secret leaked into the error")
		}
	}
	if _, err := readSecretFile(write("empty", "\n", 0o600)); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := readSecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := readSecretFile(dir); err == nil {
		t.Error("a directory accepted as a secret file")
	}
}

func TestPasswordAccessors(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	if s, err := c.LDAPBindPassword(); s != "" || err != nil {
		t.Errorf("no file: %q, %v", s, err)
	}
	if s, err := c.SMTPPassword(); s != "" || err != nil {
		t.Errorf("no file: %q, %v", s, err)
	}
	c.LDAP.BindPasswordFile = filepath.Join(dir, "ldap.secret")
	c.Mail.SMTPPasswordFile = filepath.Join(dir, "smtp.secret")
	if err := os.WriteFile(c.LDAP.BindPasswordFile, []byte("ldap-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := c.LDAPBindPassword(); s != "ldap-pw" || err != nil {
		t.Errorf("LDAPBindPassword = %q, %v", s, err)
	}
	_, err := c.SMTPPassword()
	if err == nil || !strings.HasPrefix(err.Error(), "mail.smtp_password_file: ") {
		t.Errorf("missing SMTP password file: err = %v, want one naming the key", err)
	}
}

// A value of the wrong type in the file is told in the operator's words:
// the key, its line, and what to write instead (not Go's type names).
func TestWrongTypeSaysWhatToWrite(t *testing.T) {
	for _, tc := range []struct{ section, line, want string }{
		{"ssh", `max_sessions = "many"`, `ssh.max_sessions: wrong type: write a whole number, without quotes`},
		{"ldap", `start_tls = "no"`, `ldap.start_tls: wrong type: write true or false, without quotes`},
		{"activation", `staff_affiliations = "staff"`, `activation.staff_affiliations: wrong type: write a list, such as ["staff", "faculty"]`},
		{"activation", `helpdesk = 42`, `activation.helpdesk: wrong type: write a text in quotes`},
	} {
		text := minimal + "\n[" + tc.section + "]\n" + tc.line + "\n"
		if h := "[" + tc.section + "]\n"; strings.Contains(minimal, h) {
			text = strings.Replace(minimal, h, h+tc.line+"\n", 1)
		}
		_, err := LoadConfig(writeConfig(t, text), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line ") ||
			strings.Contains(err.Error(), "slice") || strings.Contains(err.Error(), "destination") {
			t.Errorf("%s: err = %v, want it to contain %q and a line number, no Go type names", tc.line, err, tc.want)
		}
	}
}
