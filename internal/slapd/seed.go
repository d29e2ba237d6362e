package slapd

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Account is a person seeded under ou=people as inetOrgPerson + eduPerson +
// supannPerson.
type Account struct {
	Login        string
	GivenName    string
	Surname      string
	RecoveryMail string // supannMailPerso
	Affiliation  string // eduPersonPrimaryAffiliation (and eduPersonAffiliation with "member")
	Mail         string // "" = Login@example.org
	// Active accounts get supannRessourceEtat {COMPTE}A:SupannActif and a
	// password; pending ones get {COMPTE}I:SupannCree.
	Active bool
	// Password is stored {SSHA}-hashed when set; an Active account without
	// one gets a random password.
	Password string
}

// State values written by the seed.
const (
	StateActive  = "{COMPTE}A:SupannActif"
	StatePending = "{COMPTE}I:SupannCree"
)

// DemoAccounts returns a pending staff member, a pending student and an
// active faculty member.
func DemoAccounts() []Account {
	return []Account{
		{Login: "hmoreau", GivenName: "Hélène", Surname: "Moreau", RecoveryMail: "helene.moreau@example.net", Affiliation: "staff"},
		{Login: "tlambert", GivenName: "Théo", Surname: "Lambert", RecoveryMail: "theo.lambert@example.net", Affiliation: "student"},
		{Login: "jbrousseau", GivenName: "Jean-Baptiste", Surname: "Rousseau", RecoveryMail: "jb.rousseau@example.net", Affiliation: "faculty", Active: true},
	}
}

// DN returns the entry's DN.
func (a Account) DN() string { return "uid=" + ldap.EscapeDN(a.Login) + "," + PeopleDN }

// MailAddress returns the institutional address written to mail.
func (a Account) MailAddress() string {
	if a.Mail != "" {
		return a.Mail
	}
	return a.Login + "@" + MailDomain
}

// seedLDIF returns the LDIF slapadd loads: the tree, the service account,
// the password policy and the accounts.
func seedLDIF(s *Server, accounts []Account) (string, error) {
	var l ldif
	l.entry(s.BaseDN, "objectClass", "dcObject", "objectClass", "organization", "dc", "example", "o", "Example University")
	for _, ou := range []string{"people", "services", "policies"} {
		l.entry("ou="+ou+","+s.BaseDN, "objectClass", "organizationalUnit", "ou", ou)
	}
	l.entry(s.ServiceDN, "objectClass", "organizationalRole", "objectClass", "simpleSecurityObject",
		"cn", "activated", "description", "activated: account activation service",
		"userPassword", ssha(s.ServicePassword))
	l.entry(s.PolicyDN, "objectClass", "organizationalRole", "objectClass", "pwdPolicy", "cn", "default",
		"pwdAttribute", "userPassword", "pwdMinLength", strconv.Itoa(PolicyMinLength), "pwdCheckQuality", "2",
		"pwdInHistory", strconv.Itoa(PolicyInHistory), "pwdMustChange", "FALSE")
	seen := map[string]bool{}
	for _, a := range accounts {
		if a.Login == "" || a.Surname == "" || a.GivenName == "" {
			return "", fmt.Errorf("slapd: account %q: login, given name and surname are required", a.Login)
		}
		if seen[strings.ToLower(a.Login)] {
			return "", fmt.Errorf("slapd: account %q listed twice", a.Login)
		}
		seen[strings.ToLower(a.Login)] = true
		name := a.GivenName + " " + a.Surname
		kv := []string{"objectClass", "inetOrgPerson", "objectClass", "eduPerson", "objectClass", "supannPerson",
			"uid", a.Login, "cn", name, "sn", a.Surname, "givenName", a.GivenName, "displayName", name,
			"mail", a.MailAddress()}
		if a.RecoveryMail != "" {
			kv = append(kv, "supannMailPerso", a.RecoveryMail)
		}
		if a.Affiliation != "" {
			// slapadd wants an attribute's values on adjacent lines.
			kv = append(kv, "eduPersonAffiliation", a.Affiliation)
			if a.Affiliation != "member" {
				kv = append(kv, "eduPersonAffiliation", "member")
			}
			kv = append(kv, "eduPersonPrimaryAffiliation", a.Affiliation)
		}
		state, pw := StatePending, a.Password
		if a.Active {
			state = StateActive
			if pw == "" {
				pw = randomSecret()
			}
		}
		kv = append(kv, "supannRessourceEtat", state)
		if pw != "" {
			kv = append(kv, "userPassword", ssha(pw))
		}
		l.entry(a.DN(), kv...)
	}
	return l.b.String(), nil
}

// ldif builds LDIF text (RFC 2849).
type ldif struct{ b strings.Builder }

func (l *ldif) entry(dn string, kv ...string) {
	l.line("dn", dn)
	for i := 0; i+1 < len(kv); i += 2 {
		l.line(kv[i], kv[i+1])
	}
	l.b.WriteByte('\n')
}

// line writes "name: value", or "name:: base64" when value is not a
// SAFE-STRING (non-ASCII, control characters, leading space, colon or <,
// trailing space).
func (l *ldif) line(name, v string) {
	safe := v == "" || (v[0] != ' ' && v[0] != ':' && v[0] != '<' && v[len(v)-1] != ' ')
	for i := 0; safe && i < len(v); i++ {
		safe = v[i] != 0 && v[i] != '\n' && v[i] != '\r' && v[i] < 0x80
	}
	if safe {
		fmt.Fprintf(&l.b, "%s: %s\n", name, v)
		return
	}
	fmt.Fprintf(&l.b, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(v)))
}

// ssha hashes pw as slapd's default {SSHA}: base64(SHA1(pw+salt)+salt).
func ssha(pw string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// randomSecret returns 128 random bits in hex.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
