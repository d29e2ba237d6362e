package staff

import (
	"flag"
	"fmt"

	"activated/flow"
	"activated/internal/sanitize"
)

var charterCommand = command{
	name: "charter", args: "status | remind [--dry-run]",
	summary: "charter campaigns: who accepted the current charter; mail the others",
	help: `status counts the accounts activated here (their dossiers) that accepted
the current charter version, and lists the others. remind mails each of
them a code, valid until 23:59 the next day, that leads to the charter
alone (no password asked, nothing else changed); it goes through the
outbox and counts in the per-login mail limit (a login over it says
mail-limit: run remind again later). --dry-run asks the directory and
says would-remind, sending nothing.

example:
  ssh staff@activate.example.org charter status
  ssh staff@activate.example.org charter remind --dry-run`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		dryRun := fs.Bool("dry-run", false, "say who would get a code; send nothing")
		return func(e *env, args []string) error {
			if len(args) != 1 || (args[0] != "status" && args[0] != "remind") {
				return usagef("want status or remind")
			}
			if args[0] == "status" {
				if *dryRun {
					return usagef("--dry-run is for remind")
				}
				st, err := e.svc.CharterStatus()
				if err != nil {
					return fmt.Errorf("charter status: %w", err)
				}
				if e.json {
					return writeJSON(e.stdout, st)
				}
				t := newTable(e.stdout)
				t.row("Charter", st.Version)
				t.row("Active", fmt.Sprint(st.Active))
				t.row("Accepted it", fmt.Sprint(st.Current))
				t.row("Not yet", fmt.Sprint(len(st.Outdated)))
				if err := t.flush(); err != nil {
					return err
				}
				if len(st.Outdated) > 0 {
					fmt.Fprintln(e.stdout, "\nNot accepted yet:")
				}
				for _, l := range st.Outdated {
					fmt.Fprintln(e.stdout, sanitize.Text(l))
				}
				return nil
			}
			list, err := e.svc.CharterRemind(e.ctx, *dryRun, e.who.Client())
			results := make([]result, len(list))
			for i, r := range list {
				results[i] = result{Login: r.Login, Outcome: string(r.Outcome), Detail: remindDetail(r.Outcome)}
			}
			if err != nil {
				results = append(results, result{Outcome: outError, Detail: oneLine(err)})
			}
			return e.report(results, "login", false)
		}
	},
}

func remindDetail(o flow.RemindOutcome) string {
	switch o {
	case flow.Reminded:
		return "code for the charter queued, valid until 23:59 tomorrow"
	case flow.WouldRemind:
		return "would mail a code for the charter"
	case flow.RemindLimited:
		return "mail limit of this login reached: run remind again later"
	case flow.RemindNoMail:
		return "the account has no recovery address"
	case flow.RemindGone:
		return "no longer active in the directory"
	}
	return ""
}
