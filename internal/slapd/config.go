package slapd

import (
	"fmt"
	"strings"
)

// ServiceACL is the access control the service account needs, in slapd.conf
// syntax, for the default attribute names. The first matching "access to"
// wins, so it goes before a directory's own rules for these attributes.
//
//   - userPassword of people: "=w" (write only), which the Password Modify
//     extended operation requires; everyone else may only bind with it.
//   - the attributes activation replaces, and objectClass (to add supannPerson
//     when missing): write.
//   - creating accounts: add ("=a") on ou=people's children and on the new
//     entry's attributes, so it cannot rewrite names or addresses later.
//   - reading people (search, lookup): read.
const ServiceACL = `access to dn.subtree="ou=people,dc=example,dc=org" attrs=userPassword
	by dn.exact="cn=activated,ou=services,dc=example,dc=org" =w
	by anonymous auth
	by * none
access to attrs=userPassword
	by anonymous auth
	by * none
access to dn.base="ou=people,dc=example,dc=org" attrs=children
	by dn.exact="cn=activated,ou=services,dc=example,dc=org" =rscda
	by * none
access to dn.children="ou=people,dc=example,dc=org" attrs=supannRessourceEtat,supannRessourceEtatDate,supannListeRouge,supannConsentement,mailForwardingAddress,objectClass
	by dn.exact="cn=activated,ou=services,dc=example,dc=org" write
	by self read
	by * none
access to dn.children="ou=people,dc=example,dc=org" attrs=entry,uid,cn,sn,givenName,displayName,mail,supannMailPerso,eduPersonAffiliation,eduPersonPrimaryAffiliation
	by dn.exact="cn=activated,ou=services,dc=example,dc=org" =rscda
	by self read
	by * none
access to *
	by dn.exact="cn=activated,ou=services,dc=example,dc=org" read
	by self read
	by * none
`

// config returns slapd.conf for s.
func config(s *Server, dbDir string, ownSchemas []string, tlsConf string) string {
	var b strings.Builder
	for _, n := range []string{"core", "cosine", "inetorgperson", "nis", "misc"} {
		fmt.Fprintf(&b, "include %s/%s.schema\n", schemaDir, n)
	}
	for _, p := range ownSchemas {
		fmt.Fprintf(&b, "include %q\n", p)
	}
	b.WriteString(tlsConf)
	fmt.Fprintf(&b, `
modulepath %s
moduleload back_mdb.la
moduleload ppolicy.la

database mdb
maxsize 104857600
suffix %q
rootdn %q
rootpw %s
directory %q
index objectClass eq
index uid eq

overlay ppolicy
ppolicy_default %q
ppolicy_hash_cleartext

`, moduleDir, s.BaseDN, s.AdminDN, ssha(s.AdminPassword), dbDir, s.PolicyDN)
	b.WriteString(ServiceACL)
	return b.String()
}
