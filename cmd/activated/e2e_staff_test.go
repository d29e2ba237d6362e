package main

// End-to-end tests of the staff side (issue 5) and of the outages (issue 3),
// through the real server: staff authentication, every command's --json,
// the CSV import, sanitized names on every screen, an SMTP outage across a
// restart of our server, an LDAP outage in the middle of a session.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/slapd"
	"activated/mailer"
)

// staffConn is one SSH connection as staff with h.staffKey; each command
// runs in a session of its own (fewer connections than the server's
// per-address rate allows).
type staffConn struct {
	t testing.TB
	c *gossh.Client
}

func staffDial(h *harness) *staffConn {
	h.t.Helper()
	c, err := h.dial("staff", gossh.PublicKeys(h.staffKey))
	must(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	return &staffConn{t: h.t, c: c}
}

type staffResult struct {
	cmd            string
	stdout, stderr string
	code           int
}

// run runs cmd with stdin and returns its output and exit status.
func (sc *staffConn) run(stdin, cmd string) staffResult {
	sc.t.Helper()
	s, err := sc.c.NewSession()
	must(sc.t, err)
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if stdin != "" {
		s.Stdin = strings.NewReader(stdin)
	}
	r := staffResult{cmd: cmd}
	var ee *gossh.ExitError
	switch err := s.Run(cmd); {
	case errors.As(err, &ee):
		r.code = ee.ExitStatus()
	case err != nil:
		sc.t.Fatalf("%s: %v", cmd, err)
	}
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

// json runs cmd, checks its exit status and decodes its stdout into v.
func (sc *staffConn) json(v any, wantCode int, stdin, cmd string) staffResult {
	sc.t.Helper()
	r := sc.run(stdin, cmd)
	if r.code != wantCode {
		sc.t.Fatalf("%s: exit %d, want %d; stderr %q; stdout:\n%s", cmd, r.code, wantCode, r.stderr, r.stdout)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		sc.t.Fatalf("%s: stdout is not one JSON document: %v\n%s", cmd, err, r.stdout)
	}
	return r
}

// The JSON documents as a script reads them.
type (
	staffOutcomes struct {
		Results []struct {
			Line    int    `json:"line"`
			Login   string `json:"login"`
			Outcome string `json:"outcome"`
			Detail  string `json:"detail"`
		} `json:"results"`
		Counts map[string]int `json:"counts"`
	}
	staffMail struct {
		ID        uint64    `json:"id"`
		Kind      string    `json:"kind"`
		To        string    `json:"to"`
		State     string    `json:"state"`
		Attempts  int       `json:"attempts"`
		Code      string    `json:"code"`
		LastError string    `json:"last_error"`
		Sent      time.Time `json:"sent"`
	}
	staffEvent struct {
		Seq    uint64 `json:"seq"`
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Login  string `json:"login"`
		Detail string `json:"detail"`
	}
	staffStatus struct {
		Dossier struct {
			Login         string    `json:"login"`
			GivenName     string    `json:"given_name"`
			RecoveryMails []string  `json:"recovery_mails"`
			Deadline      time.Time `json:"deadline"`
		} `json:"dossier"`
		State    string       `json:"state"`
		Step     int          `json:"step"`
		StepName string       `json:"step_name"`
		Mails    []staffMail  `json:"mails"`
		Events   []staffEvent `json:"events"`
	}
	staffList struct {
		Count    int `json:"count"`
		Dossiers []struct {
			Login    string    `json:"login"`
			Name     string    `json:"name"`
			State    string    `json:"state"`
			StepName string    `json:"step_name"`
			Deadline time.Time `json:"deadline"`
		} `json:"dossiers"`
	}
	staffStats struct {
		States      map[string]int `json:"states"`
		Steps       map[string]int `json:"steps"`
		MailsQueued int            `json:"mails_queued"`
		MailsSent   int            `json:"mails_sent"`
		MailsFailed int            `json:"mails_failed"`
	}
)

func (o staffOutcomes) summary() string {
	var parts []string
	for _, r := range o.Results {
		if r.Line > 0 {
			parts = append(parts, fmt.Sprintf("%d %s %s", r.Line, r.Login, r.Outcome))
		} else {
			parts = append(parts, r.Login+" "+r.Outcome)
		}
	}
	return strings.Join(parts, "\n")
}

// staffEventually polls cond until it holds; what says what was awaited.
func staffEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// staffOutboxIdle waits until the outbox holds no queued mail, even one
// scheduled for later: the worker has nothing left to send.
func staffOutboxIdle(h *harness) {
	h.t.Helper()
	staffEventually(h.t, "outbox empty", func() bool {
		due, err := h.app.db.Due(time.Now().Add(time.Hour), 1000)
		must(h.t, err)
		return len(due) == 0
	})
}

// staffOneLine checks a failed command's exit status and its one-line
// reason on stderr.
func staffOneLine(t testing.TB, r staffResult, code int, reason string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d", r.cmd, r.code, code)
	}
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, reason) {
		t.Errorf("%s: stderr %q, want one line with %q", r.cmd, r.stderr, reason)
	}
	if r.stdout != "" {
		t.Errorf("%s: stdout %q, want nothing", r.cmd, r.stdout)
	}
}

