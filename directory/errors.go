package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"activated/flow"
)

// misconfigured wraps err in flow.ErrMisconfigured with what to fix when it
// is a refusal that waiting will not cure; need says which grant the
// request needs (for result 50). Other errors are returned as they are.
func (d *Directory) misconfigured(err error, need string) error {
	if hint := d.fix(err, need); hint != "" {
		return fmt.Errorf("%w: %s: %w", flow.ErrMisconfigured, hint, trimmed{err})
	}
	return err
}

// trimmed drops the line ends some directories put after their text
// (389-ds), so a log or check line stays one line.
type trimmed struct{ error }

func (t trimmed) Error() string { return strings.TrimSpace(t.error.Error()) }
func (t trimmed) Unwrap() error { return t.error }

// fix says what to change for a permanent error, "" when err is not one.
func (d *Directory) fix(err error, need string) string {
	if err == nil {
		return ""
	}
	var le *ldap.Error
	var unknownCA x509.UnknownAuthorityError
	var badName x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &unknownCA):
		return "the directory's certificate is signed by an unknown authority: set ldap ca_file to its CA certificate (PEM)"
	case errors.As(err, &badName):
		return "the directory's certificate does not name the host in the ldap url: use a name the certificate holds (389-ds' default certificate names localhost only)"
	case errors.As(err, &invalid):
		return "the directory's certificate is not valid (expired, or not for a server): renew it"
	case errors.As(err, &record):
		return "the port does not speak TLS: ldaps:// needs the directory's TLS port (636), ldap:// with start_tls its plain port"
	case strings.Contains(err.Error(), "x509: "): // go-ldap's StartTLS keeps only the text
		return "the directory's certificate failed verification: set ldap ca_file to its CA certificate (PEM), and use a host name the certificate holds"
	case !errors.As(err, &le):
		return ""
	}
	who := d.cfg.BindDN
	switch le.ResultCode {
	case ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultStrongAuthRequired:
		return "the directory demands an encrypted connection: use an ldaps:// url, or set start_tls = true"
	case ldap.LDAPResultInsufficientAccessRights:
		return fmt.Sprintf("the service account %s lacks a grant: %s", who, need)
	case ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication:
		return fmt.Sprintf("the service account %s cannot bind: check ldap bind_dn and its password file", who)
	case ldap.LDAPResultUnwillingToPerform:
		return "the directory is unwilling to perform it (a policy or a read-only replica): see the directory's log"
	case ldap.LDAPResultUndefinedAttributeType, ldap.LDAPResultInvalidAttributeSyntax, ldap.LDAPResultObjectClassViolation,
		ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultInappropriateMatching, ldap.LDAPResultAttributeOrValueExists,
		ldap.LDAPResultConstraintViolation, ldap.LDAPResultNamingViolation, ldap.LDAPResultObjectClassModsProhibited:
		return "the directory's schema does not take what is written (load the SUPANN schema; check the attribute names in [ldap.attributes])"
	case ldap.LDAPResultProtocolError, ldap.LDAPResultUnavailableCriticalExtension:
		return "the directory does not support a request the service needs (StartTLS, Password Modify, the password policy control): see activated check"
	}
	return ""
}

// Grants each request needs, for the log when one is missing.
const (
	needRead     = "read and search on the people base (the attributes looked up)"
	needPassword = "write on userPassword below the people base (for the Password Modify extended operation)"
	needActivate = "write on objectClass and the attributes activation replaces (state, state date, liste rouge, consent, forward) below the people base"
	needCreate   = "add on the people base's children and on the new entry's attributes"
)
