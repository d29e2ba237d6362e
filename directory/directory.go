// Package directory owns the LDAP side of activation: it finds an eligible
// account by login, sets its password through the directory (Password Modify
// extended operation, so the server hashes it and applies its policy),
// writes the activation choices in one Modify, and creates pending accounts.
// It implements flow.Directory over one long-lived connection bound as the
// service account. Attribute names default to the SUPANN conventions and are
// all configurable.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
)

// Attrs names the attributes the adapter reads and writes. The toml tags
// are the keys of the [ldap.attributes] table, which is this struct.
type Attrs struct {
	Login              string `toml:"login"`               // uid
	GivenName          string `toml:"given_name"`          // givenName
	Surname            string `toml:"surname"`             // sn
	DisplayName        string `toml:"display_name"`        // displayName
	Mail               string `toml:"mail"`                // mail: institutional address
	RecoveryMail       string `toml:"recovery_mail"`       // supannMailPerso
	Affiliation        string `toml:"affiliation"`         // eduPersonAffiliation
	PrimaryAffiliation string `toml:"primary_affiliation"` // eduPersonPrimaryAffiliation (Create only)
	State              string `toml:"state"`               // supannRessourceEtat
	StateDate          string `toml:"state_date"`          // supannRessourceEtatDate
	ListeRouge         string `toml:"liste_rouge"`         // supannListeRouge: TRUE = not in the public directory
	Consent            string `toml:"consent"`             // supannConsentement
	Forward            string `toml:"forward"`             // mailForwardingAddress
}

// names lists a's fields, in declaration order.
func (a *Attrs) names() []*string {
	return []*string{&a.Login, &a.GivenName, &a.Surname, &a.DisplayName, &a.Mail, &a.RecoveryMail,
		&a.Affiliation, &a.PrimaryAffiliation, &a.State, &a.StateDate, &a.ListeRouge, &a.Consent, &a.Forward}
}