// staffJSONError checks a failed --json command: its exit status, and
// one JSON object with the reason in its error field on stdout, nothing
// on stderr.
func staffJSONError(t testing.TB, r staffResult, code int, reason string) {
	t.Helper()
	var doc struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != code || r.stderr != "" || !strings.Contains(r.stdout, reason) {
		t.Errorf("%s: exit %d (want %d), stdout %q (want JSON with an error saying %s: %v), stderr %q (want none)",
			r.cmd, r.code, code, r.stdout, reason, err, r.stderr)
	}
}

// staffTerm opens a PTY session like openTerm, with auth, and also keeps
// every raw byte the server sent.
func staffTerm(h *harness, user string, auth []gossh.AuthMethod, w, ht int) (*term, *flowtest.Buffer) {
	h.t.Helper()
	c, err := h.dial(user, auth...)
	must(h.t, err)
	s, err := c.NewSession()
	must(h.t, err)
	must(h.t, s.Setenv("LANG", "en_US.UTF-8"))
	must(h.t, s.RequestPty("xterm-256color", ht, w, gossh.TerminalModes{gossh.ECHO: 0}))
	tm := &term{t: h.t, client: c, sess: s, vt: vt.NewEmulator(w, ht), ended: make(chan struct{})}
	raw := &flowtest.Buffer{}
	tm.stdin, err = s.StdinPipe()
	must(h.t, err)
	out, err := s.StdoutPipe()
	must(h.t, err)
	must(h.t, s.Shell())
	go func() { io.Copy(tm.stdin, vtReader{tm.vt}) }()
	go func() {
		defer close(tm.ended)
		buf := make([]byte, 32*1024)
		for {
			n, err := out.Read(buf)
			if n > 0 {
				raw.Write(buf[:n])
				tm.mu.Lock()
				tm.vt.Write(buf[:n])
				tm.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	h.t.Cleanup(tm.close)
	return tm, raw
}

// staffFlat is the screen with its runs of spaces and line ends made one
// space: a sentence reads the same wherever the layout wrapped it.
func staffFlat(tm *term) string { return strings.Join(strings.Fields(tm.screen()), " ") }

func staffWaitFlat(tm *term, text string) {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(staffFlat(tm), text) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen never showed %q; it shows:\n%s", text, tm.screen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// staffAuditHas tells whether events hold an action of login by the
// harness's staff key, with its name and fingerprint.
func staffAuditHas(h *harness, events []staffEvent, action, login string) bool {
	fp := gossh.FingerprintSHA256(h.staffKey.PublicKey())
	for _, ev := range events {
		if ev.Action == action && ev.Login == login && strings.Contains(ev.Actor, "Alice Helpdesk") && strings.Contains(ev.Actor, fp) {
			return true
		}
	}
	return false
}

// Only "staff" with the listed key gets in; an unlisted key, a password,
// keyboard-interactive and no authentication at all are refused before any
// session starts.
func TestE2EStaffAuth(t *testing.T) {
	h := newHarness(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	stranger, err := gossh.NewSignerFromKey(priv)
	must(t, err)
	asked := false
	for _, c := range []struct {
		name string
		auth []gossh.AuthMethod
	}{
		{"unlisted key", []gossh.AuthMethod{gossh.PublicKeys(stranger)}},
		{"password", []gossh.AuthMethod{gossh.Password("hunter2 hunter2")}},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
			asked = asked || len(q) > 0
			return make([]string, len(q)), nil
		})}},
		{"none", nil},
		{"all of them", []gossh.AuthMethod{gossh.PublicKeys(stranger), gossh.Password("x"), gossh.KeyboardInteractive(
			func(_, _ string, q []string, _ []bool) ([]string, error) {
				// An instruction with no question explains the refusal.
				asked = asked || len(q) > 0
				return make([]string, len(q)), nil
			})}},
	} {
		c2, err := h.dial("staff", c.auth...)
		if err == nil {
			c2.Close()
			t.Errorf("%s: staff got in", c.name)
			continue
		}
		if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("%s: %v, want an authentication failure", c.name, err)
		}
	}
	if asked {
		t.Error("the server asked keyboard-interactive questions")
	}
	// Under another user name the listed key gives no staff rights.
	if c2, err := h.dial("activate", gossh.PublicKeys(h.staffKey)); err == nil {
		s, err := c2.NewSession()
		must(t, err)
		out, err := s.CombinedOutput("list")
		var ee *gossh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() == 0 || strings.Contains(string(out), "LOGIN") {
			t.Errorf("activate@ with the staff key ran a staff command: %v\n%s", err, out)
		}
		c2.Close()
	}

	c, err := h.dial("staff", gossh.PublicKeys(h.staffKey))
	must(t, err)
	defer c.Close()
	s, err := c.NewSession()
	must(t, err)
	out, err := s.Output("stats --json")
	if err != nil {
		t.Fatalf("stats --json: %v", err)
	}
	var st staffStats
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	s, err = c.NewSession()
	must(t, err)
	out, err = s.CombinedOutput("status nobody")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || string(out) != "status: no dossier for nobody\n" {
		t.Errorf("status nobody: %v, output %q", err, out)
	}
}

