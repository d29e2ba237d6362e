package staff

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"activated/flow"
)

// outResetMailed is the outcome of reset: a reset code was queued.
const outResetMailed = "reset-mailed"

var resetCommand = command{
	name: "reset", args: "LOGIN",
	summary: "mail a code to set a new password (active account, helpdesk case)",
	help: `The code goes to the account's recovery addresses and is valid until
23:59 today; it leads to the charter when it changed since the last
acceptance, then to a new password. It counts in the same per-login
mail limit as the codes users ask for themselves. An account not active
yet needs an invitation instead.

example:
  ssh staff@activate.example.org reset jdupont
  ssh staff@activate.example.org reset jdupont --json`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			login, err := oneLogin(args)
			if err != nil {
				return err
			}
			to, err := e.svc.Reset(e.ctx, login, e.who.Client())
			switch {
			case errors.Is(err, flow.ErrNoAccount):
				return fmt.Errorf("reset %s: no such account in the directory", login)
			case errors.Is(err, flow.ErrNotActive):
				return fmt.Errorf("reset %s: the account is not active yet (use: invite %s)", login, login)
			case err != nil:
				return fmt.Errorf("reset %s: %w", login, err)
			}
			d := flow.SameDayDeadline(e.svc.Now(), e.svc.Config().Location)
			r := result{Login: flow.NormalizeLogin(login), Outcome: outResetMailed,
				Detail: "reset code queued to " + strings.Join(to, ", ") + ", valid until " + e.when(d)}
			return e.report([]result{r}, "login", false)
		}
	},
}