var attrNameRE = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$`)

// ValidAttrName tells whether name is an LDAP attribute description: a
// name ("supannMailPerso") or an OID ("1.3.6.1.4.1.7135.1.2.1.2").
func ValidAttrName(name string) bool { return attrNameRE.MatchString(name) }

// DefaultAttrs returns the SUPANN / eduPerson / inetOrgPerson names.
func DefaultAttrs() Attrs {
	return Attrs{
		Login: "uid", GivenName: "givenName", Surname: "sn", DisplayName: "displayName",
		Mail: "mail", RecoveryMail: "supannMailPerso",
		Affiliation: "eduPersonAffiliation", PrimaryAffiliation: "eduPersonPrimaryAffiliation",
		State: "supannRessourceEtat", StateDate: "supannRessourceEtatDate",
		ListeRouge: "supannListeRouge", Consent: "supannConsentement", Forward: "mailForwardingAddress",
	}
}

// Config says where the directory is and how to use it. Zero fields take
// their defaults.
type Config struct {
	// URL is ldaps://host[:port], or ldap://host[:port] with StartTLS, or
	// plain ldap:// to a loopback address only.
	URL          string
	BindDN       string // the service account (not the rootdn: it bypasses the password policy)
	BindPassword string
	StartTLS     bool
	CAFile       string // PEM CA certificates added to the system's; certificates are always verified
	// Timeout bounds every operation (connect, bind, each request);
	// default 10s.
	Timeout time.Duration

	PeopleBase string
	// Filter is the eligibility filter, ANDed with (Login=login); default
	// (objectClass=inetOrgPerson).
	Filter string
	Attrs  Attrs
	// ConsentLabel prefixes the charter version in Attrs.Consent; default
	// {CHARTE}.
	ConsentLabel string
	// AuxClasses are added to an entry's objectClass by Activate when
	// missing; default supannPerson (it allows every attribute written).
	AuxClasses []string
	// CreateClasses are the object classes of an entry Create adds; default
	// inetOrgPerson, eduPerson, supannPerson.
	CreateClasses []string
	// MailDomain: Create writes Attrs.Mail as login@MailDomain; "" = no
	// institutional address.
	MailDomain string
	// Metrics counts failed operations; nil counts nothing.
	Metrics Metrics
}

// Metrics is what the adapter counts.
type Metrics interface {
	// LDAPError: an operation failed because the directory could not be
	// reached or answered with an unexpected error (not a refused password,
	// an existing login or a missing entry, which are answers).
	LDAPError()
}

type noMetrics struct{}

func (noMetrics) LDAPError() {}

// SUPANN values.
const (
	stateLabel  = "{COMPTE}"
	stateActive = "{COMPTE}A:SupannActif"
	// StatePending is what Create writes: created, not activated.
	StatePending = "{COMPTE}I:SupannCree"
)

// ErrExists is returned by Create when the login is taken.
var ErrExists = flow.ErrExists

// Directory is an LDAP directory. It is safe for concurrent use.
type Directory struct {
	cfg   Config
	addr  string // host:port
	ldaps bool
	tls   *tls.Config

	mu      sync.Mutex
	conn    *ldap.Conn // bound as the service account; nil until needed
	dialing *dialCall  // the dial under way, shared by every waiter
	dials   int        // dials started, for tests
	closed  bool
}

// dialCall is one dial that every request arriving meanwhile waits for:
// while the directory hangs, n users wait one timeout, not n in turn.
type dialCall struct {
	done chan struct{}
	conn *ldap.Conn
	err  error
}

// New checks cfg and returns a Directory. It does not connect: the first
// operation (or Check) does.
func New(cfg Config) (*Directory, error) {
	fill := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def := DefaultAttrs()
	defs := def.names()
	for i, p := range cfg.Attrs.names() {
		if fill(p, *defs[i]); !ValidAttrName(*p) {
			return nil, fmt.Errorf("ldap: attributes: not an LDAP attribute name: %q", *p)
		}
	}
	fill(&cfg.Filter, "(objectClass=inetOrgPerson)")
	fill(&cfg.ConsentLabel, "{CHARTE}")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.AuxClasses == nil {
		cfg.AuxClasses = []string{"supannPerson"}
	}
	if cfg.CreateClasses == nil {
		cfg.CreateClasses = []string{"inetOrgPerson", "eduPerson", "supannPerson"}
	}
	if cfg.BindDN == "" || cfg.BindPassword == "" {
		return nil, errors.New("ldap: bind_dn and its password are required")
	}
	if cfg.PeopleBase == "" {
		return nil, errors.New("ldap: people_base is required")
	}
	if _, err := ldap.ParseDN(cfg.PeopleBase); err != nil {
		return nil, fmt.Errorf("ldap: people_base: %w", err)
	}
	if _, err := ldap.CompileFilter(cfg.Filter); err != nil {
		return nil, fmt.Errorf("ldap: filter %q: %w", cfg.Filter, err)
	}

	d := &Directory{cfg: cfg}
	u, err := parseURL(cfg.URL, cfg.StartTLS)
	if errors.Is(err, ErrStartTLSOnLDAPS) {
		return nil, fmt.Errorf("ldap: start_tls: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("ldap: url: %w", err)
	}
	host, port := u.Hostname(), u.Port()
	d.ldaps = u.Scheme == "ldaps"
	if port == "" {
		port = map[bool]string{true: "636", false: "389"}[d.ldaps]
	}
	d.addr = net.JoinHostPort(host, port)
	d.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		d.tls.RootCAs = pool
	}
	return d, nil
}

// ErrStartTLSOnLDAPS is CheckURL's complaint about start_tls, not the URL.
var ErrStartTLSOnLDAPS = errors.New("applies to ldap:// only; ldaps:// is already TLS")

// CheckURL checks an LDAP URL as New does: ldaps://host[:port], or
// ldap://host[:port] with startTLS, or plain ldap:// to a loopback address
// only (a password must not cross the network in clear); no credentials,
// base DN or search in it.
func CheckURL(rawURL string, startTLS bool) error {
	_, err := parseURL(rawURL, startTLS)
	return err
}

func parseURL(rawURL string, startTLS bool) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not a URL: %w", errors.Unwrap(err))
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		return nil, fmt.Errorf("scheme must be ldaps:// or ldap://, got %q", rawURL)
	case u.Hostname() == "":
		return nil, fmt.Errorf("has no host: %q", rawURL)
	case u.User != nil:
		return nil, errors.New("must not hold credentials; use ldap.bind_dn and ldap.bind_password_file")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "":
		return nil, fmt.Errorf("must not hold a base DN or search (%q); use ldap.people_base", u.Path+u.RawQuery)
	case u.Scheme == "ldaps" && startTLS:
		return nil, ErrStartTLSOnLDAPS
	case u.Scheme == "ldap" && !startTLS && !isLoopback(u.Hostname()):
		return nil, errors.New("plain ldap:// is only allowed to a loopback address; use ldaps:// or set ldap.start_tls = true")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port must be from 1 to 65535, got %q", p)
		}
	}
	return u, nil
}

// isLoopback tells whether host names the local machine without a network:
// localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes the connection; later operations fail.
func (d *Directory) Close() error {
	d.mu.Lock()
	c := d.conn
	d.conn, d.closed = nil, true
	d.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// dial opens a connection, upgrades it (ldaps or StartTLS) and binds as
// the service account, all within the timeout.
func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	dialer := net.Dialer{Timeout: d.cfg.Timeout}
	raw, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	// One deadline for the TLS handshake, StartTLS and the bind.
	_ = raw.SetDeadline(time.Now().Add(d.cfg.Timeout))
	nc := raw
	if d.ldaps {
		tc := tls.Client(raw, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	c := ldap.NewConn(nc, d.ldaps)
	c.Start()
	c.SetTimeout(d.cfg.Timeout)
	if d.cfg.StartTLS {
		if err := c.StartTLS(d.tls); err != nil {
			c.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	if err := c.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind as %s: %w", d.cfg.BindDN, err)
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

// bound returns the shared connection, dialing it if there is none or it
// died. Requests that arrive during a dial share its outcome.
func (d *Directory) bound(ctx context.Context) (*ldap.Conn, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("%w: closed", flow.ErrUnavailable)
	}
	if d.conn != nil && !d.conn.IsClosing() {
		c := d.conn
		d.mu.Unlock()
		return c, nil
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	call := d.dialing
	if call == nil {
		call = &dialCall{done: make(chan struct{})}
		d.dialing = call
		d.dials++
		go d.dialFor(call, context.WithoutCancel(ctx)) // bounded by cfg.Timeout, whoever waits
	}
	d.mu.Unlock()
	select {
	case <-call.done:
		return call.conn, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", flow.ErrUnavailable, ctx.Err())
	}
}

func (d *Directory) dialFor(call *dialCall, ctx context.Context) {
	c, err := d.dial(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dialing = nil
	switch {
	case err != nil && d.fix(err, "") != "":
		call.err = fmt.Errorf("%s: %w", d.cfg.URL, d.misconfigured(err, ""))
	case err != nil:
		call.err = fmt.Errorf("%w: %s: %w", flow.ErrUnavailable, d.cfg.URL, err)
	case d.closed:
		c.Close()
		call.err = fmt.Errorf("%w: closed", flow.ErrUnavailable)
	default:
		d.conn, call.conn = c, c
	}
	close(call.done)
}

// drop forgets c (if it is still the shared connection) and closes it.
func (d *Directory) drop(c *ldap.Conn) {
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
	c.Close()
}

// do runs op on the shared connection. On a network error it drops the
// connection and, when retry is set (op is safe to repeat), runs op once
// more on a new one. Errors that mean the directory cannot be reached wrap
// flow.ErrUnavailable; refusals that waiting will not cure wrap
// flow.ErrMisconfigured, saying what to fix (need: the grant op needs).
// If ctx ends first, do returns at once; op finishes or times out in the
// background.
func (d *Directory) do(ctx context.Context, retry bool, need string, op func(*ldap.Conn) error) (err error) {
	defer func() {
		if err != nil && !answer(err) && !errors.Is(err, context.Canceled) { // canceled: the user left
			d.cfg.Metrics.LDAPError()
		}
	}()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", flow.ErrUnavailable, err)
	}
	done := make(chan error, 1)
	go func() { done <- d.attempt(ctx, retry, need, op) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", flow.ErrUnavailable, ctx.Err())
	}
}

func (d *Directory) attempt(ctx context.Context, retry bool, need string, op func(*ldap.Conn) error) error {
	for try := 1; ; try++ {
		c, err := d.bound(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		if err == nil || !transient(err) {
			return d.misconfigured(err, need)
		}
		d.drop(c)
		if !retry || try == 2 || ctx.Err() != nil {
			return fmt.Errorf("%w: %w", flow.ErrUnavailable, err)
		}
	}
}

// answer tells whether err is the directory's answer to a well-formed
// request (a password its policy refuses, a login taken, an entry
// missing) rather than a failure an operator must look at.
func answer(err error) bool {
	return errors.Is(err, errNoEntry) || ldap.IsErrorAnyOf(err, ldap.LDAPResultConstraintViolation,
		ldap.LDAPResultEntryAlreadyExists, ldap.LDAPResultNoSuchObject)
}

// transient tells whether err means the connection or the server is
// (perhaps momentarily) unusable rather than that the request was wrong.
func transient(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable)
}

// timeLimit is the server-side time limit of a search, in seconds.
func (d *Directory) timeLimit() int {
	return max(1, int(d.cfg.Timeout/time.Second))
}

// diagnostic returns the server's text for an LDAP error.
func diagnostic(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil && le.Err.Error() != "" {
		return strings.TrimSpace(le.Err.Error())
	}
	return err.Error()
}
