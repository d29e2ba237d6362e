package ds389

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"activated/internal/slapd"
)

// ServiceACIs are the grants the service account needs on ou=people, in
// 389's ACI syntax, for the default attribute names (%s: its DN):
// read/search/compare on what is read, write on userPassword (Password
// Modify), write on what activation replaces and objectClass, add for
// staff create.
var ServiceACIs = []string{
	`(targetattr="uid || cn || sn || givenName || displayName || mail || supannMailPerso || eduPersonAffiliation || eduPersonPrimaryAffiliation || supannRessourceEtat || supannRessourceEtatDate || supannConsentement || supannListeRouge || mailForwardingAddress || objectClass")(version 3.0; acl "activated: read people"; allow (read, search, compare) userdn="ldap:///%s";)`,
	`(targetattr="userPassword")(version 3.0; acl "activated: set passwords"; allow (write) userdn="ldap:///%s";)`,
	`(targetattr="supannRessourceEtat || supannRessourceEtatDate || supannListeRouge || supannConsentement || mailForwardingAddress || objectClass")(version 3.0; acl "activated: activate"; allow (write) userdn="ldap:///%s";)`,
	`(version 3.0; acl "activated: create accounts"; allow (add) userdn="ldap:///%s";)`,
}

// seed loads the SUPANN schema, the password policy, the tree, the
// service account with its ACIs, and the accounts.
func (s *Server) seed(opts Options) error {
	c, err := s.admin()
	if err != nil {
		return err
	}
	defer c.Close()

	schema := ldap.NewModifyRequest("cn=schema", nil)
	var types, classes []string
	for _, line := range strings.Split(SUPANNSchema, "\n") {
		if v, ok := strings.CutPrefix(line, "attributeTypes: "); ok {
			types = append(types, v)
		} else if v, ok := strings.CutPrefix(line, "objectClasses: "); ok {
			classes = append(classes, v)
		}
	}
	schema.Add("attributeTypes", types)
	schema.Add("objectClasses", classes)
	if err := c.Modify(schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}

	minLen := opts.MinLength
	if minLen == 0 {
		minLen = slapd.PolicyMinLength
	}
	policy := ldap.NewModifyRequest("cn=config", nil)
	policy.Replace("passwordCheckSyntax", []string{"on"})
	policy.Replace("passwordMinLength", []string{strconv.Itoa(minLen)})
	// activated's own rules judge strength; 389's default of 3 character
	// categories would refuse passphrases (1 is its least).
	policy.Replace("passwordMinCategories", []string{"1"})
	// 389 refuses a password holding any passwordMinTokenLength characters
	// of the entry's names and addresses; at its default of 3, "staple"
	// is refused for sharing "ple" with "example.org". 6 still catches the
	// names.
	policy.Replace("passwordMinTokenLength", []string{"6"})
	policy.Replace("passwordHistory", []string{"on"})
	policy.Replace("passwordInHistory", []string{strconv.Itoa(slapd.PolicyInHistory)})
	if err := c.Modify(policy); err != nil {
		return fmt.Errorf("password policy: %w", err)
	}

	var acis []string
	for _, a := range ServiceACIs {
		acis = append(acis, fmt.Sprintf(a, s.ServiceDN))
	}
	adds := []*ldap.AddRequest{
		add(s.BaseDN, "objectClass", "top", "objectClass", "dcObject", "objectClass", "organization", "dc", "example", "o", "Example University"),
		add("ou=services,"+s.BaseDN, "objectClass", "top", "objectClass", "organizationalUnit", "ou", "services"),
		add(s.ServiceDN, "objectClass", "top", "objectClass", "organizationalRole", "objectClass", "simpleSecurityObject",
			"cn", "activated", "description", "activated: account activation service", "userPassword", s.ServicePassword),
	}
	people := add(s.PeopleDN, "objectClass", "top", "objectClass", "organizationalUnit", "ou", "people")
	people.Attribute("aci", acis)
	adds = append(adds, people)
	for _, a := range opts.Accounts {
		adds = append(adds, account(a))
	}
	for _, r := range adds {
		if err := c.Add(r); err != nil {
			return fmt.Errorf("add %s: %w", r.DN, err)
		}
	}
	return nil
}

// account is a person as internal/slapd seeds it; the Directory Manager
// sets the password (389 hashes it, bypassing the policy).
func account(a slapd.Account) *ldap.AddRequest {
	name := a.GivenName + " " + a.Surname
	kv := []string{"objectClass", "top", "objectClass", "inetOrgPerson", "objectClass", "eduPerson", "objectClass", "supannPerson",
		"uid", a.Login, "cn", name, "sn", a.Surname, "givenName", a.GivenName, "displayName", name, "mail", a.MailAddress()}
	if a.RecoveryMail != "" {
		kv = append(kv, "supannMailPerso", a.RecoveryMail)
	}
	if a.Affiliation != "" {
		kv = append(kv, "eduPersonAffiliation", a.Affiliation, "eduPersonPrimaryAffiliation", a.Affiliation)
		if a.Affiliation != "member" {
			kv = append(kv, "eduPersonAffiliation", "member")
		}
	}
	state, pw := slapd.StatePending, a.Password
	if a.Active {
		state = slapd.StateActive
		if pw == "" {
			pw = secret()
		}
	}
	kv = append(kv, "supannRessourceEtat", state)
	if pw != "" {
		kv = append(kv, "userPassword", pw)
	}
	return add(a.DN(), kv...)
}

func add(dn string, kv ...string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	vals := map[string][]string{}
	var order []string
	for i := 0; i+1 < len(kv); i += 2 {
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

func secret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
