package staff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/slapd"
	"activated/staff"
)

type report struct {
	Results []struct {
		Line    int    `json:"line"`
		Login   string `json:"login"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	} `json:"results"`
	Counts map[string]int `json:"counts"`
}

func (r report) outcomes() map[string]string {
	m := map[string]string{}
	for _, x := range r.Results {
		m[x.Login] = x.Outcome
	}
	return m
}

func TestHelpAndUsage(t *testing.T) {
	w := newStoreWorld(t) // nothing reaches the directory
	code, out, _ := w.run("", "help")
	if code != 0 || !strings.Contains(out, "import") || !strings.Contains(out, "audit") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
	for _, c := range []string{"invite", "import", "status", "list", "resend", "revoke", "audit", "stats", "help"} {
		code, out, _ := w.run("", c, "--help")
		if code != 0 || !strings.HasPrefix(out, "usage: "+c) || !strings.Contains(out, "--json") {
			t.Errorf("%s --help: exit %d\n%s", c, code, out)
		}
	}
	code, out, _ = w.run("", "help", "import")
	if code != 0 || !strings.Contains(out, "--create") || !strings.Contains(out, "--dry-run") {
		t.Errorf("help import: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"invite"}, {"list", "--bogus"}, {"list", "--state", "sleeping"},
		{"list", "--since", "yesterday"}, {"status"}, {"status", "a", "b"}, {"import", "file.csv"}} {
		code, out, errs := w.run("", args...)
		if code != staff.ExitUsage || out != "" || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d (want 2), stdout %q, stderr %q (want one line)", args, code, out, errs)
		}
	}
	code, _, errs := w.run("", "\x1b]0;pwned\x07")
	harmless(t, "unknown command", strings.TrimSuffix(errs, "\n"))
	if code != staff.ExitUsage {
		t.Errorf("hostile command: exit %d", code)
	}
}

func TestInvite(t *testing.T) {
	w := newWorld(t, pending, active, noRecover)
	var r report
	w.runJSON(&r, staff.ExitFailed, "", "invite", "amartin", "cactive", "dnomail", "ghost", "*)(uid=*")
	want := map[string]string{"amartin": "invited", "cactive": "already-active", "dnomail": "no-recovery-address",
		"ghost": "unknown", "*)(uid=*": "invalid-login"}
	if got := r.outcomes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	if r.Counts["invited"] != 1 || r.Counts["unknown"] != 1 {
		t.Errorf("counts %v", r.Counts)
	}
	q := w.queued()
	if len(q) != 1 || len(q["amartin"]) != 1 || q["amartin"][0].Kind != flow.MailInvitation || q["amartin"][0].To != pending.RecoveryMail {
		t.Fatalf("outbox %+v, want one invitation to amartin", q)
	}
	// Every action is audited with the staff member's name and key.
	var n int
	w.svc.Events(0, "", time.Time{}, func(e flow.Event) error {
		if e.Action == "invite" {
			n++
			if e.Actor != actor || e.Remote != who.Remote {
				t.Errorf("event %+v: want actor %q remote %q", e, actor, who.Remote)
			}
		}
		return nil
	})
	if n != 3 { // invalid and unknown logins never reach the store
		t.Errorf("%d invite events, want 3", n)
	}

	// An explicit invite renews: a new code replaces the old one.
	old := w.code("amartin")
	code, out, errs := w.run("", "invite", "amartin")
	if code != 0 || !strings.Contains(out, "invited") || errs != "" {
		t.Fatalf("second invite: exit %d\n%s%s", code, out, errs)
	}
	if _, err := w.svc.Open(context.Background(), old, flow.Client{Remote: "198.51.100.1"}); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("old code after a renewed invite: %v, want ErrCodeSuperseded", err)
	}
	// A login given twice is invited once.
	before := len(w.queued()["amartin"])
	w.runJSON(&r, 0, "", "invite", "amartin", "AMARTIN")
	if len(r.Results) != 1 || len(w.queued()["amartin"]) != before+1 {
		t.Errorf("login given twice: %+v, %d mails (had %d, want one more)", r.Results, len(w.queued()["amartin"]), before)
	}
	// The table names each login and outcome, with a one-line reason on
	// stderr when one failed.
	code, out, errs = w.run("", "invite", "amartin", "ghost")
	if code != staff.ExitFailed || !strings.Contains(out, "ghost") || !strings.Contains(out, "unknown") ||
		!strings.Contains(errs, "1 of 2 logins failed") || strings.Count(errs, "\n") != 1 {
		t.Errorf("invite with an unknown login: exit %d\n%s\nstderr %q", code, out, errs)
	}
}

func TestQueriesMatchTheState(t *testing.T) {
	w := newWorld(t, pending, pending2, active)
	ctx := context.Background()
	if code, out, errs := w.run("", "invite", "amartin", "bdurand"); code != 0 {
		t.Fatalf("invite: %d %s %s", code, out, errs)
	}
	codeB := w.code("bdurand")
	x, err := w.svc.Open(ctx, codeB, flow.Client{Remote: "198.51.100.1"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer x.Close()
	if err := x.AcceptCharter(true); err != nil {
		t.Fatalf("charter: %v", err)
	}

	// status
	var st struct {
		flow.Status
		StepName string `json:"step_name"`
	}
	w.runJSON(&st, 0, "", "status", "BDurand")
	if st.Dossier.Login != "bdurand" || st.State != flow.StateInProgress || st.Step != flow.StepDirectory ||
		st.StepName != "directory" || !st.Busy || st.Dossier.CharterAcceptedAt.IsZero() {
		t.Errorf("status: %+v", st)
	}
	if len(st.Mails) != 1 || st.Mails[0].Kind != flow.MailInvitation || st.Mails[0].State != flow.MailQueued || st.Mails[0].Code != "" {
		t.Errorf("status mails: %+v", st.Mails)
	}
	var actions []string
	for _, e := range st.Events {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "invite,open,charter" {
		t.Errorf("status events: %v", actions)
	}
	code, out, _ := w.run("", "status", "bdurand")
	if code != 0 || !strings.Contains(out, "in-progress") || !strings.Contains(out, "4 of 7 directory") ||
		!strings.Contains(out, "bruno.durand@example.net") || !strings.Contains(out, "Audit trail (3)") {
		t.Errorf("status table: exit %d\n%s", code, out)
	}
	codeA := w.code("amartin")
	for _, args := range [][]string{{"status", "amartin"}, {"status", "amartin", "--json"}, {"list", "--json"}, {"audit", "--json"}} {
		if _, out, _ := w.run("", args...); strings.Contains(out, codeA) || strings.Contains(out, codeB) {
			t.Errorf("%v prints a code:\n%s", args, out)
		}
	}
	if code, _, errs := w.run("", "status", "cactive"); code != staff.ExitFailed || !strings.Contains(errs, "no dossier") {
		t.Errorf("status without dossier: exit %d, stderr %q", code, errs)
	}

	// list
	var list struct {
		Count    int `json:"count"`
		Dossiers []struct {
			Login    string     `json:"login"`
			Name     string     `json:"name"`
			State    flow.State `json:"state"`
			Step     flow.Step  `json:"step"`
			StepName string     `json:"step_name"`
			Busy     bool       `json:"busy"`
		} `json:"dossiers"`
	}
	w.runJSON(&list, 0, "", "list")
	if list.Count != 2 || len(list.Dossiers) != 2 || list.Dossiers[0].Login != "amartin" || list.Dossiers[0].State != flow.StatePending ||
		list.Dossiers[0].Name != "Anne Martin" || list.Dossiers[1].State != flow.StateInProgress || list.Dossiers[1].StepName != "directory" {
		t.Errorf("list: %+v", list)
	}
	w.runJSON(&list, 0, "", "list", "--state", "in-progress")
	if list.Count != 1 || list.Dossiers[0].Login != "bdurand" {
		t.Errorf("list --state in-progress: %+v", list)
	}
	tomorrow := time.Now().In(w.svc.Config().Location).AddDate(0, 0, 1).Format(time.DateOnly)
	w.runJSON(&list, 0, "", "list", "--since", tomorrow)
	if list.Count != 0 {
		t.Errorf("list --since tomorrow: %+v", list)
	}
	w.runJSON(&list, 0, "", "list", "--since", time.Now().Add(-time.Hour).Format(time.RFC3339), "--state", "pending")
	if list.Count != 1 || list.Dossiers[0].Login != "amartin" {
		t.Errorf("list --since an hour ago --state pending: %+v", list)
	}
	code, out, _ = w.run("", "list")
	if code != 0 || !strings.Contains(out, "in-progress*") || !strings.Contains(out, "Anne Martin") || !strings.Contains(out, "2 dossiers") {
		t.Errorf("list table: exit %d\n%s", code, out)
	}

	// audit
	var audit struct{ Events []flow.Event }
	w.runJSON(&audit, 0, "", "audit", "--login", "bdurand")
	if len(audit.Events) != 3 || audit.Events[0].Action != "invite" || audit.Events[0].Actor != actor || audit.Events[2].Action != "charter" {
		t.Errorf("audit --login: %+v", audit.Events)
	}
	w.runJSON(&audit, 0, "", "audit", "--since", tomorrow)
	if len(audit.Events) != 0 {
		t.Errorf("audit --since tomorrow: %+v", audit.Events)
	}
	w.runJSON(&audit, 0, "", "audit")
	if len(audit.Events) != 4 {
		t.Errorf("audit: %d events, want 4", len(audit.Events))
	}

	// stats
	var stats flow.Stats
	w.runJSON(&stats, 0, "", "stats")
	if stats.States[flow.StatePending] != 1 || stats.States[flow.StateInProgress] != 1 || stats.Steps["directory"] != 1 ||
		stats.Steps["recovery-code"] != 1 || stats.MailsQueued != 2 {
		t.Errorf("stats: %+v", stats)
	}
	code, out, _ = w.run("", "stats")
	if code != 0 || !strings.Contains(out, "Mails: 2 queued, 0 sent, 0 failed") || !strings.Contains(out, "4 of 7 directory") {
		t.Errorf("stats table: exit %d\n%s", code, out)
	}
}

func TestResendAndRevoke(t *testing.T) {
	w := newWorld(t, pending, active)
	ctx := context.Background()
	client := flow.Client{Remote: "198.51.100.1"}
	if code, _, errs := w.run("", "resend", "amartin"); code != staff.ExitFailed || !strings.Contains(errs, "no dossier") {
		t.Errorf("resend without dossier: exit %d, stderr %q", code, errs)
	}
	w.run("", "invite", "amartin")
	first := w.code("amartin")
	var r report
	w.runJSON(&r, 0, "", "resend", "amartin")
	if r.outcomes()["amartin"] != "invited" {
		t.Fatalf("resend: %+v", r)
	}
	second := w.code("amartin")
	if second == first {
		t.Fatal("resend mailed the same code")
	}
	if _, err := w.svc.Open(ctx, first, client); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("first code after resend: %v, want ErrCodeSuperseded", err)
	}
	x, err := w.svc.Open(ctx, second, client)
	if err != nil {
		t.Fatalf("open with the resent code: %v", err)
	}
	w.runJSON(&r, 0, "", "revoke", "amartin")
	if r.outcomes()["amartin"] != "revoked" || !strings.Contains(r.Results[0].Detail, "session closed") {
		t.Fatalf("revoke with a session open: %+v", r)
	}
	select {
	case <-x.Done():
	default:
		t.Error("revoke left the user's session open")
	}
	x.Close()
	// Again, with no session open: the technician on the phone must not be
	// told a session was closed.
	w.runJSON(&r, 0, "", "revoke", "amartin")
	if r.outcomes()["amartin"] != "revoked" || strings.Contains(r.Results[0].Detail, "session closed") {
		t.Errorf("revoke with no session open: %+v", r)
	}
	if _, err := w.svc.Open(ctx, second, client); !errors.Is(err, flow.ErrCodeRevoked) {
		t.Errorf("code after revoke: %v, want ErrCodeRevoked", err)
	}
	var st flow.Status
	w.runJSON(&st, 0, "", "status", "amartin")
	if st.State != flow.StateRevoked {
		t.Errorf("state after revoke: %s", st.State)
	}
	// The tables do not show the revoked codes' deadline as if one were
	// still valid ("valid until tomorrow", says the technician).
	deadline := staff.When(st.Dossier.Deadline, w.svc.Config().Location)
	if _, out, _ := w.run("", "status", "amartin"); strings.Contains(out, deadline) || !hasRow(out, "Deadline none: codes revoked") {
		t.Errorf("status of a revoked dossier shows its old deadline %s:\n%s", deadline, out)
	}
	if _, out, _ := w.run("", "list", "--state", "revoked"); strings.Contains(out, deadline) || !hasRow(out, "amartin") {
		t.Errorf("list of a revoked dossier shows its old deadline %s:\n%s", deadline, out)
	}
	if code, _, errs := w.run("", "revoke", "cactive"); code != staff.ExitFailed || !strings.Contains(errs, "no dossier") {
		t.Errorf("revoke without dossier: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := w.run("", "revoke", "*)(uid=*"); code != staff.ExitFailed || !strings.Contains(errs, "not a valid login") {
		t.Errorf("revoke of an invalid login: exit %d, stderr %q", code, errs)
	}
}

func TestAuditFollow(t *testing.T) {
	w := newWorld(t, pending, pending2)
	w.run("", "invite", "amartin")
	ctx, cancel := context.WithCancel(context.Background())
	var out flowtest.Buffer
	done := make(chan int)
	go func() {
		done <- staff.Run(ctx, w.svc, who, []string{"audit", "--follow", "--json"}, strings.NewReader(""), &out, &out)
	}()
	eventually(t, "the first event", func() bool { return strings.Contains(out.String(), `"login":"amartin"`) })
	w.run("", "invite", "bdurand")
	eventually(t, "the event that came after", func() bool { return strings.Contains(out.String(), `"login":"bdurand"`) })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("audit --follow ended with %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got:\n%s", out.String())
	}
	var seq uint64
	for _, l := range lines {
		var e flow.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Action != "invite" || e.Seq <= seq {
			t.Errorf("line %q: %+v %v", l, e, err)
		}
		seq = e.Seq
	}
}

// A name planted in LDAP with a terminal escape and a bidi override
// reaches the staff tables as plain text, and JSON without raw controls.
func TestHostileNameIsHarmless(t *testing.T) {
	evil := slapd.Account{Login: "evil", GivenName: "\x1b]0;pwned\x07Jean", Surname: "Du\u202e\u200bp\u3164o\u2028n\U000E0041t\u00ad", RecoveryMail: "evil@example.net"}
	w := newWorld(t, evil)
	if code, out, errs := w.run("", "invite", "evil"); code != 0 {
		t.Fatalf("invite: %d %s %s", code, out, errs)
	}
	st, err := w.svc.Status("evil")
	if err != nil || !strings.Contains(st.Dossier.GivenName, "\x1b]0;") {
		t.Fatalf("the directory did not keep the hostile name (%q, %v): the test proves nothing", st.Dossier.GivenName, err)
	}
	for _, args := range [][]string{{"list"}, {"status", "evil"}, {"list", "--json"}, {"status", "evil", "--json"}, {"audit"}, {"audit", "--json"}} {
		code, out, errs := w.run("", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errs)
		}
		harmless(t, strings.Join(args, " "), out)
		if args[0] != "audit" && !strings.Contains(out, "Jean") {
			t.Errorf("%v: the name is gone:\n%s", args, out)
		}
	}
	var list struct{ Dossiers []struct{ Name string } }
	w.runJSON(&list, 0, "", "list")
	if got := list.Dossiers[0].Name; got != "\x1b]0;pwned\x07Jean Dupo\u2028nt" {
		t.Errorf("JSON name %q: want the escape and U+2028 kept (escaped by JSON), the bidi override and invisible characters dropped", got)
	}
}

func TestRunStopsAtContextEnd(t *testing.T) {
	w := newWorld(t, pending, pending2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := staff.Run(ctx, w.svc, who, []string{"invite", "amartin", "bdurand", "--json"}, strings.NewReader(""), &out, &errb)
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || code != staff.ExitFailed {
		t.Fatalf("exit %d, %v\n%s", code, err, out.String())
	}
	if r.Counts["skipped"] != 2 || len(w.queued()) != 0 {
		t.Errorf("a cancelled invite still ran: %+v", r)
	}
}

// When the directory goes away, a batch stops at once: nothing is lost,
// the lines not tried are reported, and running it again later is safe.
func TestDirectoryOutage(t *testing.T) {
	w := newWorld(t, pending, pending2)
	if err := w.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"invite", "amartin", "bdurand"}},
		{"login\namartin\nbdurand\nghost\n", []string{"import", "--create"}},
	} {
		var r report
		w.runJSON(&r, staff.ExitFailed, c.stdin, c.args...)
		if r.Counts["error"] == 0 || r.Counts["error"]+r.Counts["skipped"] != len(r.Results) {
			t.Errorf("%v: %+v", c.args, r)
		}
		for _, x := range r.Results {
			if x.Outcome == "error" && !strings.Contains(x.Detail, "unavailable") {
				t.Errorf("%v: detail %q does not say the directory is unavailable", c.args, x.Detail)
			}
		}
	}
	if q := w.queued(); len(q) != 0 {
		t.Errorf("mails queued during the outage: %v", q)
	}
}

func TestAuditFollowTable(t *testing.T) {
	w := newWorld(t, pending)
	w.run("", "invite", "amartin")
	ctx, cancel := context.WithCancel(context.Background())
	var out flowtest.Buffer
	done := make(chan int)
	go func() {
		done <- staff.Run(ctx, w.svc, who, []string{"audit", "--follow", "--login", "amartin"}, nil, &out, &out)
	}()
	eventually(t, "the header and the event", func() bool {
		s := out.String()
		return strings.HasPrefix(s, "SEQ") && strings.Contains(s, "amartin") && strings.Contains(s, "invite")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}

// TestCountsAgreeWithTheirNumber: one dossier is "1 dossier", one login
// "1 login", in the lines a technician reads aloud.
func TestCountsAgreeWithTheirNumber(t *testing.T) {
	w := newWorld(t, pending)
	wa := newWorld(t, active)
	for _, args := range [][]string{{"reset", "cactive"}, {"charter", "remind", "--dry-run"}} {
		if code, out, _ := wa.run("", args...); code != 0 || !strings.Contains(out, "\n1 login: 1 ") {
			t.Errorf("%s of one login: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	code, out, _ := w.run("", "invite", "amartin")
	if code != 0 || !strings.Contains(out, "1 login: 1 invited") {
		t.Errorf("invite of one login: exit %d\n%s", code, out)
	}
	code, out, _ = w.run("", "list")
	if code != 0 || !strings.Contains(out, "1 dossier (") {
		t.Errorf("list of one dossier: exit %d\n%s", code, out)
	}
	code, _, errs := w.run("login\nnobody\n", "import")
	if code != staff.ExitFailed || !strings.Contains(errs, "1 of 1 line failed") {
		t.Errorf("import of one failing line: exit %d, stderr %q", code, errs)
	}
}

// "I never got the mail": status says when a mail the relay refused is
// tried again, not only that it waits.
func TestStatusSaysWhenAMailIsRetried(t *testing.T) {
	w := newWorld(t, pending)
	w.run("", "invite", "amartin")
	m := w.queued()["amartin"][0]
	next := time.Now().Add(90 * time.Second)
	if err := w.db.Retry(m.ID, next, "smtp 127.0.0.1:25: connection refused"); err != nil {
		t.Fatal(err)
	}
	_, out, _ := w.run("", "status", "amartin")
	want := "next try " + staff.When(next, w.svc.Config().Location)
	if !strings.Contains(out, want) || !strings.Contains(out, "connection refused") {
		t.Errorf("status lacks %q and the error:\n%s", want, out)
	}
}

// "Where did you send it?": invite and resend say the address the new code
// goes to (the directory's, which may hold a typo), not only that it left.
func TestInviteAndResendSayWhereTheCodeGoes(t *testing.T) {
	w := newWorld(t, pending)
	for _, cmd := range []string{"invite", "resend"} {
		var r report
		w.runJSON(&r, 0, "", cmd, "amartin")
		if len(r.Results) != 1 || r.Results[0].Outcome != "invited" || !strings.Contains(r.Results[0].Detail, "to anne.martin@example.net") {
			t.Errorf("%s: %+v, want the recovery address in the detail", cmd, r.Results)
		}
	}
}
