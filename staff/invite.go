package staff

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"activated/flow"
)

// result is the outcome of one login (or one import line).
type result struct {
	Line    int    `json:"line,omitempty"`
	Login   string `json:"login"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Outcomes that are not flow.InviteOutcome values.
const (
	outCreated     = "created"      // created in the directory, then invited
	outRevoked     = "revoked"      // import leaves a revoked dossier alone
	outInProgress  = "in-progress"  // import leaves an open dossier alone
	outWouldInvite = "would-invite" // --dry-run
	outWouldCreate = "would-create" // --dry-run --create
	outMalformed   = "malformed"
	outInvalidMail = "invalid-mail"
	outInvalidData = "invalid-field"
	outDuplicate   = "duplicate"
	outError       = "error"
	outSkipped     = "skipped" // not tried: an earlier line hit an outage
)

// failed tells whether an outcome counts as a failure for the exit status.
func failed(outcome string) bool {
	switch outcome {
	case string(flow.UnknownLogin), string(flow.NoRecoveryMail), string(flow.InvalidLoginOut),
		outMalformed, outInvalidMail, outInvalidData, outDuplicate, outError, outSkipped:
		return true
	}
	return false
}

// detail explains an outcome to a person.
func (e *env) detail(outcome string) string {
	switch outcome {
	case string(flow.Invited), outCreated:
		d := flow.NextDayDeadline(e.svc.Now(), e.svc.Config().Location)
		return "invitation queued, code valid until " + e.when(d)
	case string(flow.AlreadyInvited):
		return "a live invitation exists: nothing sent"
	case string(flow.AlreadyActive):
		return "the account is already active: nothing sent"
	case string(flow.UnknownLogin):
		return "no such account in the directory"
	case string(flow.NoRecoveryMail):
		return "the account has no recovery address"
	case string(flow.InvalidLoginOut):
		return "not a valid login"
	case outRevoked:
		return "revoked by staff: use invite to send a new code"
	case outInProgress:
		return "the user is going through the procedure: use resend for a new code"
	}
	return ""
}

// inviteOne invites login; the error is set only when flow failed (the
// result then says "error").
func (e *env) inviteOne(login string, renew bool) (result, error) {
	r := result{Login: flow.NormalizeLogin(login)}
	out, err := e.svc.Invite(e.ctx, login, renew, e.who.Client())
	if err != nil {
		r.Outcome, r.Detail = outError, oneLine(err)
		return r, err
	}
	r.Outcome, r.Detail = string(out), e.sentDetail(r.Login, string(out))
	return r, nil
}

// sentDetail is detail, saying for a new invitation the addresses it went
// to: the directory's, which the technician on the phone reads back.
func (e *env) sentDetail(login, outcome string) string {
	d := e.detail(outcome)
	if outcome != string(flow.Invited) {
		return d
	}
	if st, err := e.svc.Status(login); err == nil && len(st.Dossier.RecoveryMails) > 0 {
		d = strings.Replace(d, "invitation queued", "invitation queued to "+strings.Join(st.Dossier.RecoveryMails, ", "), 1)
	}
	return d
}

// report is a batch's outcomes, as --json prints them.
type report struct {
	Results []result       `json:"results"`
	Counts  map[string]int `json:"counts"`
	Error   string         `json:"error,omitempty"` // some failed: the summary
}

// report prints results and returns a partialError when some failed; what
// is the singular of what a result is about ("login", "line").
func (e *env) report(results []result, what string, withLine bool) error {
	var c counts
	var bad counts
	for _, r := range results {
		c.add(r.Outcome)
		if failed(r.Outcome) {
			bad.add(r.Outcome)
		}
	}
	var failure error
	if n := sum(bad.n); n > 0 {
		failure = partialError{fmt.Sprintf("%d of %s failed: %s", n, plural(len(results), what), bad.String())}
	}
	if e.json {
		r := report{Results: results, Counts: nonNil(c.n)}
		if failure != nil {
			r.Error = failure.Error()
		}
		if err := writeJSON(e.stdout, r); err != nil {
			return err
		}
	} else {
		var t *table
		if withLine {
			t = newTable(e.stdout, "LINE", "LOGIN", "OUTCOME", "DETAIL")
		} else {
			t = newTable(e.stdout, "LOGIN", "OUTCOME", "DETAIL")
		}
		for _, r := range results {
			if withLine {
				t.row(fmt.Sprint(r.Line), r.Login, r.Outcome, r.Detail)
			} else {
				t.row(r.Login, r.Outcome, r.Detail)
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
		summary := c.String()
		switch {
		case len(results) == 0 && withLine:
			summary = "nothing to import (only the header)"
		case len(results) == 0:
			summary = "nothing to do"
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", plural(len(results), what), summary)
	}
	return failure
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

var inviteCommand = command{
	name: "invite", args: "LOGIN...",
	summary: "look each login up in the directory and mail it an invitation",
	help: `An invitation carries a new code valid until 23:59 the next day; a code
sent before for the same login stops working. Outcome per login: invited,
already-active, unknown, no-recovery-address, invalid-login.

example:
  ssh staff@activate.example.org invite jdupont mmartin
  ssh staff@activate.example.org invite jdupont --json`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			if len(args) == 0 {
				return usagef("no login given")
			}
			var results []result
			var stop error
			seen := map[string]bool{}
			for _, login := range args {
				if seen[flow.NormalizeLogin(login)] {
					continue // a second invitation would replace the first
				}
				seen[flow.NormalizeLogin(login)] = true
				if stop == nil {
					stop = e.ctx.Err()
				}
				if stop != nil {
					results = append(results, result{Login: flow.NormalizeLogin(login), Outcome: outSkipped, Detail: oneLine(stop)})
					continue
				}
				r, err := e.inviteOne(login, true)
				if errors.Is(err, flow.ErrUnavailable) {
					stop = err
				}
				results = append(results, r)
			}
			return e.report(results, "login", false)
		}
	},
}

var resendCommand = command{
	name: "resend", args: "LOGIN",
	summary: "mail a new invitation code for an existing dossier",
	help: `The new code replaces every earlier invitation code of the login.

example:
  ssh staff@activate.example.org resend jdupont`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			login, err := oneLogin(args)
			if err != nil {
				return err
			}
			out, err := e.svc.Resend(e.ctx, login, e.who.Client())
			if errors.Is(err, flow.ErrNotFound) {
				return fmt.Errorf("no dossier for %s (use: invite %s)", login, login)
			} else if err != nil {
				return fmt.Errorf("resend %s: %w", login, err)
			}
			r := result{Login: login, Outcome: string(out)}
			r.Detail = e.sentDetail(r.Login, r.Outcome)
			return e.report([]result{r}, "login", false)
		}
	},
}

var revokeCommand = command{
	name: "revoke", args: "LOGIN",
	summary: "end every code of a dossier and close any session open on it",
	help: `The user cannot go on with an old code; invite the login again to
restart. An activated account cannot be revoked here.

example:
  ssh staff@activate.example.org revoke jdupont`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			login, err := oneLogin(args)
			if err != nil {
				return err
			}
			busy := e.svc.Busy(login) // before: the revoke ends that session
			switch err := e.svc.Revoke(login, e.who.Client()); {
			case errors.Is(err, flow.ErrNotFound):
				return fmt.Errorf("no dossier for %s", login)
			case errors.Is(err, flow.ErrAlreadyActivated):
				return fmt.Errorf("%s is already activated", login)
			case err != nil:
				return fmt.Errorf("revoke %s: %w", login, err)
			}
			r := result{Login: login, Outcome: outRevoked, Detail: "codes ended; no session was open"}
			if busy {
				r.Detail = "codes ended, open session closed"
			}
			return e.report([]result{r}, "login", false)
		}
	},
}

// oneLogin checks that args is one valid login and returns it normalized.
func oneLogin(args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("expected one login, got %d arguments", len(args))
	}
	login := flow.NormalizeLogin(args[0])
	if !flow.ValidLogin(login) {
		return "", fmt.Errorf("%q is not a valid login", login)
	}
	return login, nil
}
