package main

// This file owns the configuration: its TOML schema, the defaults, the
// ACTIVATED_<SECTION>_<KEY> environment overrides and the validation that
// refuses to start on an unsafe or incomplete configuration.

import (
	"encoding"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the time zone works on hosts without tzdata

	"github.com/BurntSushi/toml"
	"github.com/go-ldap/ldap/v3"

	"activated/directory"
	"activated/internal/private"
	"activated/sshapp"
)

// Config is the whole configuration file. Every key has a TOML name and can
// be overridden by the environment variable ACTIVATED_<SECTION>_<KEY>
// (ACTIVATED_LDAP_ATTRIBUTES_FORWARD for the nested table).
type Config struct {
	SSH        SSHConfig        `toml:"ssh"`
	Storage    StorageConfig    `toml:"storage"`
	LDAP       LDAPConfig       `toml:"ldap"`
	Mail       MailConfig       `toml:"mail"`
	Activation ActivationConfig `toml:"activation"`
	Password   PasswordConfig   `toml:"password"`
	Metrics    MetricsConfig    `toml:"metrics"`
	Log        LogConfig        `toml:"log"`

	loc     *time.Location    // set by Validate
	fromEnv map[string]string // key → environment variable that set it
}

// SSHConfig is the [ssh] section.
type SSHConfig struct {
	Listen              string   `toml:"listen"`
	HostKey             string   `toml:"host_key"`
	StaffAuthorizedKeys string   `toml:"staff_authorized_keys"` // empty: no staff access
	IdleTimeout         Duration `toml:"idle_timeout"`
	MaxTimeout          Duration `toml:"max_timeout"`
	MaxSessions         int      `toml:"max_sessions"`
	// MaxStartups caps the connections not yet authenticated, server-wide,
	// and MaxStartupsPerSource per client address (an IPv6 /64): past
	// either, a new connection is closed at once.
	MaxStartups          int `toml:"max_startups"`
	MaxStartupsPerSource int `toml:"max_startups_per_source"`
	// ConnectionsPerMinute is no longer used (it locked out lecture halls
	// behind one NAT address): accepted so that old files still load, and
	// warned about when set.
	ConnectionsPerMinute int      `toml:"connections_per_minute"`
	HandshakeTimeout     Duration `toml:"handshake_timeout"`
}

// StorageConfig is the [storage] section.
type StorageConfig struct {
	// Backend is "bbolt" (one node, the file at Path) or "etcd" (several
	// nodes sharing the etcd cluster at EtcdEndpoints).
	Backend          string   `toml:"backend"`
	Path             string   `toml:"path"`
	EtcdEndpoints    []string `toml:"etcd_endpoints"`
	EtcdPrefix       string   `toml:"etcd_prefix"`
	EtcdCAFile       string   `toml:"etcd_ca_file"`
	EtcdCertFile     string   `toml:"etcd_cert_file"`
	EtcdKeyFile      string   `toml:"etcd_key_file"`
	EtcdUsername     string   `toml:"etcd_username"`
	EtcdPasswordFile string   `toml:"etcd_password_file"`
	EtcdTimeout      Duration `toml:"etcd_timeout"`
	// AuditRetention: audit events older than this are deleted by the
	// hourly sweep; 0 keeps them for ever.
	AuditRetention Duration `toml:"audit_retention"`
}

// MetricsConfig is the [metrics] section.
type MetricsConfig struct {
	// Listen is where /metrics, /healthz and /readyz are served, e.g.
	// "127.0.0.1:9273"; "" serves nothing.
	Listen string `toml:"listen"`
}

// LogConfig is the [log] section.
type LogConfig struct {
	Format string `toml:"format"` // logfmt or json
	Level  string `toml:"level"`  // debug, info, warn or error
}