// Every command's --json parses and says what the store holds; errors exit
// non-zero with one line on stderr.
func TestE2EStaffJSON(t *testing.T) {
	h := newHarness(t)
	sc := staffDial(h)
	loc := h.cfg.Location()

	before := time.Now()
	var inv staffOutcomes
	sc.json(&inv, 1, "", "invite jdupont amartin pdurand nobody --json") // nobody fails: exit 1
	after := time.Now()
	if got, want := inv.summary(), "jdupont invited\namartin invited\npdurand already-active\nnobody unknown"; got != want {
		t.Errorf("invite outcomes:\n%s\nwant:\n%s", got, want)
	}
	if c := inv.Counts; c["invited"] != 2 || c["already-active"] != 1 || c["unknown"] != 1 {
		t.Errorf("invite counts %v", c)
	}

	jeanne := h.code("jeanne@perso.example.net", 0)
	amartinCode := h.code("alex@perso.example.net", 0)
	var st staffStatus
	staffEventually(t, "status jdupont shows the invitation sent", func() bool {
		st = staffStatus{}
		sc.json(&st, 0, "", "status jdupont --json")
		return len(st.Mails) == 1 && st.Mails[0].State == "sent"
	})
	d := st.Dossier
	if d.Login != "jdupont" || d.GivenName != "Jeanne" || strings.Join(d.RecoveryMails, ",") != "jeanne@perso.example.net" {
		t.Errorf("status dossier %+v", d)
	}
	if st.State != "pending" || st.Step != 2 || st.StepName != "recovery-code" {
		t.Errorf("status: state %q step %d %q, want pending 2 recovery-code", st.State, st.Step, st.StepName)
	}
	if lo, hi := flow.NextDayDeadline(before, loc), flow.NextDayDeadline(after, loc); !d.Deadline.Equal(lo) && !d.Deadline.Equal(hi) {
		t.Errorf("deadline %v, want 23:59 tomorrow (%v)", d.Deadline, hi)
	}
	if m := st.Mails[0]; m.Kind != "invitation" || m.To != "jeanne@perso.example.net" || m.Code != "" || m.Sent.IsZero() {
		t.Errorf("status mail %+v", m)
	}
	if !staffAuditHas(h, st.Events, "invite", "jdupont") {
		t.Errorf("status audit trail has no invite by Alice Helpdesk's key: %+v", st.Events)
	}
	if r := sc.run("", "status jdupont"); strings.Contains(r.stdout, jeanne) || !strings.Contains(r.stdout, "invitation") {
		t.Errorf("status table (no code, the mail listed):\n%s", r.stdout)
	}

	var all, pending staffList
	sc.json(&all, 0, "", "list --json")
	sc.json(&pending, 0, "", "list --state pending --json")
	for _, l := range []staffList{all, pending} {
		if l.Count != 2 || len(l.Dossiers) != 2 || l.Dossiers[0].Login != "amartin" || l.Dossiers[1].Login != "jdupont" {
			t.Fatalf("list: %+v", l)
		}
		if x := l.Dossiers[1]; x.Name != "Jeanne Dupont" || x.State != "pending" || x.StepName != "recovery-code" || !x.Deadline.Equal(d.Deadline) {
			t.Errorf("list jdupont: %+v", x)
		}
	}

	var res staffOutcomes
	sc.json(&res, 0, "", "resend jdupont --json")
	if res.summary() != "jdupont invited" {
		t.Errorf("resend: %s", res.summary())
	}
	if again := h.code("jeanne@perso.example.net", 1); again == jeanne {
		t.Error("resend mailed the same code")
	}

	var rev staffOutcomes
	sc.json(&rev, 0, "", "revoke amartin --json")
	if rev.summary() != "amartin revoked" {
		t.Errorf("revoke: %s", rev.summary())
	}
	p := h.openPlain(amartinCode, "en")
	wizardWaitDone(p) // revoked: nothing more to do in this session
	if out := p.out.String(); !strings.Contains(out, "IT staff cancelled this activation") || strings.Contains(out, "Step 3 of 7") {
		t.Errorf("the revoked code:\n%s", out)
	}
	var revoked staffList
	sc.json(&revoked, 0, "", "list --state revoked --json")
	pending = staffList{}
	sc.json(&pending, 0, "", "list --state pending --json")
	if revoked.Count != 1 || revoked.Dossiers[0].Login != "amartin" || pending.Count != 1 || pending.Dossiers[0].Login != "jdupont" {
		t.Errorf("after revoke: revoked %+v, pending %+v", revoked, pending)
	}

	var audit struct {
		Events []staffEvent `json:"events"`
	}
	sc.json(&audit, 0, "", "audit --login jdupont --json")
	var byKey []string
	for _, ev := range audit.Events {
		if ev.Login != "jdupont" {
			t.Errorf("audit --login jdupont has %+v", ev)
		}
		for _, action := range []string{"invite", "resend"} {
			if staffAuditHas(h, []staffEvent{ev}, action, "jdupont") {
				byKey = append(byKey, action+" "+ev.Detail)
			}
		}
	}
	if strings.Join(byKey, ", ") != "invite invited, resend new code mailed" {
		t.Errorf("audit --login jdupont by Alice Helpdesk's key: %q, want the invite then the resend", byKey)
	}
	// The table shows the key by a short fingerprint and stays narrow.
	fp := gossh.FingerprintSHA256(h.staffKey.PublicKey())
	table := sc.run("", "audit --login jdupont")
	if !strings.Contains(table.stdout, fp[:len("SHA256:")+10]) || strings.Contains(table.stdout, fp) {
		t.Errorf("audit table: want %s cut to 10 characters:\n%s", fp, table.stdout)
	}
	for _, l := range strings.Split(strings.TrimSpace(table.stdout), "\n") {
		if n := len([]rune(l)); n > 130 {
			t.Errorf("audit row of %d columns, want at most 130 (190 with whole fingerprints):\n%s", n, l)
		}
	}

	staffOutboxIdle(h)
	var stats staffStats
	sc.json(&stats, 0, "", "stats --json")
	if s := stats.States; len(s) != 5 || s["pending"] != 1 || s["revoked"] != 1 || s["activated"] != 0 || s["in-progress"] != 0 || s["expired"] != 0 {
		t.Errorf("stats states %v, want all 5, zeros included", s)
	}
	if stats.MailsSent != 3 || stats.MailsQueued != 0 || stats.MailsFailed != 0 {
		t.Errorf("stats mails: %d sent %d queued %d failed, want 3 0 0", stats.MailsSent, stats.MailsQueued, stats.MailsFailed)
	}
	if got := len(h.smtp.Messages()); got != 3 {
		t.Errorf("SMTP server got %d messages, want 3", got)
	}

	staffOneLine(t, sc.run("", "status nobody"), 1, "no dossier for nobody")
	staffJSONError(t, sc.run("", "status nobody --json"), 1, "no dossier for nobody")
	staffJSONError(t, sc.run("", "frobnicate --json"), 2, `unknown command \"frobnicate\"`)
	staffOneLine(t, sc.run("", "list --bogus"), 2, "bogus")
	staffJSONError(t, sc.run("", "list --state sleeping --json"), 2, "sleeping")
	if r := sc.run("", "invite --help"); r.code != 0 || !strings.Contains(r.stdout, "usage: invite") {
		t.Errorf("invite --help: exit %d\n%s", r.code, r.stdout)
	}
}

