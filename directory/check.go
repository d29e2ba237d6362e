package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// oidEffectiveRights is 389-ds' Get Effective Rights control.
const oidEffectiveRights = "1.3.6.1.4.1.42.2.27.9.5.2"

// Check exercises, on a connection of its own, what serving will do:
// connect (TLS as configured) and bind as the service account, read the
// root DSE (Password Modify advertised, the password policy control
// supported), read the people base and an entry below it, send a Password
// Modify that can change nothing (to an entry that does not exist: a
// directory demanding encryption, or denying the grant, says so), and,
// where the directory offers Get Effective Rights (389-ds), read the
// service account's rights on that entry. It returns what it could check,
// and an error saying what to fix when something serve needs fails.
func (d *Directory) Check(ctx context.Context) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("ldap %s: %w", d.cfg.URL, err) }
	c, err := d.dial(ctx)
	if err != nil {
		return fail(d.misconfigured(err, ""))
	}
	defer c.Close()
	var did []string

	dse, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, d.timeLimit(), false,
		"(objectClass=*)", []string{"supportedExtension", "supportedControl"}, nil))
	var ppolicy, rights bool
	if err != nil || len(dse.Entries) != 1 {
		did = append(did, "root DSE unreadable: Password Modify and the password policy control not checked")
	} else {
		e := dse.Entries[0]
		if !slices.Contains(e.GetAttributeValues("supportedExtension"), oidPasswordModify) {
			return fail(fmt.Errorf("%w: the directory does not advertise the Password Modify extended operation (%s), which activated sets passwords with",
				errCheck, oidPasswordModify))
		}
		controls := e.GetAttributeValues("supportedControl")
		ppolicy = slices.Contains(controls, oidPasswordPolicy)
		rights = slices.Contains(controls, oidEffectiveRights)
		did = append(did, "Password Modify advertised")
		if ppolicy {
			did = append(did, "password policy control supported")
		} else {
			did = append(did, "no password policy control (supportedControl "+oidPasswordPolicy+"): a refused password will be explained only by the directory's text")
		}
	}

	// The people base, and one entry below it (the attributes looked up).
	at := d.cfg.Attrs
	if _, err := c.Search(ldap.NewSearchRequest(d.cfg.PeopleBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil)); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			err = fmt.Errorf("%w: %s does not exist, or the service account %s lacks a grant: %s: %w",
				errCheck, d.cfg.PeopleBase, d.cfg.BindDN, needRead, err)
		}
		return fail(d.misconfigured(fmt.Errorf("read %s as %s: %w", d.cfg.PeopleBase, d.cfg.BindDN, err), needRead))
	}
	res, err := c.Search(ldap.NewSearchRequest(d.cfg.PeopleBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, fmt.Sprintf("(&%s(%s=*))", d.cfg.Filter, at.Login), []string{at.Login, at.Mail}, nil))
	var sample *ldap.Entry
	switch {
	case err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return fail(d.misconfigured(fmt.Errorf("search %s as %s: %w", d.cfg.PeopleBase, d.cfg.BindDN, err), needRead))
	case res == nil || len(res.Entries) == 0:
		return fail(fmt.Errorf("%w: the service account %s sees no eligible entry below %s: it lacks a grant: %s (or ldap filter %s matches nothing)",
			errCheck, d.cfg.BindDN, d.cfg.PeopleBase, needRead, d.cfg.Filter))
	default:
		sample = res.Entries[0]
		did = append(did, "people readable")
	}

	// Password Modify on an entry that does not exist below the people
	// base: it can change nothing, and tells encryption demanded (13) or
	// the grant denied (50) from the entry missing (32).
	probe := at.Login + "=activated-check-" + nonce() + "," + d.cfg.PeopleBase
	_, err = passwordModify(c, probe, "activated-check-"+nonce())
	switch {
	case err == nil:
		did = append(did, "Password Modify accepted for a missing entry (?)")
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		did = append(did, "Password Modify allowed on this connection")
	case d.fix(err, needPassword) != "":
		return fail(d.misconfigured(fmt.Errorf("Password Modify: %w", err), needPassword))
	default:
		did = append(did, "Password Modify probe: "+diagnostic(err))
	}

	if rights && sample != nil {
		missing, err := d.effectiveRights(c, sample.DN)
		if err != nil {
			did = append(did, "effective rights unreadable: "+diagnostic(err))
		} else if len(missing) > 0 {
			return fail(fmt.Errorf("%w: the service account %s lacks a grant on %s: %s", errCheck, d.cfg.BindDN, sample.DN,
				strings.Join(missing, "; ")))
		} else {
			did = append(did, "grants checked (effective rights)")
		}
	} else {
		did = append(did, "write grants not checkable here (no effective rights control): they show at the first activation")
	}
	return strings.Join(did, "; "), nil
}

// errCheck marks what Check finds missing in the directory's setup.
var errCheck = errors.New("directory setup")

// effectiveRights reads the service account's rights on dn with 389-ds'
// Get Effective Rights control and lists what serving needs and lacks.
func (d *Directory) effectiveRights(c *ldap.Conn, dn string) ([]string, error) {
	at := d.cfg.Attrs
	write := []string{at.State, at.StateDate, at.ListeRouge, at.Consent, at.Forward, "objectClass"}
	ger := ldap.NewControlString(oidEffectiveRights, true, "dn: "+d.cfg.BindDN)
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, d.timeLimit(), false,
		"(objectClass=*)", append([]string{"attributeLevelRights", "userPassword"}, write...), []ldap.Control{ger}))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, errors.New("no entry")
	}
	// attributeLevelRights: "userPassword:wo, supannListeRouge:rscwo, ..."
	rights := map[string]string{}
	for _, v := range res.Entries[0].GetAttributeValues("attributeLevelRights") {
		for _, part := range strings.Split(v, ",") {
			if name, r, ok := strings.Cut(strings.TrimSpace(part), ":"); ok {
				rights[strings.ToLower(name)] = r
			}
		}
	}
	if len(rights) == 0 {
		return nil, errors.New("no attributeLevelRights returned")
	}
	var missing []string
	if !strings.Contains(rights["userpassword"], "w") {
		missing = append(missing, needPassword)
	}
	var noWrite []string
	for _, a := range write {
		if !strings.Contains(rights[strings.ToLower(a)], "w") {
			noWrite = append(noWrite, a)
		}
	}
	if len(noWrite) > 0 {
		missing = append(missing, "write on "+strings.Join(noWrite, ", ")+" (activation)")
	}
	return missing, nil
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