// LDAPConfig is the [ldap] section.
type LDAPConfig struct {
	URL              string `toml:"url"`
	BindDN           string `toml:"bind_dn"`
	BindPasswordFile string `toml:"bind_password_file"`
	PeopleBase       string `toml:"people_base"`
	StartTLS         bool   `toml:"start_tls"`
	CAFile           string `toml:"ca_file"`
	// Filter is ANDed with the login match when looking an account up.
	Filter  string   `toml:"filter"`
	Timeout Duration `toml:"timeout"`
	// ConsentLabel prefixes the charter version in the consent attribute.
	ConsentLabel string `toml:"consent_label"`
	// MailDomain: accounts staff create get mail = login@MailDomain.
	MailDomain string `toml:"mail_domain"`
	// Attributes is the [ldap.attributes] table: the name of every LDAP
	// attribute the product reads or writes. Defaults follow SUPANN
	// (LDAP.md); directory defines them, and checks them.
	Attributes directory.Attrs `toml:"attributes"`
}

// MailConfig is the [mail] section.
type MailConfig struct {
	Transport        string   `toml:"transport"` // smtp, maildir or log
	SMTPURL          string   `toml:"smtp_url"`
	SMTPUsername     string   `toml:"smtp_username"`
	SMTPPasswordFile string   `toml:"smtp_password_file"`
	CAFile           string   `toml:"ca_file"`
	From             string   `toml:"from"`
	Maildir          string   `toml:"maildir"`
	RetryFor         Duration `toml:"retry_for"` // give up on a mail after this long
}

// ActivationConfig is the [activation] section.
type ActivationConfig struct {
	PublicHost        string   `toml:"public_host"` // the host name users type after ssh
	PublicPort        int      `toml:"public_port"`
	Timezone          string   `toml:"timezone"`
	CharterFile       string   `toml:"charter_file"`
	Language          string   `toml:"language"` // default language: fr or en
	StaffAffiliations []string `toml:"staff_affiliations"`
	Institution       string   `toml:"institution"`
	Helpdesk          string   `toml:"helpdesk"` // free text: shown on every dead end and in every mail
	Services          []string `toml:"services"`
	MailsPerHour      int      `toml:"mails_per_hour"`    // per login
	LoginsPerMinute   int      `toml:"logins_per_minute"` // server-wide
}

// PasswordConfig is the [password] section.
type PasswordConfig struct {
	MinLength int `toml:"min_length"`
	MaxLength int `toml:"max_length"`
	MinScore  int `toml:"min_score"` // zxcvbn score 0..4
}

// Duration is a time.Duration written as a Go duration string ("10m").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration such as \"90s\", \"10m\" or \"2h\": %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig returns the configuration used for every key the file and
// the environment leave out.
func DefaultConfig() *Config {
	return &Config{
		SSH: SSHConfig{
			Listen:               ":22",
			HostKey:              "/var/lib/activated/host_ed25519",
			IdleTimeout:          Duration{10 * time.Minute},
			MaxTimeout:           Duration{2 * time.Hour},
			MaxSessions:          1000, // ~1 GB of idle TUI sessions (README, Benchmarks)
			MaxStartups:          100,
			MaxStartupsPerSource: 20,
			HandshakeTimeout:     Duration{sshapp.DefaultHandshakeTimeout},
		},
		Storage: StorageConfig{Backend: "bbolt", Path: "/var/lib/activated/activated.db", EtcdEndpoints: []string{},
			EtcdPrefix: "/activated/", EtcdTimeout: Duration{5 * time.Second}, AuditRetention: Duration{400 * 24 * time.Hour}},
		Log: LogConfig{Format: "logfmt", Level: "info"},
		LDAP: LDAPConfig{
			Filter:       "(objectClass=inetOrgPerson)",
			Timeout:      Duration{10 * time.Second},
			ConsentLabel: "{CHARTE}",
			Attributes:   directory.DefaultAttrs(),
		},
		Mail: MailConfig{
			Transport: "smtp",
			RetryFor:  Duration{24 * time.Hour},
		},
		Activation: ActivationConfig{
			PublicPort:        22,
			Timezone:          "Europe/Paris",
			Language:          "fr",
			StaffAffiliations: []string{"staff", "employee", "faculty"},
			Institution:       "Université",
			Services:          []string{"ENT", "Mail", "Moodle"},
			MailsPerHour:      5,
			LoginsPerMinute:   600,
		},
		Password: PasswordConfig{MinLength: 15, MaxLength: 256, MinScore: 3},
	}
}

