package staff

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"activated/flow"
	"activated/internal/sanitize"
)

var statusCommand = command{
	name: "status", args: "LOGIN",
	summary: "show a dossier: step, choices, deadline, mails and audit trail",
	help: `example:
  ssh staff@activate.example.org status jdupont`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			login, err := oneLogin(args)
			if err != nil {
				return err
			}
			st, err := e.svc.Status(login)
			if errors.Is(err, flow.ErrNotFound) {
				return fmt.Errorf("no dossier for %s", login)
			}
			if err != nil {
				return fmt.Errorf("status %s: %w", login, err)
			}
			st = blankCodes(st)
			if e.json {
				return writeJSON(e.stdout, statusJSON{Status: st, StepName: st.Step.String()})
			}
			return WriteStatus(e.stdout, st, e.svc.Config().Location)
		}
	},
}

// statusJSON adds the step's name to flow.Status.
type statusJSON struct {
	flow.Status
	StepName string `json:"step_name"`
}

// blankCodes makes sure no code leaves, whatever flow did.
func blankCodes(st flow.Status) flow.Status {
	st.Mails = slices.Clone(st.Mails)
	for i := range st.Mails {
		st.Mails[i].Code = ""
	}
	return st
}

// WriteStatus writes a dossier for a person: its fields, then its mails and
// its audit trail as tables. Every value is sanitized; no code is printed.
func WriteStatus(w io.Writer, st flow.Status, loc *time.Location) error {
	if err := WriteSummary(w, st, loc); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMails (%d)\n", len(st.Mails))
	if err := WriteMails(w, st.Mails, loc); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nAudit trail (%d)\n", len(st.Events))
	return writeEvents(w, st.Events, loc, false)
}

// WriteSummary writes the dossier's fields that are set, one per line.
func WriteSummary(w io.Writer, st flow.Status, loc *time.Location) error {
	d := st.Dossier
	when := func(t time.Time) string { return When(t, loc) }
	state := string(st.State)
	if st.Busy {
		state += " (a session is open on it now)"
	}
	charter := ""
	if !d.CharterAcceptedAt.IsZero() {
		charter = "accepted " + when(d.CharterAcceptedAt) + " (" + d.CharterVersion + ")"
	}
	directory := ""
	if d.DirectoryChosen {
		directory = map[bool]string{true: "listed", false: "not listed"}[d.PublicDirectory]
	}
	mailbox := ""
	if d.MailboxChosen {
		mailbox = "no redirect"
		if d.Redirect != "" {
			mailbox = "redirect to " + d.Redirect + ", copy kept: " + yesNo(d.KeepCopy)
			if d.NeedsRedirectVerification() {
				mailbox += ", verified: " + yesNo(d.RedirectVerified)
			}
		}
	}
	reset := ""
	switch {
	case d.Resetting():
		reset = "under way since " + when(d.ResetOpened)
		if d.ResetCharter {
			reset += ", charter asked again"
		}
	case !d.PasswordReset.IsZero():
		reset = "new password set " + when(d.PasswordReset)
	}
	deadline := when(d.Deadline)
	if st.State == flow.StateRevoked {
		deadline = "none: codes revoked" // the revoke ended them before their deadline
	}
	t := newTable(w)
	for _, kv := range [][2]string{
		{"Login", d.Login}, {"Name", Name(d)}, {"State", state}, {"Step", StepText(st.Step)},
		{"Deadline", deadline}, {"Recovery", strings.Join(d.RecoveryMails, ", ")},
		{"Mail", d.Mail}, {"Affiliation", strings.Join(d.Affiliations, ", ")},
		{"Charter", charter}, {"Directory", directory}, {"Mailbox", mailbox},
		{"Password", when(d.PasswordSet)}, {"Activated", when(d.Activated)}, {"Reset", reset}, {"Revoked", when(d.Revoked)},
		{"Created", when(d.Created)}, {"Updated", when(d.Updated)},
	} {
		if kv[1] != "" {
			t.row(kv[0], kv[1])
		}
	}
	return t.flush()
}

// WriteMails writes a dossier's mails with their delivery state, and for
// one the relay refused, when it is tried again (never their codes).
func WriteMails(w io.Writer, mails []flow.Mail, loc *time.Location) error {
	t := newTable(w, "ID", "KIND", "TO", "STATE", "TRIES", "CREATED", "SENT", "ERROR")
	for _, m := range mails {
		sent := When(m.Sent, loc)
		if m.State == flow.MailQueued && m.Attempts > 0 && !m.NextAttempt.IsZero() {
			sent = "next try " + When(m.NextAttempt, loc) // the relay refused it: when it is tried again
		}
		t.row(fmt.Sprint(m.ID), string(m.Kind), m.To, string(m.State), fmt.Sprint(m.Attempts), When(m.Created, loc), sent, m.LastError)
	}
	return t.flush()
}

// WriteTrail writes a dossier's audit trail.
func WriteTrail(w io.Writer, events []flow.Event, loc *time.Location) error {
	return writeEvents(w, events, loc, false)
}

