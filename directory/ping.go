package directory

import (
	"context"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

// Ping tells whether the directory answers: on a connection of its own, it
// connects, binds as the service account and reads the people base. It is
// what /readyz asks; its failures are not counted as LDAP errors (a probe
// every few seconds would swamp the count).
func (d *Directory) Ping(ctx context.Context) error {
	c, err := d.dial(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", d.cfg.URL, err)
	}
	defer c.Close()
	_, err = c.Search(ldap.NewSearchRequest(d.cfg.PeopleBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", d.cfg.URL, d.cfg.PeopleBase, err)
	}
	return nil
}