// LoadConfig builds the configuration: defaults, then the TOML file at path
// (none when path is empty), then the ACTIVATED_* variables of env (in
// os.Environ form), then Validate. Unknown keys and unknown ACTIVATED_*
// variables are errors, so a typo never goes unnoticed.
func LoadConfig(path string, env []string) (*Config, error) {
	c := DefaultConfig()
	where := "config"
	if path != "" {
		where = "config " + path
		md, err := toml.DecodeFile(path, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, c.wrongType(err))
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return nil, fmt.Errorf("%s: unknown key(s): %s", where, strings.Join(keys, ", "))
		}
	}
	if err := c.applyEnv(env); err != nil {
		return nil, fmt.Errorf("%s: bad environment:\n%w", where, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s is invalid:\n%w", where, err)
	}
	return c, nil
}

// wrongType says a value of the wrong type in the file in the operator's
// words (the key, its line, what to write) instead of the decoder's Go
// type names; other errors are returned as they are.
func (c *Config) wrongType(err error) error {
	// The decoder's text is the only place saying it (not a ParseError).
	m := badTypeText.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	for _, f := range c.fields() {
		if f.key != m[2] {
			continue
		}
		want := "a text in quotes"
		switch f.v.Kind() {
		case reflect.Bool:
			want = "true or false, without quotes"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			want = "a whole number, without quotes"
		case reflect.Slice:
			want = `a list, such as ["staff", "faculty"]`
		}
		return fmt.Errorf("line %s: %s: wrong type: write %s", m[1], f.key, want)
	}
	return err
}

var badTypeText = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]+)"\): incompatible types`)

// envPrefix starts every variable that overrides a key.
const envPrefix = "ACTIVATED_"