func writeEvents(w io.Writer, events []flow.Event, loc *time.Location, withLogin bool) error {
	var t *table
	if withLogin {
		t = newTable(w, auditHeader...)
	} else {
		t = newTable(w, "TIME", "ACTION", "DETAIL", "ACTOR", "REMOTE")
	}
	for _, ev := range events {
		if withLogin {
			t.row(auditRow(ev, loc)...)
		} else {
			t.row(When(ev.Time, loc), ev.Action, ev.Detail, ShortActor(ev.Actor), ev.Remote)
		}
	}
	return t.flush()
}

// The columns of the audit log.
var auditHeader = []string{"SEQ", "TIME", "LOGIN", "ACTION", "DETAIL", "ACTOR", "REMOTE"}

func auditRow(ev flow.Event, loc *time.Location) []string {
	return []string{fmt.Sprint(ev.Seq), When(ev.Time, loc), ev.Login, ev.Action, ev.Detail, ShortActor(ev.Actor), ev.Remote}
}

// fingerprintRE is a key's SHA256 fingerprint in an actor; its first
// shortFingerprint characters tell keys apart in a table (--json and the
// store keep it whole).
var fingerprintRE = regexp.MustCompile(`SHA256:[A-Za-z0-9+/]{` + strconv.Itoa(shortFingerprint+1) + `,}`)

const shortFingerprint = 10

// ShortActor is an audit actor with its key fingerprint cut short.
func ShortActor(actor string) string {
	return fingerprintRE.ReplaceAllStringFunc(actor, func(fp string) string { return fp[:len("SHA256:")+shortFingerprint] })
}

// States are the states --state accepts, in the order staff see them.
var States = []flow.State{flow.StatePending, flow.StateInProgress, flow.StateActivated, flow.StateExpired, flow.StateRevoked}

func parseState(s string) (flow.State, error) {
	if s == "" {
		return "", nil
	}
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(States))
	for i, st := range States {
		names[i] = string(st)
	}
	return "", usagef("--state: %q is not one of %s", s, strings.Join(names, ", "))
}

// ParseSince reads a --since value: YYYY-MM-DD (start of that day in loc),
// YYYY-MM-DDTHH:MM[:SS] (a time in loc: "since 14:30 today") or an RFC
// 3339 time.
func ParseSince(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since: %q is none of YYYY-MM-DD, YYYY-MM-DDTHH:MM (institution time) or RFC 3339", s)
}