// The CSV import over SSH: every line reported with its number, the good
// ones processed; a created account goes all the way with the invitation's
// code; importing the same file again sends nothing.
func TestE2EStaffImport(t *testing.T) {
	h := newHarness(t)
	sc := staffDial(h)
	lines := []string{
		"login,recovery_mail,given_name,surname,affiliation",               // 1
		"cnouveau,claire.nouveau@perso.example.net,Claire,Nouveau,student", // 2 created
		"lmalformed,only-two", // 3 malformed
		"ghost,,,,",           // 4 unknown: nothing to create it from
		"*)(uid=*,x@perso.example.net,Eve,Il,student", // 5 invalid-login
		"jdupont,,,,", // 6 invited
		"pdurand,,,,", // 7 already-active
	}
	want := []string{"2 cnouveau created", "3 lmalformed malformed", "4 ghost unknown", "5 *)(uid=* invalid-login",
		"6 jdupont invited", "7 pdurand already-active"}
	for i := 1; len(lines) < 21; i++ { // 20 lines after the header
		login := fmt.Sprintf("imp%02d", i)
		lines = append(lines, fmt.Sprintf("%s,%s@perso.example.net,Ines%02d,Port,student", login, login, i))
		want = append(want, fmt.Sprintf("%d %s created", len(lines), login))
	}
	csv := strings.Join(lines, "\n") + "\n"

	var r staffOutcomes
	sc.json(&r, 1, csv, "import --create --json") // some lines failed: exit 1
	if got := r.summary(); got != strings.Join(want, "\n") {
		t.Fatalf("import outcomes:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if c := r.Counts; c["created"] != 15 || c["malformed"] != 1 || c["unknown"] != 1 || c["invalid-login"] != 1 {
		t.Errorf("import counts %v", c)
	}

	// Without --create, a login the directory lacks stays unknown.
	var r2 staffOutcomes
	sc.json(&r2, 1, "login,recovery_mail,given_name,surname,affiliation\nzed,zed@perso.example.net,Zed,Zee,student\n", "import --json")
	if r2.summary() != "2 zed unknown" {
		t.Errorf("import without --create: %s", r2.summary())
	}

	// The created account completes the procedure with the invitation's code.
	code := h.code("claire.nouveau@perso.example.net", 0)
	p := h.openPlain(code, "en")
	p.waitPrompt("I have read and accept")
	p.answer("y")
	p.waitPrompt("public directory")
	p.answer("n")
	p.waitPrompt("Redirect my mail")
	p.answer("n")
	p.waitPrompt("New password")
	p.answer(e2ePassword)
	p.waitPrompt("Confirm the password")
	p.answer(e2ePassword)
	staffEventually(t, "the procedure ends", func() bool { return strings.Contains(p.out.String(), "Your account is active.") })
	if err := h.bindAs("cnouveau", e2ePassword); err != nil {
		t.Fatalf("bind as the imported account: %v", err)
	}
	if e := h.entry("cnouveau"); e.GetAttributeValue("supannRessourceEtat") != "{COMPTE}A:SupannActif" || e.GetAttributeValue("supannListeRouge") != "TRUE" {
		t.Errorf("imported account after activation: %v", e.Attributes)
	}

	// The same file again: nothing to send.
	h.waitMail("claire.nouveau@perso.example.net", 1) // the activation notice
	staffOutboxIdle(h)
	sent := len(h.smtp.Messages())
	if sent != 17 { // 15 created, jdupont, cnouveau's activation notice
		t.Errorf("%d messages after the first import, want 17", sent)
	}
	var again staffOutcomes
	sc.json(&again, 1, csv, "import --create --json")
	for _, x := range again.Results {
		switch x.Outcome {
		case "already-invited", "already-active", "malformed", "unknown", "invalid-login":
		default:
			t.Errorf("second import, line %d %s: %s (%s)", x.Line, x.Login, x.Outcome, x.Detail)
		}
	}
	if c := again.Counts; c["already-invited"] != 15 || c["already-active"] != 2 {
		t.Errorf("second import counts %v", c)
	}
	staffOutboxIdle(h)
	if got := len(h.smtp.Messages()); got != sent {
		t.Errorf("the second import sent %d mails", got-sent)
	}
}

// A name stored in LDAP with an escape sequence and a bidi override reaches
// the staff tables, the dashboard and the user's own screens as harmless
// text.
func TestE2EStaffSanitize(t *testing.T) {
	eve := slapd.Account{Login: "emallet", GivenName: "\x1b]0;pwned\x07Eve", Surname: "Mallet\u202egnp.exe",
		RecoveryMail: "eve@perso.example.net", Affiliation: "student"}
	const shown = "Eve Malletgnp.exe"
	h := newHarness(t, append(e2eAccounts(), eve)...)
	sc := staffDial(h)
	var inv staffOutcomes
	sc.json(&inv, 0, "", "invite emallet --json")
	if inv.summary() != "emallet invited" {
		t.Fatalf("invite: %s", inv.summary())
	}
	harmless := func(where, s string) {
		t.Helper()
		for _, bad := range []string{"\x1b", "\x07", "\u202e", "pwned"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q:\n%q", where, bad, s)
			}
		}
	}
	for _, cmd := range []string{"status emallet", "list", "audit --login emallet"} {
		r := sc.run("", cmd)
		if r.code != 0 {
			t.Fatalf("%s: exit %d %s", cmd, r.code, r.stderr)
		}
		harmless(cmd, r.stdout+r.stderr)
		if cmd != "audit --login emallet" && !strings.Contains(r.stdout, shown) {
			t.Errorf("%s does not show %q:\n%s", cmd, shown, r.stdout)
		}
	}
	// JSON keeps the value, escaped: no raw control or bidi rune.
	for _, cmd := range []string{"status emallet --json", "list --json"} {
		r := sc.run("", cmd)
		for _, bad := range []string{"\x1b", "\x07", "\u202e"} {
			if strings.Contains(r.stdout, bad) {
				t.Errorf("%s has a raw %q", cmd, bad)
			}
		}
		if !json.Valid([]byte(r.stdout)) {
			t.Errorf("%s: invalid JSON", cmd)
		}
	}

	// The dashboard.
	dash, raw := staffTerm(h, "staff", []gossh.AuthMethod{gossh.PublicKeys(h.staffKey)}, 100, 24)
	dash.waitFor("Staff dashboard", "emallet", shown)
	dash.send("q")
	dash.waitEnd()
	if strings.Contains(raw.String(), "\x1b]0;") {
		t.Errorf("the dashboard sent a window title sequence: %q", raw.String())
	}
	for _, bad := range []string{"pwned", "\u202e"} {
		if strings.Contains(raw.String(), bad) {
			t.Errorf("the dashboard sent %q", bad)
		}
	}

	// The user's own screens, through to the last one with the name.
	code := h.code("eve@perso.example.net", 0)
	tm, wraw := staffTerm(h, code, nil, 80, 24)
	tm.waitFor("Step 3 of 7", "I have read and accept")
	tm.send(" ", keyEnter)
	tm.waitFor("Step 4 of 7")
	tm.send(" ", keyDown, keyDown, " ", keyEnter)
	tm.waitFor("Step 5 of 7")
	tm.send(keyEnter) // no redirect
	tm.waitFor("Step 7 of 7")
	tm.send(e2ePassword, keyEnter, e2ePassword, keyEnter)
	tm.waitFor("Your account is active.", "emallet", "Name: "+shown)
	for _, bad := range []string{"\x1b]0;pwned", "\x1b]2;pwned", "pwned", "\u202e"} {
		if strings.Contains(wraw.String(), bad) {
			t.Errorf("the wizard sent %q", bad)
		}
	}
	if err := h.bindAs("emallet", e2ePassword); err != nil {
		t.Errorf("bind: %v", err)
	}
	// The activation notice reached her too, with no control or bidi rune
	// (the mailer drops those runes, not whole sequences: "]0;pwned" may
	// stay, as inert text).
	notice := h.waitMail("eve@perso.example.net", 1)
	for _, bad := range []string{"\x1b", "\x07", "\u202e"} {
		if strings.Contains(notice.Header.Get("To")+notice.Body, bad) {
			t.Errorf("the activation notice contains %q", bad)
		}
	}
}