// configField is one settable key of the configuration.
type configField struct {
	key string        // TOML path: "ldap.attributes.forward"
	env string        // ACTIVATED_LDAP_ATTRIBUTES_FORWARD
	v   reflect.Value // the settable field
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// fields lists every key of c, in declaration order, found by walking the
// toml tags: a struct that is not a TextUnmarshaler is a nested table.
func (c *Config) fields() []configField {
	var out []configField
	var walk func(v reflect.Value, prefix []string)
	walk = func(v reflect.Value, prefix []string) {
		t := v.Type()
		for i := range t.NumField() {
			name := t.Field(i).Tag.Get("toml")
			if name == "" || name == "-" || !t.Field(i).IsExported() {
				continue
			}
			fv := v.Field(i)
			path := append(prefix[:len(prefix):len(prefix)], name)
			if fv.Kind() == reflect.Struct && !fv.Addr().Type().Implements(textUnmarshalerType) {
				walk(fv, path)
				continue
			}
			out = append(out, configField{
				key: strings.Join(path, "."),
				env: envPrefix + strings.ToUpper(strings.Join(path, "_")),
				v:   fv,
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), nil)
	return out
}

// applyEnv sets every key named by an ACTIVATED_* variable of env. Lists
// are comma-separated. Every bad or unknown variable is reported.
func (c *Config) applyEnv(env []string) error {
	byEnv := map[string]configField{}
	for _, f := range c.fields() {
		byEnv[f.env] = f
	}
	var errs []error
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		f, known := byEnv[name]
		if !known {
			errs = append(errs, fmt.Errorf("%s: unknown variable: no config key has this name", name))
			continue
		}
		if err := setField(f.v, value); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", name, f.key, err))
			continue
		}
		if c.fromEnv == nil {
			c.fromEnv = map[string]string{}
		}
		c.fromEnv[f.key] = name
	}
	return errors.Join(errs...)
}

// setField parses s into v according to v's type.
func setField(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a boolean (true or false): %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		list := []string{}
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// problems collects validation failures, one per line, each naming its key.
type problems struct {
	c    *Config
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	msg := key + ": " + fmt.Sprintf(format, args...)
	if env, ok := p.c.fromEnv[key]; ok {
		msg += " (set by " + env + ")"
	}
	p.errs = append(p.errs, errors.New(msg))
}

func (p *problems) required(key, value string) bool {
	if strings.TrimSpace(value) == "" {
		p.add(key, "required")
		return false
	}
	return true
}

func (p *problems) positive(key string, d Duration) {
	if d.Duration <= 0 {
		p.add(key, "must be a positive duration such as \"30s\" or \"10m\", got %q", d.String())
	}
}

var hostnameRE = regexp.MustCompile(`^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*\.?$`)

// Validate checks the whole configuration and reports every problem at
// once, one per line, each line starting with the key it is about. It
// resolves the time zone returned by Location.
func (c *Config) Validate() error {
	p := &problems{c: c}

	// [ssh]
	if p.required("ssh.listen", c.SSH.Listen) {
		if _, port, err := net.SplitHostPort(c.SSH.Listen); err != nil {
			p.add("ssh.listen", "not a host:port address such as \":22\" or \"0.0.0.0:22\": %q", c.SSH.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("ssh.listen", "port must be a number from 0 to 65535, got %q", port)
		}
	}
	p.required("ssh.host_key", c.SSH.HostKey)
	p.positive("ssh.idle_timeout", c.SSH.IdleTimeout)
	p.positive("ssh.max_timeout", c.SSH.MaxTimeout)
	p.positive("ssh.handshake_timeout", c.SSH.HandshakeTimeout)
	if c.SSH.IdleTimeout.Duration > c.SSH.MaxTimeout.Duration {
		p.add("ssh.idle_timeout", "%s is longer than ssh.max_timeout (%s)", c.SSH.IdleTimeout, c.SSH.MaxTimeout)
	}
	if c.SSH.MaxStartups < 1 {
		p.add("ssh.max_startups", "must be at least 1, got %d", c.SSH.MaxStartups)
	}
	if c.SSH.MaxStartupsPerSource < 1 || c.SSH.MaxStartupsPerSource > c.SSH.MaxStartups {
		p.add("ssh.max_startups_per_source", "must be from 1 to ssh.max_startups (%d), got %d", c.SSH.MaxStartups, c.SSH.MaxStartupsPerSource)
	}
	if c.SSH.MaxSessions < 1 {
		p.add("ssh.max_sessions", "must be at least 1, got %d", c.SSH.MaxSessions)
	}

	// [storage]
	c.validateStorage(p)
	if c.Storage.AuditRetention.Duration < 0 {
		p.add("storage.audit_retention", "must be 0 (keep for ever) or a positive duration such as \"9600h\" (400 days), got %q", c.Storage.AuditRetention.String())
	}

	// [metrics]
	if l := c.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			p.add("metrics.listen", "not a host:port address such as \"127.0.0.1:9273\": %q", l)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("metrics.listen", "port must be a number from 0 to 65535, got %q", port)
		}
	}

	// [log]
	if f := c.Log.Format; f != "logfmt" && f != "json" {
		p.add("log.format", "must be \"logfmt\" or \"json\", got %q", f)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		p.add("log.level", "must be \"debug\", \"info\", \"warn\" or \"error\", got %q", c.Log.Level)
	}

	// [ldap]
	c.validateLDAP(p)

	// [mail]
	c.validateMail(p)

	// [activation]
	if p.required("activation.public_host", c.Activation.PublicHost) &&
		net.ParseIP(c.Activation.PublicHost) == nil && !hostnameRE.MatchString(c.Activation.PublicHost) {
		p.add("activation.public_host", "not a host name such as \"activate.example.org\": %q", c.Activation.PublicHost)
	}
	if c.Activation.PublicPort < 1 || c.Activation.PublicPort > 65535 {
		p.add("activation.public_port", "must be from 1 to 65535, got %d", c.Activation.PublicPort)
	}
	c.loc = nil
	if p.required("activation.timezone", c.Activation.Timezone) {
		if loc, err := time.LoadLocation(c.Activation.Timezone); err != nil {
			p.add("activation.timezone", "unknown time zone %q (use an IANA name such as \"Europe/Paris\")", c.Activation.Timezone)
		} else {
			c.loc = loc
		}
	}
	if l := c.Activation.Language; l != "fr" && l != "en" {
		p.add("activation.language", "must be \"fr\" or \"en\", got %q", l)
	}
	for _, a := range c.Activation.StaffAffiliations {
		if strings.TrimSpace(a) == "" {
			p.add("activation.staff_affiliations", "holds an empty affiliation")
			break
		}
	}
	p.required("activation.institution", c.Activation.Institution)
	if c.Activation.MailsPerHour < 1 {
		p.add("activation.mails_per_hour", "must be at least 1, got %d", c.Activation.MailsPerHour)
	}
	if c.Activation.LoginsPerMinute < 1 {
		p.add("activation.logins_per_minute", "must be at least 1, got %d", c.Activation.LoginsPerMinute)
	}

	// [password]
	if c.Password.MinLength < 1 {
		p.add("password.min_length", "must be at least 1, got %d", c.Password.MinLength)
	}
	if c.Password.MinLength > c.Password.MaxLength {
		p.add("password.min_length", "%d is greater than password.max_length (%d)", c.Password.MinLength, c.Password.MaxLength)
	}
	if c.Password.MinScore < 0 || c.Password.MinScore > 4 {
		p.add("password.min_score", "must be from 0 to 4, got %d", c.Password.MinScore)
	}

	return errors.Join(p.errs...)
}

func (c *Config) validateLDAP(p *problems) {
	l := &c.LDAP
	if p.required("ldap.url", l.URL) {
		switch err := directory.CheckURL(l.URL, l.StartTLS); {
		case errors.Is(err, directory.ErrStartTLSOnLDAPS):
			p.add("ldap.start_tls", "%v", err)
		case err != nil:
			p.add("ldap.url", "%v", err)
		}
	}
	if p.required("ldap.bind_dn", l.BindDN) {
		if _, err := ldap.ParseDN(l.BindDN); err != nil {
			p.add("ldap.bind_dn", "not a DN: %v", err)
		}
	}
	p.required("ldap.bind_password_file", l.BindPasswordFile)
	if p.required("ldap.people_base", l.PeopleBase) {
		if _, err := ldap.ParseDN(l.PeopleBase); err != nil {
			p.add("ldap.people_base", "not a DN: %v", err)
		}
	}
	if l.Filter != "" {
		if _, err := ldap.CompileFilter(l.Filter); err != nil {
			p.add("ldap.filter", "not an LDAP filter such as \"(objectClass=inetOrgPerson)\": %q", l.Filter)
		}
	}
	p.positive("ldap.timeout", l.Timeout)
	for _, f := range c.fields() {
		if !strings.HasPrefix(f.key, "ldap.attributes.") {
			continue
		}
		if name := f.v.String(); !directory.ValidAttrName(name) {
			p.add(f.key, "not an LDAP attribute name: %q", name)
		}
	}
}

func (c *Config) validateMail(p *problems) {
	m := &c.Mail
	switch m.Transport {
	case "smtp":
		p.required("mail.smtp_url", m.SMTPURL)
	case "maildir":
		p.required("mail.maildir", m.Maildir)
	case "log":
	default:
		p.add("mail.transport", "must be \"smtp\", \"maildir\" or \"log\", got %q", m.Transport)
	}
	if m.SMTPURL != "" {
		u, err := url.Parse(m.SMTPURL)
		switch {
		case err != nil:
			p.add("mail.smtp_url", "not a URL: %v", errors.Unwrap(err))
		case u.Scheme != "smtp" && u.Scheme != "smtp+starttls" && u.Scheme != "smtps":
			p.add("mail.smtp_url", "scheme must be smtp://, smtp+starttls:// or smtps://, got %q", m.SMTPURL)
		case u.Hostname() == "":
			p.add("mail.smtp_url", "has no host: %q", m.SMTPURL)
		case u.User != nil:
			p.add("mail.smtp_url", "must not hold credentials; use mail.smtp_username and mail.smtp_password_file")
		case u.Path != "" && u.Path != "/" || u.RawQuery != "":
			p.add("mail.smtp_url", "must be scheme://host[:port] only, got %q", m.SMTPURL)
		}
		if err == nil && u.Port() != "" {
			if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
				p.add("mail.smtp_url", "port must be from 1 to 65535, got %q", u.Port())
			}
		}
	}
	if (m.SMTPUsername == "") != (m.SMTPPasswordFile == "") {
		if m.SMTPUsername == "" {
			p.add("mail.smtp_username", "required when mail.smtp_password_file is set")
		} else {
			p.add("mail.smtp_password_file", "required when mail.smtp_username is set")
		}
	}
	if p.required("mail.from", m.From) {
		if _, err := mail.ParseAddress(m.From); err != nil {
			p.add("mail.from", "not a mail address such as \"Université <activation@example.org>\": %q", m.From)
		}
	}
	p.positive("mail.retry_for", m.RetryFor)
}