// listItem is one dossier in list --json.
type listItem struct {
	Login    string     `json:"login"`
	Name     string     `json:"name"`
	State    flow.State `json:"state"`
	Step     flow.Step  `json:"step"`
	StepName string     `json:"step_name"`
	Busy     bool       `json:"busy"`
	// Resetting: a password reset of this active account is under way.
	Resetting bool      `json:"resetting,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

var listCommand = command{
	name: "list", args: "[--state STATE] [--since DATE]",
	summary: "list the dossiers, by login",
	help: `STATE is pending, in-progress, activated, expired or revoked. DATE is
YYYY-MM-DD or YYYY-MM-DDTHH:MM (institution time), or RFC 3339; only
dossiers changed since then are listed.

example:
  ssh staff@activate.example.org list --state in-progress
  ssh staff@activate.example.org list --since 2026-09-01 --json`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		state := fs.String("state", "", "only dossiers in this `STATE`")
		since := fs.String("since", "", "only dossiers changed since `DATE`")
		return func(e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			st, err := parseState(*state)
			if err != nil {
				return err
			}
			t, err := ParseSince(*since, e.svc.Config().Location)
			if err != nil {
				return err
			}
			list, err := e.svc.List(st, t)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			if e.json {
				items := make([]listItem, len(list))
				for i, s := range list {
					d := s.Dossier
					items[i] = listItem{Login: d.Login, Name: Name(d), State: s.State, Step: s.Step, StepName: s.Step.String(),
						Busy: s.Busy, Resetting: d.Resetting(), Deadline: d.Deadline, Created: d.Created, Updated: d.Updated}
				}
				return writeJSON(e.stdout, struct {
					Count    int        `json:"count"`
					Dossiers []listItem `json:"dossiers"`
				}{len(items), items})
			}
			t2 := newTable(e.stdout, "LOGIN", "NAME", "STATE", "STEP", "DEADLINE", "UPDATED")
			for _, s := range list {
				state := string(s.State)
				if s.Dossier.Resetting() {
					state += " (reset)"
				}
				if s.Busy {
					state += "*"
				}
				deadline := e.when(s.Dossier.Deadline)
				if s.State == flow.StateRevoked {
					deadline = "-" // its codes ended with the revoke
				}
				t2.row(s.Dossier.Login, Name(s.Dossier), state, StepText(s.Step), deadline, e.when(s.Dossier.Updated))
			}
			if err := t2.flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s (* = a session is open on it now)\n", plural(len(list), "dossier"))
			return nil
		}
	},
}

var auditCommand = command{
	name: "audit", args: "[--since DATE] [--login LOGIN] [--follow]",
	summary: "show the audit log, oldest first",
	help: `With --follow, new events are printed as they happen until the
connection ends; with --json each event is then one JSON line.

example:
  ssh staff@activate.example.org audit --login jdupont
  ssh staff@activate.example.org audit --since 2026-11-24 --follow`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		since := fs.String("since", "", "only events since `DATE` (YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339)")
		login := fs.String("login", "", "only events about `LOGIN`")
		follow := fs.Bool("follow", false, "keep printing new events until the connection ends")
		return func(e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			t, err := ParseSince(*since, e.svc.Config().Location)
			if err != nil {
				return err
			}
			l := flow.NormalizeLogin(*login)
			if l != "" && !flow.ValidLogin(l) {
				return usagef("--login: %q is not a valid login", l)
			}
			if *follow {
				return e.follow(l, t)
			}
			var events []flow.Event
			if err := e.svc.Events(0, l, t, func(ev flow.Event) error { events = append(events, ev); return nil }); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			if e.json {
				return writeJSON(e.stdout, struct {
					Events []flow.Event `json:"events"`
				}{nonNilEvents(events)})
			}
			return writeEvents(e.stdout, events, e.svc.Config().Location, true)
		}
	},
}

func nonNilEvents(ev []flow.Event) []flow.Event {
	if ev == nil {
		return []flow.Event{}
	}
	return ev
}

// followPoll is how often follow looks for events no dossier change
// announced (flow signals changes of dossiers, not every audit line).
var followPoll = 2 * time.Second

// follow prints the events after since, then every new one until the
// context ends (the connection closes): a dossier change wakes it at once,
// a slow poll catches the rest.
func (e *env) follow(login string, since time.Time) error {
	changes, stop := e.svc.Subscribe()
	defer stop()
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	var last uint64
	loc := e.svc.Config().Location
	for first := true; ; first = false {
		var batch []flow.Event
		err := e.svc.Events(last, login, since, func(ev flow.Event) error { batch = append(batch, ev); return nil })
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if len(batch) > 0 {
			last = batch[len(batch)-1].Seq
		}
		if e.json {
			for _, ev := range batch {
				if err := writeJSONLine(e.stdout, ev); err != nil {
					return err
				}
			}
		} else {
			if first {
				fixedRow(e.stdout, followWidths, auditHeader)
			}
			for _, ev := range batch {
				fixedRow(e.stdout, followWidths, auditRow(ev, loc))
			}
		}
		select {
		case <-e.ctx.Done():
			// The connection closed or the server stops: the end of the
			// stream. Any other cause (the key withdrawn) is a failure.
			if cause := context.Cause(e.ctx); !errors.Is(cause, context.Canceled) {
				return cause
			}
			return nil
		case <-changes:
		case <-tick.C:
		}
	}
}

// followWidths are the columns of audit --follow, fixed so that rows
// printed as events come line up with the header printed first; a longer
// cell is cut (the last column never is).
var followWidths = []int{6, 16, 20, 15, 36, 40}

// fixedRow writes cells sanitized, each padded or cut to its width.
func fixedRow(w io.Writer, widths []int, cells []string) {
	var b strings.Builder
	for i, c := range cells {
		c = sanitize.Text(c)
		if c == "" {
			c = "-"
		}
		if i < len(widths) {
			c = ansi.Truncate(c, widths[i], "…")
			c += strings.Repeat(" ", widths[i]-ansi.StringWidth(c)+2)
		}
		b.WriteString(c)
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
}

var statsCommand = command{
	name: "stats", args: "",
	summary: "count dossiers per state and step, mails per state, activations per day",
	help: `example:
  ssh staff@activate.example.org stats --json`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			st, err := e.svc.Stats()
			if err != nil {
				return fmt.Errorf("stats: %w", err)
			}
			if st.PerDay == nil {
				st.PerDay = []flow.DayCount{}
			}
			for _, s := range States { // a script reads 0, not a missing key
				st.States[s] += 0
			}
			for s := flow.StepLogin; s < flow.StepDone; s++ {
				st.Steps[s.String()] += 0
			}
			if e.json {
				return writeJSON(e.stdout, st)
			}
			return writeStats(e.stdout, st)
		}
	},
}

func writeStats(w io.Writer, st flow.Stats) error {
	t := newTable(w, "STATE", "DOSSIERS")
	total := 0
	for _, s := range States {
		t.row(string(s), fmt.Sprint(st.States[s]))
		total += st.States[s]
	}
	t.row("total", fmt.Sprint(total))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nPending and in-progress dossiers per step")
	t = newTable(w, "STEP", "DOSSIERS")
	for s := flow.StepLogin; s < flow.StepDone; s++ {
		if n := st.Steps[s.String()]; n > 0 {
			t.row(StepText(s), fmt.Sprint(n))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMails: %d queued, %d sent, %d failed\n", st.MailsQueued, st.MailsSent, st.MailsFailed)
	fmt.Fprintln(w, "\nActivations per day")
	t = newTable(w, "DAY", "ACTIVATIONS")
	for _, d := range st.PerDay {
		t.row(d.Day, fmt.Sprint(d.Count))
	}
	return t.flush()
}
