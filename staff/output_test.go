package staff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/slapd"
	"activated/staff"
)

// A real key's fingerprint: 43 characters after "SHA256:".
const longFingerprint = "SHA256:BtnIHgSD72QC6RDycC7EsxXkk3kcEKns4i5dPYTjkdE"

var helpdesk = staff.Identity{Name: "Bob Helpdesk", Fingerprint: longFingerprint, Remote: "192.0.2.8"}

// With --json, whatever fails, stdout is one JSON object with an error
// field, stderr is empty and the exit status is not 0.
func TestJSONErrors(t *testing.T) {
	w := newStoreWorld(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "nobody", "--json"}, staff.ExitFailed, "no dossier for nobody"},
		{[]string{"resend", "nobody", "--json"}, staff.ExitFailed, "no dossier for nobody"},
		{[]string{"--json", "status"}, staff.ExitUsage, "expected one login"},
		{[]string{"list", "--bogus", "--json"}, staff.ExitUsage, "bogus"},
		{[]string{"list", "--state", "sleeping", "--json"}, staff.ExitUsage, "sleeping"},
		{[]string{"frobnicate", "--json"}, staff.ExitUsage, "unknown command"},
		{[]string{"import", "--json"}, staff.ExitFailed, "empty input"},
	} {
		code, out, errs := w.run("", c.args...)
		var doc struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != c.code || errs != "" || !strings.Contains(doc.Error, c.want) {
			t.Errorf("%q: exit %d (want %d), stdout %q (want JSON with an error saying %q: %v), stderr %q (want none)",
				c.args, code, c.code, out, c.want, err, errs)
		}
	}
	// Without --json, the same error stays a line on stderr.
	if code, out, errs := w.run("", "status", "nobody"); code != staff.ExitFailed || out != "" || errs != "status: no dossier for nobody\n" {
		t.Errorf("status nobody: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// Some items failed: the report itself carries the error.
func TestJSONReportCarriesError(t *testing.T) {
	w := newWorld(t, pending)
	code, out, errs := w.run("", "invite", "amartin", "ghost", "--json")
	var doc struct {
		Error   string           `json:"error"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != staff.ExitFailed || errs != "" ||
		len(doc.Results) != 2 || !strings.Contains(doc.Error, "1 of 2 logins failed") {
		t.Errorf("exit %d, stdout %s, stderr %q, error %v", code, out, errs, err)
	}
}

func TestStatsJSONHasEveryState(t *testing.T) {
	w := newStoreWorld(t)
	var doc struct {
		States map[string]*int `json:"states"`
		Steps  map[string]*int `json:"steps"`
	}
	w.runJSON(&doc, 0, "", "stats")
	for _, s := range staff.States {
		if n, ok := doc.States[string(s)]; !ok || *n != 0 {
			t.Errorf("state %s: %v, want 0", s, n)
		}
	}
	for s := flow.StepLogin; s < flow.StepDone; s++ {
		if n, ok := doc.Steps[s.String()]; !ok || *n != 0 {
			t.Errorf("step %s: %v, want 0", s, n)
		}
	}
}

// The audit table shows a key by a short fingerprint: its rows stay
// narrow. The JSON keeps the whole one.
func TestAuditIsNarrow(t *testing.T) {
	w := newWorld(t, pending)
	var out, errb bytes.Buffer
	if code := staff.Run(context.Background(), w.svc, helpdesk, []string{"invite", "amartin"}, nil, &out, &errb); code != 0 {
		t.Fatalf("invite: %d %s", code, errb.String())
	}
	code, table, _ := w.run("", "audit")
	if code != 0 || !strings.Contains(table, "staff:Bob Helpdesk SHA256:BtnIHgSD72") || strings.Contains(table, longFingerprint) {
		t.Errorf("audit: want the fingerprint cut to SHA256:BtnIHgSD72:\n%s", table)
	}
	for _, l := range strings.Split(strings.TrimSpace(table), "\n") {
		if n := utf8.RuneCountInString(l); n > 100 {
			t.Errorf("audit row of %d columns (want at most 100):\n%s", n, l)
		}
	}
	var doc struct{ Events []flow.Event }
	w.runJSON(&doc, 0, "", "audit")
	if len(doc.Events) != 1 || !strings.HasSuffix(doc.Events[0].Actor, longFingerprint) {
		t.Errorf("audit --json: %+v, want the whole fingerprint", doc.Events)
	}
}

// columnStarts is where each word of a header line starts, in runes.
func columnStarts(header string) []int {
	var starts []int
	prev := ' '
	for i, r := range []rune(header) {
		if r != ' ' && prev == ' ' {
			starts = append(starts, i)
		}
		prev = r
	}
	return starts
}

// Rows printed by audit --follow as events come line up with the header
// printed at the start, whatever the width of their cells.
func TestAuditFollowRowsLineUp(t *testing.T) {
	long := slapd.Account{Login: "zoe.verylonglogin", GivenName: "Zoé", Surname: "Long", RecoveryMail: "zoe@example.net", Affiliation: "student"}
	w := newWorld(t, pending, long)
	w.run("", "invite", "amartin")
	ctx, cancel := context.WithCancel(context.Background())
	var out flowtest.Buffer
	done := make(chan int)
	go func() { done <- staff.Run(ctx, w.svc, who, []string{"audit", "--follow"}, nil, &out, &out) }()
	eventually(t, "the first event", func() bool { return strings.Contains(out.String(), "amartin") })
	var b bytes.Buffer
	staff.Run(context.Background(), w.svc, helpdesk, []string{"invite", "zoe.verylonglogin"}, nil, &b, &b)
	eventually(t, "the later event", func() bool { return strings.Contains(out.String(), "zoe.verylonglogin") })
	cancel()
	<-done
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("want a header and 2 rows:\n%s", out.String())
	}
	starts := columnStarts(lines[0])
	for _, l := range lines[1:] {
		r := []rune(l)
		for _, s := range starts[1:] {
			if s >= len(r) || r[s-1] != ' ' || r[s] == ' ' {
				t.Errorf("row does not line up with the header:\n%s", out.String())
				break
			}
		}
	}
}

// A resend is audited as a resend, by staff and from the dashboard alike
// (both go through flow.Service.Resend).
func TestResendIsAuditedAsResend(t *testing.T) {
	w := newWorld(t, pending)
	w.run("", "invite", "amartin")
	if code, out, errs := w.run("", "resend", "amartin"); code != 0 {
		t.Fatalf("resend: %d %s %s", code, out, errs)
	}
	var all struct{ Events []flow.Event }
	w.runJSON(&all, 0, "", "audit", "--login", "amartin")
	var doc struct{ Events []flow.Event }
	for _, ev := range all.Events {
		if strings.HasPrefix(ev.Actor, "staff:") {
			doc.Events = append(doc.Events, ev)
		}
	}
	if n := len(doc.Events); n != 2 || doc.Events[0].Action != "invite" || doc.Events[1].Action != "resend" ||
		doc.Events[1].Actor != actor || strings.Contains(doc.Events[1].Detail, "invited") {
		t.Errorf("audit: %+v, want invite then resend", doc.Events)
	}
}

// --since takes a local time of day too ("what happened since 14:30?"),
// in the institution's time zone, as the tables print it but with a T
// (a space would split the argument on its way through ssh).
func TestParseSinceTakesALocalTime(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]time.Time{
		"2026-12-01":                time.Date(2026, 12, 1, 0, 0, 0, 0, paris),
		"2026-12-01T14:30":          time.Date(2026, 12, 1, 14, 30, 0, 0, paris),
		"2026-12-01T14:30:15":       time.Date(2026, 12, 1, 14, 30, 15, 0, paris),
		"2026-12-01T14:30:00Z":      time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC),
		"2026-12-01T14:30:00+01:00": time.Date(2026, 12, 1, 14, 30, 0, 0, paris),
	} {
		if got, err := staff.ParseSince(in, paris); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := staff.ParseSince("2026-12-01T25:00", paris); err == nil || !strings.Contains(err.Error(), "YYYY-MM-DDTHH:MM") {
		t.Errorf("bad time: %v, want the accepted forms named", err)
	}
}
