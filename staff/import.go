package staff

import (
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"activated/flow"
	"activated/internal/sanitize"
)

// Limits of one import.
const (
	MaxImportBytes = 16 << 20 // 16 MiB of CSV
	MaxImportLines = 100_000  // records, header excluded
	maxFieldLen    = 256      // names and affiliation
	importWorkers  = 4        // directory and store calls in parallel
)

// CSV columns; login is required.
const (
	colLogin        = "login"
	colRecoveryMail = "recovery_mail"
	colGivenName    = "given_name"
	colSurname      = "surname"
	colAffiliation  = "affiliation"
)

var knownColumns = []string{colLogin, colRecoveryMail, colGivenName, colSurname, colAffiliation}

// line is one CSV record to import.
type line struct {
	result
	account flow.NewAccount
}

var importCommand = command{
	name: "import", args: "[--create] [--dry-run] < FILE.csv",
	summary: "invite the logins of a CSV file read on stdin",
	help: `The first line names the columns: login (required), recovery_mail,
given_name, surname, affiliation (optional, any order). With --create, a
login the directory does not know is created as a pending account before
it is invited, from the line's given_name, surname, recovery_mail (all
three needed) and affiliation (empty, or one eduPerson/SUPANN value:
student, faculty, staff, employee, member, affiliate, alum, library-walk-in,
researcher, retired, emeritus, teacher, registered-reader). Accounts the
directory already has are invited as they are there: the file does not
change them.

Importing the same file again sends nothing to logins whose invitation is
still valid, nor to dossiers in progress, activated or revoked. Each line
gets an outcome with its line number: invited, created, already-invited,
already-active, in-progress, revoked, unknown, no-recovery-address,
invalid-login, invalid-mail, invalid-field, duplicate, malformed, error;
--dry-run asks the directory and checks every line as the real run
would, changes nothing, and says would-invite or would-create instead. Bad
lines are reported and the others still processed; the exit status is 1
when a line failed.

example:
  ssh staff@activate.example.org import --create < rentree.csv
  login,recovery_mail,given_name,surname,affiliation
  jdupont,jean.dupont@example.net,Jean,Dupont,student`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		create := fs.Bool("create", false, "create the logins the directory does not know, as pending accounts")
		dry := fs.Bool("dry-run", false, "check the file and report, change nothing")
		return func(e *env, args []string) error {
			if len(args) > 0 {
				return usagef("import reads the CSV on stdin and takes no argument")
			}
			return e.runImport(*create, *dry)
		}
	},
}

func (e *env) runImport(create, dry bool) error {
	data, err := io.ReadAll(io.LimitReader(e.stdin, MaxImportBytes+1))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(data) > MaxImportBytes {
		return fmt.Errorf("input larger than %d MiB: split the file", MaxImportBytes>>20)
	}
	lines, err := parseCSV(data)
	if err != nil {
		return err
	}
	states, err := e.states()
	if err != nil {
		return err
	}
	todo := make(chan *line)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var outage error
	for range importWorkers {
		wg.Go(func() {
			for l := range todo {
				mu.Lock()
				stop := outage
				mu.Unlock()
				if stop == nil {
					stop = e.ctx.Err()
				}
				if stop != nil {
					l.Outcome, l.Detail = outSkipped, "not tried: "+oneLine(stop)
					continue
				}
				if err := e.importLine(l, states[l.Login], create, dry); errors.Is(err, flow.ErrUnavailable) {
					mu.Lock()
					outage = err
					mu.Unlock()
				}
			}
		})
	}
	for _, l := range lines {
		if l.Outcome == "" {
			todo <- l
		}
	}
	close(todo)
	wg.Wait()
	results := make([]result, len(lines))
	for i, l := range lines {
		results[i] = l.result
	}
	return e.report(results, "line", true)
}

// states returns the state of every dossier, read once.
func (e *env) states() (map[string]flow.State, error) {
	list, err := e.svc.List("", time.Time{})
	if err != nil {
		return nil, fmt.Errorf("list dossiers: %w", err)
	}
	m := make(map[string]flow.State, len(list))
	for _, st := range list {
		m[st.Dossier.Login] = st.State
	}
	return m, nil
}

// importLine invites (and with create, creates) the account of one valid
// line, leaving alone dossiers a person is busy with or staff revoked;
// with dry, it says what it would do, changing nothing.
func (e *env) importLine(l *line, st flow.State, create, dry bool) error {
	switch {
	case st == flow.StateInProgress:
		l.Outcome = outInProgress
	case st == flow.StateRevoked:
		l.Outcome = outRevoked
	case dry:
		return e.checkLine(l, create)
	default:
		return e.inviteLine(l, create)
	}
	l.Detail = e.detail(l.Outcome)
	return nil
}

func (e *env) inviteLine(l *line, create bool) error {
	r, err := e.inviteOne(l.Login, false)
	if err != nil || !create || r.Outcome != string(flow.UnknownLogin) {
		l.result = withLine(r, l.Line)
		return err
	}
	if !l.creatable() {
		l.result = withLine(r, l.Line)
		l.Detail = notCreatable
		return nil
	}
	if _, err := e.svc.Create(e.ctx, l.account, e.who.Client()); err != nil {
		l.Outcome, l.Detail = outError, "create: "+oneLine(err)
		if errors.Is(err, flow.ErrInvalidAddress) {
			l.Outcome, l.Detail = outInvalidMail, "not a valid mail address"
		}
		return err
	}
	r, err = e.inviteOne(l.Login, false)
	if r.Outcome == string(flow.Invited) {
		r.Outcome, r.Detail = outCreated, "pending account created; "+r.Detail
	} else if err == nil {
		r.Detail = "pending account created; " + r.Detail
	}
	l.result = withLine(r, l.Line)
	return err
}

