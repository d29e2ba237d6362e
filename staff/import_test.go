package staff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"activated/flow"
	"activated/internal/slapd"
	"activated/staff"
)

func TestImportReportsEveryLine(t *testing.T) {
	w := newWorld(t, pending, pending2, active, noRecover)
	csv := strings.Join([]string{
		"login,recovery_mail,given_name,surname,affiliation", // 1
		"amartin,,,,",                           // 2 invited
		"ghost,,,,",                             // 3 unknown: nothing to create it from
		"*)(uid=*,x@example.net,Eve,Il,student", // 4 invalid-login
		"bad,line",                              // 5 malformed: 2 fields
		"newbie,newbie@example.net,Nora,Bie,student", // 6 created
		"AMartin,,,,",                              // 7 duplicate of 2
		`x"y,a@example.net,,,`,                     // 8 malformed: bare quote
		"mail,not-an-address,Mo,Ail,student",       // 9 invalid-mail
		"cactive,,,,",                              // 10 already-active
		"ctrl,c@example.net,\x1b[31mRed,X,student", // 11 invalid-field
		`quoted,q@example.net,"Multi`,              // 12 invalid-field (a newline in given_name)
		`Line",Name,student`,                       // 13 (same record)
		"",                                         // 14 blank: skipped by CSV
		"dnomail,,,,",                              // 15 no-recovery-address
		" BDurand ,,,,",                            // 16 invited
	}, "\n") + "\n"
	var r report
	w.runJSON(&r, staff.ExitFailed, csv, "import", "--create")
	want := []string{"2 amartin invited", "3 ghost unknown", "4 *)(uid=* invalid-login", "5 bad malformed",
		"6 newbie created", "7 amartin duplicate", "8  malformed", "9 mail invalid-mail", "10 cactive already-active",
		"11 ctrl invalid-field", "12 quoted invalid-field", "15 dnomail no-recovery-address", "16 bdurand invited"}
	var got []string
	for _, x := range r.Results {
		got = append(got, fmt.Sprintf("%d %s %s", x.Line, x.Login, x.Outcome))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outcomes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := r.Results[1].Detail; !strings.Contains(d, "not created") {
		t.Errorf("ghost detail %q: want why it was not created", d)
	}
	q := w.queued()
	if len(q) != 3 || len(q["amartin"]) != 1 || len(q["newbie"]) != 1 || len(q["bdurand"]) != 1 {
		t.Errorf("outbox: %v", q)
	}
	st, err := w.svc.Status("newbie")
	if err != nil || st.Dossier.GivenName != "Nora" || st.Dossier.RecoveryMails[0] != "newbie@example.net" || st.Dossier.DN == "" {
		t.Errorf("created account: %+v %v", st.Dossier, err)
	}
	for _, login := range []string{"ghost", "mail", "ctrl", "quoted"} {
		if out, _ := w.svc.Invite(context.Background(), login, false, flow.Client{}); out != flow.UnknownLogin {
			t.Errorf("%s: %s, want it never created", login, out)
		}
	}

	// The table says the same, one line per record with its number.
	code, out, errs := w.run(csv, "import")
	if code != staff.ExitFailed || !strings.Contains(errs, "lines failed") || strings.Count(errs, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	harmless(t, "import table", out)
	for _, l := range []string{"2 amartin already-invited", "4 *)(uid=* invalid-login", "6 newbie already-invited",
		"7 amartin duplicate same login as line 2", "8 - malformed"} {
		if !hasRow(out, l) {
			t.Errorf("table lacks %q:\n%s", l, out)
		}
	}
}

func TestImportBadInput(t *testing.T) {
	w := newStoreWorld(t)
	huge := io.MultiReader(strings.NewReader("login\n"), io.LimitReader(repeat('a'), staff.MaxImportBytes))
	var out, errb bytes.Buffer
	if code := staff.Run(context.Background(), w.svc, who, []string{"import"}, huge, &out, &errb); code != staff.ExitFailed || !strings.Contains(errb.String(), "larger than") {
		t.Errorf("huge input: exit %d, stderr %q", code, errb.String())
	}
	for in, want := range map[string]string{
		"":                       "empty input",
		"recovery_mail\nx@y.org": `no "login" column`,
		"login,email\na,b":       `unknown column "email"`,
		"login,login\na,b":       "twice",
		"login\n" + strings.Repeat("a\n", staff.MaxImportLines+1): "more than",
	} {
		code, out, errs := w.run(in, "import")
		if code != staff.ExitFailed || out != "" || !strings.Contains(errs, want) {
			t.Errorf("input %.30q: exit %d, stdout %q, stderr %q (want %q)", in, code, out, errs, want)
		}
	}
}

// hasRow tells whether a line of the table starts with these words.
func hasRow(table, words string) bool {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(strings.Join(strings.Fields(l), " "), words) {
			return true
		}
	}
	return false
}

type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestImportDryRun(t *testing.T) {
	w := newWorld(t, pending, pending2)
	w.run("", "invite", "bdurand")
	before := len(w.queued()["bdurand"])
	var r report
	w.runJSON(&r, 0, "login,recovery_mail,given_name,surname\namartin,,,\nbdurand,,,\nnewbie,n@example.net,N,B\n", "import", "--dry-run", "--create")
	want := map[string]string{"amartin": "would-invite", "bdurand": "already-invited", "newbie": "would-create"}
	if fmt.Sprint(r.outcomes()) != fmt.Sprint(want) {
		t.Errorf("dry run: %v, want %v", r.outcomes(), want)
	}
	if q := w.queued(); len(q) != 1 || len(q["bdurand"]) != before {
		t.Errorf("dry run sent mail: %v", q)
	}
	if _, err := w.svc.Status("amartin"); err == nil {
		t.Error("dry run created a dossier")
	}
}

// csv1000 is a CSV of n accounts to create.
func csv1000(n int) string {
	var b strings.Builder
	b.WriteString("login,recovery_mail,given_name,surname,affiliation\n")
	for i := range n {
		fmt.Fprintf(&b, "user%04d,user%04d@example.net,Given%d,Surname%d,student\n", i, i, i, i)
	}
	return b.String()
}

// A 1,000-line import creates and invites every account; importing the
// file again sends nothing, and leaves open and revoked dossiers alone.
func TestImport1000Idempotent(t *testing.T) {
	const n = 1000
	var seeded []slapd.Account // ten of them already in the directory
	for i := 0; i < n; i += 100 {
		seeded = append(seeded, slapd.Account{Login: fmt.Sprintf("user%04d", i), GivenName: "G", Surname: "S", RecoveryMail: fmt.Sprintf("user%04d@example.net", i)})
	}
	w := newWorld(t, seeded...)
	in := csv1000(n)
	var r report
	w.runJSON(&r, 0, in, "import", "--create")
	if len(r.Results) != n || r.Counts["created"] != n-len(seeded) || r.Counts["invited"] != len(seeded) {
		t.Fatalf("first import: %d results, counts %v", len(r.Results), r.Counts)
	}
	for i, x := range r.Results {
		login := fmt.Sprintf("user%04d", i)
		want := "created"
		if i%100 == 0 {
			want = "invited"
		}
		if x.Line != i+2 || x.Login != login || x.Outcome != want {
			t.Fatalf("result %d: %+v, want line %d %s %s", i, x, i+2, login, want)
		}
	}
	q := w.queued()
	mails := 0
	for login, ms := range q {
		mails += len(ms)
		if len(ms) != 1 || ms[0].Kind != flow.MailInvitation || ms[0].To != login+"@example.net" {
			t.Fatalf("%s: %+v", login, ms)
		}
	}
	if mails != n {
		t.Fatalf("%d mails queued, want %d", mails, n)
	}

	// One user opens the invitation, staff revoke another.
	x, err := w.svc.Open(context.Background(), w.code("user0001"), flow.Client{Remote: "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if code, _, errs := w.run("", "revoke", "user0002"); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}

	w.runJSON(&r, 0, in, "import", "--create")
	if r.Counts["already-invited"] != n-2 || r.Counts["in-progress"] != 1 || r.Counts["revoked"] != 1 {
		t.Fatalf("second import: counts %v", r.Counts)
	}
	again := 0
	for _, ms := range w.queued() {
		again += len(ms)
	}
	if again != n {
		t.Fatalf("second import: %d mails queued, want still %d", again, n)
	}
}

// BenchmarkImport1000 imports and invites 1,000 accounts, creating them in
// slapd; the mails are queued in storage.
func BenchmarkImport1000(b *testing.B) {
	in := csv1000(1000)
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b)
		b.StartTimer()
		var out, errb bytes.Buffer
		if code := staff.Run(context.Background(), w.svc, who, []string{"import", "--create"}, strings.NewReader(in), &out, &errb); code != 0 {
			b.Fatalf("import: exit %d: %s", code, errb.String())
		}
	}
}

// A dry run promises exactly what the real run then does: it asks the
// directory and checks each line as the real run would, and changes
// nothing (no dossier, no mail, no account, no audit line).
func TestImportDryRunMatchesRealRun(t *testing.T) {
	w := newWorld(t, pending, pending2, active, noRecover)
	w.run("", "invite", "bdurand")
	csv := "login,recovery_mail,given_name,surname,affiliation\n" +
		"amartin,,,,\n" + // invited
		"bdurand,,,,\n" + // already-invited
		"cactive,,,,\n" + // already-active (the directory says so; no dossier)
		"dnomail,,,,\n" + // no-recovery-address
		"ghost,,,,\n" + // unknown: nothing to create it from
		"newbie,newbie@example.net,Nora,Bie,student\n" + // created
		"mail,not-an-address,Mo,Ail,student\n" // invalid-mail
	var events struct{ Events []flow.Event }
	w.runJSON(&events, 0, "", "audit")
	auditBefore := len(events.Events)
	var dry, real report
	w.runJSON(&dry, staff.ExitFailed, csv, "import", "--create", "--dry-run")
	w.runJSON(&events, 0, "", "audit")
	if len(events.Events) != auditBefore || len(w.queued()) != 1 {
		t.Errorf("the dry run changed something: %d audit events (was %d), outbox %v", len(events.Events), auditBefore, w.queued())
	}
	if out, _ := w.svc.CheckInvite(context.Background(), "newbie"); out != flow.UnknownLogin {
		t.Errorf("the dry run created newbie in the directory (%s)", out)
	}
	w.runJSON(&real, staff.ExitFailed, csv, "import", "--create")
	promise := map[string]string{"invited": "would-invite", "created": "would-create"}
	if len(dry.Results) != len(real.Results) {
		t.Fatalf("dry run %+v\nreal run %+v", dry.Results, real.Results)
	}
	for i, r := range real.Results {
		want := r.Outcome
		if p, ok := promise[want]; ok {
			want = p
		}
		if d := dry.Results[i]; d.Line != r.Line || d.Outcome != want {
			t.Errorf("line %d %s: the dry run said %q, the real run did %q", r.Line, r.Login, d.Outcome, r.Outcome)
		}
	}
}

// An affiliation outside the eduPerson/SUPANN vocabulary is refused with
// the values allowed, by the dry run and the real run alike, and nothing
// reaches the directory; a known one in capitals is written in lower case.
func TestImportRefusesUnknownAffiliation(t *testing.T) {
	w := newWorld(t)
	csv := "login,recovery_mail,given_name,surname,affiliation\n" +
		"wiz,w@example.net,Wil,Zard,wizard\n" +
		"stud,s@example.net,Stu,Dent,Student\n"
	for _, args := range [][]string{{"import", "--create", "--dry-run"}, {"import", "--create"}} {
		var r report
		w.runJSON(&r, staff.ExitFailed, csv, args...)
		if len(r.Results) != 2 || r.Results[0].Outcome != "invalid-field" || !strings.Contains(r.Results[0].Detail, `"wizard"`) ||
			!strings.Contains(r.Results[0].Detail, "student, faculty, staff") {
			t.Errorf("%v: %+v, want wizard refused as invalid-field naming the allowed values", args, r.Results)
		}
		if len(r.Results) == 2 && !strings.HasSuffix(r.Results[1].Outcome, "create") && r.Results[1].Outcome != "created" {
			t.Errorf("%v: Student: %+v", args, r.Results[1])
		}
	}
	if out, _ := w.svc.Invite(context.Background(), "wiz", false, flow.Client{}); out != flow.UnknownLogin {
		t.Errorf("wiz: %s, want it never created", out)
	}
	if st, err := w.svc.Status("stud"); err != nil || strings.Join(st.Dossier.Affiliations, ",") != "student" {
		t.Errorf("stud: %v %v, want affiliation student", st.Dossier.Affiliations, err)
	}
	if _, err := w.svc.Create(context.Background(), flow.NewAccount{Login: "wiz", GivenName: "W", Surname: "Z",
		RecoveryMail: "w@example.net", Affiliation: "wizard"}, who.Client()); !errors.Is(err, flow.ErrInvalidAffiliation) {
		t.Errorf("Create with affiliation wizard: %v, want ErrInvalidAffiliation", err)
	}
}

// The files a spreadsheet writes by default in France are told apart from
// a bad field: Latin-1 text and semicolon separators get their own advice.
func TestImportSaysWhatASpreadsheetGotWrong(t *testing.T) {
	w := newStoreWorld(t)
	var r report
	w.runJSON(&r, staff.ExitFailed, "login,recovery_mail,given_name,surname,affiliation\nelodie,e@example.net,\xc9lodie,M\xfcller,student\n", "import", "--dry-run")
	if len(r.Results) != 1 || r.Results[0].Outcome != "invalid-field" || !strings.Contains(r.Results[0].Detail, "UTF-8") {
		t.Errorf("Latin-1 line: %+v, want invalid-field saying UTF-8", r.Results)
	}
	code, out, errs := w.run("login;recovery_mail;given_name\r\njdupont;j@example.net;Jean\r\n", "import")
	if code != staff.ExitFailed || out != "" || !strings.Contains(errs, "semicolon") {
		t.Errorf("semicolon header: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// A file with its header and no line says so, not "0 lines: ".
func TestImportHeaderOnly(t *testing.T) {
	w := newStoreWorld(t)
	code, out, errs := w.run("login,recovery_mail\r\n\r\n", "import", "--dry-run")
	if code != 0 || errs != "" || !strings.Contains(out, "0 lines: nothing to import (only the header)") {
		t.Errorf("header only: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