// With the SMTP server down, a user's code mail waits in the outbox while
// the screen goes on; it survives a restart of our server and is delivered
// exactly once when SMTP is back.
func TestE2EMailOutage(t *testing.T) {
	h := newHarnessWith(t, options{
		worker:        mailer.WorkerOptions{BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Poll: 50 * time.Millisecond},
		shutdownGrace: 100 * time.Millisecond, // the user's session stays open across the restart
	})
	must(t, h.smtp.Stop())

	p := h.openPlain("activate", "en")
	p.waitPrompt("Login")
	p.answer("jdupont")
	out := p.waitPrompt("Code from the mail")
	if strings.Contains(out, "unavailable") || !strings.Contains(out, "a code has just been sent") {
		t.Errorf("the screen with SMTP down:\n%s", out)
	}

	sc := staffDial(h)
	var st staffStatus
	staffEventually(t, "the recovery mail queued after failed attempts", func() bool {
		st = staffStatus{}
		sc.json(&st, 0, "", "status jdupont --json")
		return len(st.Mails) == 1 && st.Mails[0].State == "queued" && st.Mails[0].Attempts > 0
	})
	if m := st.Mails[0]; m.Kind != "recovery" || m.LastError == "" {
		t.Errorf("queued mail %+v", m)
	}
	id := st.Mails[0].ID

	h.restart() // SMTP still down
	sc = staffDial(h)
	attempts := 0
	staffEventually(t, "attempts go on after our restart", func() bool {
		st = staffStatus{}
		sc.json(&st, 0, "", "status jdupont --json")
		if attempts == 0 {
			attempts = st.Mails[0].Attempts
		}
		return st.Mails[0].State == "queued" && st.Mails[0].Attempts > attempts
	})
	if n := len(h.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages with SMTP down", n)
	}

	must(t, h.smtp.Restart())
	code := h.code("jeanne@perso.example.net", 0)
	staffOutboxIdle(h)
	staffEventually(t, "status shows the mail sent", func() bool {
		st = staffStatus{}
		sc.json(&st, 0, "", "status jdupont --json")
		return st.Mails[0].State == "sent"
	})
	if len(st.Mails) != 1 || st.Mails[0].ID != id {
		t.Errorf("mails after the outage: %+v", st.Mails)
	}
	ids := map[string]int{}
	for _, m := range h.mailsTo("jeanne@perso.example.net") {
		ids[m.Header.Get("Message-Id")]++
	}
	if len(ids) != 1 {
		t.Errorf("Message-IDs to jeanne: %v, want one", ids)
	}
	for mid, n := range ids {
		if mid == "" || n != 1 {
			t.Errorf("Message-ID %q delivered %d times", mid, n)
		}
	}
	// The code it carries opens the dossier.
	p = h.openPlain(code, "en")
	p.waitPrompt("I have read and accept")
}

