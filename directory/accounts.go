package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
)

var _ flow.Directory = (*Directory)(nil)

// Lookup finds the one eligible entry whose login attribute equals login.
// It returns flow.ErrNoAccount when none or several match.
func (d *Directory) Lookup(ctx context.Context, login string) (flow.Account, error) {
	if login == "" {
		return flow.Account{}, flow.ErrNoAccount
	}
	at := d.cfg.Attrs
	filter := fmt.Sprintf("(&%s(%s=%s))", d.cfg.Filter, at.Login, ldap.EscapeFilter(login))
	req := ldap.NewSearchRequest(d.cfg.PeopleBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, d.timeLimit(), false, filter,
		[]string{at.Login, at.GivenName, at.Surname, at.DisplayName, at.Mail, at.RecoveryMail, at.Affiliation, at.State, at.Consent}, nil)
	var res *ldap.SearchResult
	err := d.do(ctx, true, needRead, func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil // more than one: handled below
		}
		return err
	})
	if err != nil {
		return flow.Account{}, fmt.Errorf("lookup: %w", err) // no login: it may be what someone typed
	}
	switch len(res.Entries) {
	case 0:
		return flow.Account{}, flow.ErrNoAccount
	case 1:
	default: // ambiguous: refuse rather than pick one
		return flow.Account{}, fmt.Errorf("lookup %q: several entries: %w", login, flow.ErrNoAccount)
	}
	e := res.Entries[0]
	acc := flow.Account{
		DN:            e.DN,
		Login:         login,
		GivenName:     first(e, at.GivenName),
		Surname:       first(e, at.Surname),
		DisplayName:   first(e, at.DisplayName),
		Mail:          first(e, at.Mail),
		RecoveryMails: values(e, at.RecoveryMail),
		Affiliations:  values(e, at.Affiliation),
	}
	// The directory's spelling of the login (matching is case-insensitive).
	for _, v := range e.GetEqualFoldAttributeValues(at.Login) {
		if strings.EqualFold(v, login) {
			acc.Login = v
		}
	}
	for _, v := range e.GetEqualFoldAttributeValues(at.State) {
		if strings.EqualFold(v, stateActive) {
			acc.Active = true
		}
	}
	label := d.cfg.ConsentLabel
	for _, v := range e.GetEqualFoldAttributeValues(at.Consent) {
		if len(v) > len(label) && strings.EqualFold(v[:len(label)], label) {
			acc.Charter = v[len(label):]
		}
	}
	return acc, nil
}

// values returns the values of attr, nil when there are none.
func values(e *ldap.Entry, attr string) []string {
	if v := e.GetEqualFoldAttributeValues(attr); len(v) > 0 {
		return v
	}
	return nil
}

func first(e *ldap.Entry, attr string) string {
	if v := e.GetEqualFoldAttributeValues(attr); len(v) > 0 {
		return v[0]
	}
	return ""
}

// SetPassword sets the password of a with the Password Modify extended
// operation (RFC 3062), requesting the password policy control: the
// directory hashes it and applies its password policy. A refusal of this
// password (result 19) is a *flow.PasswordRefusedError saying what to
// change; a refusal of any change is flow.ErrMisconfigured. It is not
// retried on a network error: the first attempt may have succeeded, and
// repeating it would be refused as a reuse.
func (d *Directory) SetPassword(ctx context.Context, a flow.Account, password string) error {
	if err := d.checkDN(a.DN); err != nil {
		return fmt.Errorf("set password of %q: %w", a.Login, err)
	}
	err := d.do(ctx, false, needPassword, func(c *ldap.Conn) error {
		pp, err := passwordModify(c, a.DN, password)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) && strings.TrimSpace(diagnostic(err)) == unexplained389 {
			pp, err = explain389(c, a.DN, password)
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
			return refusal(pp, diagnostic(err))
		}
		return err
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		err = flow.ErrNoAccount
	}
	if err != nil {
		return fmt.Errorf("set password of %q: %w", a.Login, err)
	}
	return nil
}

// Create adds a pending account under the people base, named by its login
// (Attrs.Login=login). It returns ErrExists when the login is taken.
func (d *Directory) Create(ctx context.Context, n flow.NewAccount) (flow.Account, error) {
	if n.Login == "" || n.GivenName == "" || n.Surname == "" {
		return flow.Account{}, fmt.Errorf("create %q: login, given name and surname are required", n.Login)
	}
	at := d.cfg.Attrs
	name := n.GivenName + " " + n.Surname
	acc := flow.Account{
		DN:    at.Login + "=" + ldap.EscapeDN(n.Login) + "," + d.cfg.PeopleBase,
		Login: n.Login, GivenName: n.GivenName, Surname: n.Surname, DisplayName: name,
	}
	req := ldap.NewAddRequest(acc.DN, nil)
	req.Attribute("objectClass", d.cfg.CreateClasses)
	req.Attribute(at.Login, []string{n.Login})
	req.Attribute("cn", []string{name})
	req.Attribute(at.Surname, []string{n.Surname})
	req.Attribute(at.GivenName, []string{n.GivenName})
	req.Attribute(at.DisplayName, []string{name})
	if d.cfg.MailDomain != "" {
		acc.Mail = n.Login + "@" + d.cfg.MailDomain
		req.Attribute(at.Mail, []string{acc.Mail})
	}
	if n.RecoveryMail != "" {
		acc.RecoveryMails = []string{n.RecoveryMail}
		req.Attribute(at.RecoveryMail, acc.RecoveryMails)
	}
	if n.Affiliation != "" {
		acc.Affiliations = []string{n.Affiliation}
		req.Attribute(at.Affiliation, acc.Affiliations)
		req.Attribute(at.PrimaryAffiliation, acc.Affiliations)
	}
	req.Attribute(at.State, []string{StatePending})

	// The login must be unique in the whole people base, not only at this DN.
	find := ldap.NewSearchRequest(d.cfg.PeopleBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, fmt.Sprintf("(%s=%s)", at.Login, ldap.EscapeFilter(n.Login)), []string{"1.1"}, nil)
	var found bool
	err := d.do(ctx, true, needRead, func(c *ldap.Conn) error {
		res, err := c.Search(find)
		found = res != nil && len(res.Entries) > 0
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return nil
		}
		return err
	})
	if err == nil && found {
		err = ErrExists
	}
	if err == nil {
		err = d.do(ctx, false, needCreate, func(c *ldap.Conn) error { return c.Add(req) })
		if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			err = ErrExists
		}
	}
	if err != nil {
		return flow.Account{}, fmt.Errorf("create %q: %w", n.Login, err)
	}
	return acc, nil
}

// checkDN refuses a DN that is not below the people base (a corrupted
// dossier must not reach the service account's other rights).
func (d *Directory) checkDN(dn string) error {
	base, err := ldap.ParseDN(d.cfg.PeopleBase)
	if err != nil {
		return err
	}
	p, err := ldap.ParseDN(dn)
	if err != nil || !base.AncestorOfFold(p) {
		return fmt.Errorf("DN %q is not below %s", dn, d.cfg.PeopleBase)
	}
	return nil
}