// checkLine is inviteLine's dry run: the same lookups and checks, through
// flow's CheckInvite, which changes nothing.
func (e *env) checkLine(l *line, create bool) error {
	out, err := e.svc.CheckInvite(e.ctx, l.Login)
	switch {
	case err != nil:
		l.Outcome, l.Detail = outError, oneLine(err)
	case out == flow.Invited:
		l.Outcome, l.Detail = outWouldInvite, "would be invited"
	case out == flow.UnknownLogin && create && l.creatable():
		l.Outcome, l.Detail = outWouldCreate, "would be created as a pending account, then invited"
	default:
		l.Outcome, l.Detail = string(out), e.detail(string(out))
		if out == flow.UnknownLogin && create {
			l.Detail = notCreatable
		}
	}
	return err
}

const notCreatable = "not created: given_name, surname and recovery_mail are needed"

// creatable tells whether the line has what Create needs.
func (l *line) creatable() bool {
	a := l.account
	return a.GivenName != "" && a.Surname != "" && a.RecoveryMail != ""
}

func withLine(r result, n int) result { r.Line = n; return r }

// parseCSV reads the header and the records. Lines that cannot be
// imported get their outcome here (malformed, invalid-login, invalid-mail,
// invalid-field, duplicate); the others have none yet. Only a missing or
// bad header, or too many lines, fails the whole import.
func parseCSV(data []byte) ([]*line, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty input: expected a CSV header line (login,recovery_mail,given_name,surname,affiliation)")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cols, err := columns(header)
	if err != nil {
		return nil, err
	}
	var lines []*line
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if len(lines) == MaxImportLines {
			return nil, fmt.Errorf("more than %d lines: split the file", MaxImportLines)
		}
		l := &line{}
		lines = append(lines, l)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			l.Line = pe.StartLine
			if l.Line == 0 {
				l.Line = pe.Line
			}
			l.Outcome, l.Detail = outMalformed, pe.Err.Error()
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read csv: %w", err)
		}
		l.Line, _ = r.FieldPos(0)
		checkRecord(l, rec, cols, len(header))
		if l.Outcome == "" {
			if first, dup := seen[l.Login]; dup {
				l.Outcome, l.Detail = outDuplicate, fmt.Sprintf("same login as line %d", first)
			} else {
				seen[l.Login] = l.Line
			}
		}
	}
	return lines, nil
}

// columns maps the known column names to their index in the header.
func columns(header []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, k := range knownColumns {
			known = known || k == name
		}
		if !known && len(header) == 1 && strings.Contains(name, ";") {
			return nil, fmt.Errorf("header: %q: the columns are separated by semicolons; separate them by commas (a spreadsheet's \"CSV UTF-8 (comma delimited)\")", sanitize.Text(name))
		}
		if !known {
			return nil, fmt.Errorf("header: unknown column %q (known: %s)", sanitize.Text(name), strings.Join(knownColumns, ", "))
		}
		if _, dup := cols[name]; dup {
			return nil, fmt.Errorf("header: column %q twice", name)
		}
		cols[name] = i
	}
	if _, ok := cols[colLogin]; !ok {
		return nil, fmt.Errorf("header: no %q column", colLogin)
	}
	return cols, nil
}

// checkRecord fills l from rec, or sets the outcome saying why it cannot
// be imported.
func checkRecord(l *line, rec []string, cols map[string]int, want int) {
	field := func(name string) string {
		if i, ok := cols[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	l.Login = flow.NormalizeLogin(field(colLogin))
	if len(rec) != want {
		l.Outcome, l.Detail = outMalformed, fmt.Sprintf("%d fields, the header has %d", len(rec), want)
		return
	}
	if !flow.ValidLogin(l.Login) {
		l.Outcome, l.Detail = string(flow.InvalidLoginOut), "not a valid login"
		return
	}
	l.account = flow.NewAccount{Login: l.Login, GivenName: field(colGivenName), Surname: field(colSurname),
		RecoveryMail: field(colRecoveryMail), Affiliation: field(colAffiliation)}
	if m := l.account.RecoveryMail; m != "" {
		if _, ok := flow.ValidMail(m); !ok {
			l.Outcome, l.Detail = outInvalidMail, "not a valid mail address"
			return
		}
	}
	for _, f := range []struct{ name, v string }{
		{colGivenName, l.account.GivenName}, {colSurname, l.account.Surname}, {colAffiliation, l.account.Affiliation},
	} {
		if !utf8.ValidString(f.v) {
			l.Outcome, l.Detail = outInvalidData, f.name+": not UTF-8 text (save the file as \"CSV UTF-8\")"
			return
		}
		if len(f.v) > maxFieldLen || sanitize.Text(f.v) != f.v {
			l.Outcome, l.Detail = outInvalidData, f.name+": too long, or control characters"
			return
		}
	}
	aff, err := flow.CheckAffiliation(l.account.Affiliation)
	if err != nil {
		l.Outcome, l.Detail = outInvalidData, fmt.Sprintf("affiliation: %q is not an eduPerson/SUPANN value (%s)",
			l.account.Affiliation, strings.Join(flow.Affiliations(), ", "))
		return
	}
	l.account.Affiliation = aff
}