// With slapd stopped, a user at the login step is told the service is
// unavailable and nothing is lost; once slapd is back, the same session
// goes on.
func TestE2EStaffLDAPOutage(t *testing.T) {
	h := newHarness(t)
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	tm.waitFor("Step 1 of 7", "Login")
	must(t, h.ldap.Stop())
	tm.send("jdupont", keyEnter)
	staffWaitFlat(tm, "The service is unavailable for a moment; nothing is lost.")
	tm.waitFor("Step 1 of 7")
	if n := len(h.smtp.Messages()); n != 0 {
		t.Errorf("%d mails sent while the directory was down", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	must(t, h.ldap.Restart(ctx))
	tm.send(keyEnter)
	tm.waitFor("Step 2 of 7")
	tm.send(h.code("jeanne@perso.example.net", 0), keyEnter)
	tm.waitFor("Step 3 of 7", "I have read and accept")
}

// A script following the audit log as JSON lines, whose key is removed from
// the staff keys file, reads a JSON error as its last line and exits 1: a
// withdrawn access is a failure, not a clean end of the stream.
func TestE2EStaffKeyRemovedDuringJSONFollow(t *testing.T) {
	h := newHarness(t)
	sc := staffDial(h)
	s, err := sc.c.NewSession()
	must(t, err)
	defer s.Close()
	var out, errb flowtest.Buffer
	s.Stdout, s.Stderr = &out, &errb
	must(t, s.Start("audit --follow --json"))
	sc.run("", "invite jdupont") // one event, so the stream is known to run
	staffEventually(t, "the follow printing an event", func() bool { return strings.Contains(out.String(), `"jdupont"`) })
	must(t, os.WriteFile(h.cfg.SSH.StaffAuthorizedKeys, []byte("# nobody\n"), 0o600))
	code := -1
	var ee *gossh.ExitError
	switch err := s.Wait(); {
	case errors.As(err, &ee):
		code = ee.ExitStatus()
	case err == nil:
		code = 0
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Error == "" || code != 1 || errb.String() != "" {
		t.Errorf("key removed: exit %d, last line %q (%v), stderr %q", code, lines[len(lines)-1], err, errb.String())
	}
}
