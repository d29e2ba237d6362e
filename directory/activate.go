package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
)

// Activate writes the user's choices and marks the account active in one
// Modify, which the directory applies entirely or not at all. It reads the
// entry first to keep the values it does not own (other labels of the
// state and consent attributes, object classes), and computes every value
// from act alone, so a retry after a failure writes the same entry.
//
// The Modify, in order:
//
//	add     objectClass: each of AuxClasses the entry lacks (only if any)
//	replace State:      other labels kept + {COMPTE}A:SupannActif
//	replace StateDate:  other labels kept + {COMPTE}A:SupannActif:YYYYMMDD:
//	replace ListeRouge: TRUE (not public) or FALSE
//	replace Consent:    other labels kept + ConsentLabel<charter version>
//	replace Forward:    none | redirect | redirect + own mail (KeepCopy)
func (d *Directory) Activate(ctx context.Context, a flow.Account, act flow.Activation) error {
	if err := d.checkDN(a.DN); err != nil {
		return fmt.Errorf("activate %q: %w", a.Login, err)
	}
	if act.When.IsZero() {
		return fmt.Errorf("activate %q: no activation time", a.Login)
	}
	at := d.cfg.Attrs
	read := ldap.NewSearchRequest(a.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, d.timeLimit(), false,
		"(objectClass=*)", []string{"objectClass", at.State, at.StateDate, at.Consent}, nil)
	err := d.do(ctx, true, needActivate, func(c *ldap.Conn) error {
		res, err := c.Search(read)
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return errNoEntry
		}
		return c.Modify(d.activation(res.Entries[0], a, act))
	})
	if errors.Is(err, errNoEntry) || ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		err = flow.ErrNoAccount
	}
	if err != nil {
		return fmt.Errorf("activate %q: %w", a.Login, err)
	}
	return nil
}

// AcceptCharter replaces the charter's consent value of a (ConsentLabel +
// version), keeping the consent attribute's other labels and every other
// attribute (state, choices) as they are: a charter accepted again at a
// password reset.
func (d *Directory) AcceptCharter(ctx context.Context, a flow.Account, version string) error {
	if err := d.checkDN(a.DN); err != nil {
		return fmt.Errorf("accept charter %q: %w", a.Login, err)
	}
	if version == "" {
		return fmt.Errorf("accept charter %q: no version", a.Login)
	}
	at := d.cfg.Attrs
	read := ldap.NewSearchRequest(a.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, d.timeLimit(), false,
		"(objectClass=*)", []string{at.Consent}, nil)
	err := d.do(ctx, true, needActivate, func(c *ldap.Conn) error {
		res, err := c.Search(read)
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return errNoEntry
		}
		m := ldap.NewModifyRequest(a.DN, nil)
		m.Replace(at.Consent, relabel(res.Entries[0].GetEqualFoldAttributeValues(at.Consent), d.cfg.ConsentLabel, d.cfg.ConsentLabel+version))
		return c.Modify(m)
	})
	if errors.Is(err, errNoEntry) || ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		err = flow.ErrNoAccount
	}
	if err != nil {
		return fmt.Errorf("accept charter %q: %w", a.Login, err)
	}
	return nil
}

// activation builds the Modify for entry e (read with objectClass, State,
// StateDate and Consent).
func (d *Directory) activation(e *ldap.Entry, a flow.Account, act flow.Activation) *ldap.ModifyRequest {
	at := d.cfg.Attrs
	m := ldap.NewModifyRequest(e.DN, nil)

	var missing []string
	have := e.GetEqualFoldAttributeValues("objectClass")
	for _, oc := range d.cfg.AuxClasses {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, oc) }) {
			missing = append(missing, oc)
		}
	}
	if len(missing) > 0 {
		m.Add("objectClass", missing)
	}

	day := act.When.Format("20060102") // the day in act.When's location
	m.Replace(at.State, relabel(e.GetEqualFoldAttributeValues(at.State), stateLabel, stateActive))
	m.Replace(at.StateDate, relabel(e.GetEqualFoldAttributeValues(at.StateDate), stateLabel, stateActive+":"+day+":"))
	hidden := "TRUE"
	if act.Public {
		hidden = "FALSE"
	}
	m.Replace(at.ListeRouge, []string{hidden})
	m.Replace(at.Consent, relabel(e.GetEqualFoldAttributeValues(at.Consent), d.cfg.ConsentLabel,
		d.cfg.ConsentLabel+act.CharterVersion))
	var fwd []string
	if act.Redirect != "" {
		fwd = []string{act.Redirect}
		if act.KeepCopy && a.Mail != "" {
			fwd = dedupe(append(fwd, a.Mail))
		}
	}
	m.Replace(at.Forward, fwd)
	return m
}

var errNoEntry = errors.New("entry not found")

// relabel returns vals without those carrying label (case-insensitive),
// then with.
func relabel(vals []string, label, with string) []string {
	var out []string
	for _, v := range vals {
		if len(v) < len(label) || !strings.EqualFold(v[:len(label)], label) {
			out = append(out, v)
		}
	}
	return dedupe(append(out, with))
}

// dedupe drops repeated values (case-insensitive: a directory refuses them
// in one Modify), keeping the first.
func dedupe(vals []string) []string {
	var out []string
	for _, v := range vals {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, v) }) {
			out = append(out, v)
		}
	}
	return out
}