// Location is the institution's time zone (activation.timezone), which sets
// the code deadlines. It is resolved by Validate; on a configuration that
// was not validated it loads the zone itself and falls back to UTC.
func (c *Config) Location() *time.Location {
	if c.loc != nil {
		return c.loc
	}
	if loc, err := time.LoadLocation(c.Activation.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// LDAPBindPassword reads ldap.bind_password_file ("" when the key is empty).
func (c *Config) LDAPBindPassword() (string, error) {
	if c.LDAP.BindPasswordFile == "" {
		return "", nil
	}
	s, err := readSecretFile(c.LDAP.BindPasswordFile)
	if err != nil {
		return "", fmt.Errorf("ldap.bind_password_file: %w", err)
	}
	return s, nil
}

func (c *Config) validateStorage(p *problems) {
	st := c.Storage
	switch st.Backend {
	case "bbolt":
		p.required("storage.path", st.Path)
		return
	case "etcd":
	default:
		p.add("storage.backend", "must be \"bbolt\" or \"etcd\", got %q", st.Backend)
		return
	}
	if len(st.EtcdEndpoints) == 0 {
		p.add("storage.etcd_endpoints", "required with backend = \"etcd\": the client URLs of the members, such as [\"https://etcd1.example.org:2379\"]")
	}
	for _, e := range st.EtcdEndpoints {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("storage.etcd_endpoints", "not an http:// or https:// URL: %q", e)
		}
	}
	if !strings.HasPrefix(st.EtcdPrefix, "/") || !strings.HasSuffix(st.EtcdPrefix, "/") {
		p.add("storage.etcd_prefix", "must start and end with \"/\", got %q", st.EtcdPrefix)
	}
	if (st.EtcdCertFile == "") != (st.EtcdKeyFile == "") {
		p.add("storage.etcd_cert_file", "etcd_cert_file and etcd_key_file go together (a client certificate and its key)")
	}
	if (st.EtcdUsername == "") != (st.EtcdPasswordFile == "") {
		p.add("storage.etcd_username", "etcd_username and etcd_password_file go together")
	}
	p.positive("storage.etcd_timeout", st.EtcdTimeout)
}

// SMTPPassword reads mail.smtp_password_file ("" when the key is empty).
func (c *Config) SMTPPassword() (string, error) {
	if c.Mail.SMTPPasswordFile == "" {
		return "", nil
	}
	s, err := readSecretFile(c.Mail.SMTPPasswordFile)
	if err != nil {
		return "", fmt.Errorf("mail.smtp_password_file: %w", err)
	}
	return s, nil
}

// maxSecretSize bounds a secret file.
const maxSecretSize = 64 << 10

// readSecretFile returns the content of a password file without its one
// trailing newline. It refuses a file the group or others can access and an
// empty secret. The secret itself never appears in an error.
func readSecretFile(path string) (string, error) {
	data, err := private.ReadFile(path, maxSecretSize)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}
