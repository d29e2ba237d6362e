package flow_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/storage"
)

var ctx = context.Background()

// walk runs a full activation of login through the operations a front end
// calls; between every two operations, between(step name) runs (a restart,
// a reconnect…) and may return a new session.
func walk(t *testing.T, e *env, login, redirect string, between func(string, *flow.Session) *flow.Session) flow.Dossier {
	t.Helper()
	must(t, e.svc.Begin(ctx, login, user))
	code := e.lastCode(login, flow.MailRecovery)
	between("begin", nil)
	x, err := e.svc.Open(ctx, code, user)
	must(t, err)
	steps := []struct {
		name string
		want flow.Step
		do   func(x *flow.Session) error
	}{
		{"charter", flow.StepCharter, func(x *flow.Session) error { return x.AcceptCharter(true) }},
		{"directory", flow.StepDirectory, func(x *flow.Session) error { return x.ChooseDirectory(false) }},
		{"mailbox", flow.StepMailbox, func(x *flow.Session) error { return x.ChooseMailbox(redirect, true) }},
		{"verify", flow.StepVerifyRedirect, func(x *flow.Session) error {
			return x.VerifyRedirect(e.lastCode(login, flow.MailRedirect))
		}},
		{"password", flow.StepPassword, func(x *flow.Session) error { return x.Finish(ctx, goodPassword) }},
	}
	for _, s := range steps {
		d := dossier(t, x)
		if s.want == flow.StepVerifyRedirect && !d.NeedsRedirectVerification() {
			continue
		}
		if got := d.Next(); got != s.want {
			t.Fatalf("before %s: step %s, want %s", s.name, got, s.want)
		}
		must(t, s.do(x))
		if nx := between(s.name, x); nx != nil {
			x = nx
		}
	}
	x.Close()
	st, err := e.svc.Status(login)
	must(t, err)
	return st.Dossier
}

func TestFullActivationWithRedirect(t *testing.T) {
	e := newEnv(t)
	var code string
	d := walk(t, e, "jdupont", "jeanne.dupont@ailleurs.example.com", func(step string, _ *flow.Session) *flow.Session {
		if step == "begin" {
			code = e.lastCode("jdupont", flow.MailRecovery)
		}
		return nil
	})
	if d.Next() != flow.StepDone || d.Activated.IsZero() || d.PasswordSet.IsZero() {
		t.Fatalf("not activated: %+v", d)
	}
	act := e.dir.Activation("jdupont")
	want := flow.Activation{When: act.When, CharterVersion: flow.CharterVersion(e.cfg.Charter), Public: false, Redirect: "jeanne.dupont@ailleurs.example.com", KeepCopy: true}
	if act != want {
		t.Errorf("activation written %+v, want %+v", act, want)
	}
	if act.When.Location() != paris {
		t.Errorf("activation date in %s, want the institution zone", act.When.Location())
	}
	if e.dir.Password("jdupont") != goodPassword {
		t.Error("password not set in the directory")
	}
	kinds := map[flow.MailKind]int{}
	for _, m := range e.mails() {
		kinds[m.Kind]++
	}
	if kinds[flow.MailRecovery] != 1 || kinds[flow.MailRedirect] != 1 || kinds[flow.MailActivated] != 1 {
		t.Errorf("mails queued: %v", kinds)
	}
	if !d.IsStaff(e.svc.Config().StaffAffiliations) {
		t.Error("staff member not recognised as staff")
	}
	// Every code of the dossier died with the activation.
	if _, err := e.svc.Open(ctx, code, user); !errors.Is(err, flow.ErrCodeFinished) {
		t.Errorf("recovery code after activation: %v, want ErrCodeFinished", err)
	}
	// The audit trail tells the story, without secrets.
	st, err := e.svc.Status("jdupont")
	must(t, err)
	var actions []string
	for _, ev := range st.Events {
		actions = append(actions, ev.Action)
		if ev.Detail == code || ev.Detail == goodPassword {
			t.Errorf("secret in audit: %+v", ev)
		}
	}
	for _, a := range []string{"begin", "open", "charter", "directory", "mailbox", "verify-redirect", "password-set", "activated"} {
		if !slices.Contains(actions, a) {
			t.Errorf("audit lacks %q: %v", a, actions)
		}
	}
	for _, m := range st.Mails {
		if m.Code != "" {
			t.Error("Status shows a mail's code")
		}
	}
}

func TestStudentWithoutRedirect(t *testing.T) {
	e := newEnv(t)
	d := walk(t, e, "amartin", "", func(string, *flow.Session) *flow.Session { return nil })
	if d.Activated.IsZero() || d.Redirect != "" || d.KeepCopy {
		t.Fatalf("dossier %+v", d)
	}
	if d.IsStaff(e.svc.Config().StaffAffiliations) {
		t.Error("a student is told about the staff mailbox")
	}
	if e.dir.Activation("amartin").Redirect != "" {
		t.Error("redirect written for a student without redirect")
	}
}

func TestRedirectToRecoveryAddressNeedsNoVerification(t *testing.T) {
	e := newEnv(t)
	d := walk(t, e, "amartin", "ALEX@perso.example.net", func(string, *flow.Session) *flow.Session { return nil })
	if d.Activated.IsZero() || d.NeedsRedirectVerification() {
		t.Fatalf("dossier %+v", d)
	}
	for _, m := range e.mails() {
		if m.Kind == flow.MailRedirect {
			t.Error("a redirect code was mailed to the recovery address")
		}
	}
}

// A restart between every two operations: the dossier resumes at the same
// step with the same choices.
func TestRestartBetweenEveryOperation(t *testing.T) {
	e := newEnv(t)
	var before flow.Dossier
	code := ""
	d := walk(t, e, "jdupont", "jd@ailleurs.example.com", func(name string, x *flow.Session) *flow.Session {
		if x == nil {
			e.restart()
			return nil
		}
		before = dossier(t, x)
		if code == "" {
			code = e.lastCode("jdupont", flow.MailRecovery)
		}
		x.Close()
		e.restart()
		if name == "password" { // activated: the code is finished
			st, err := e.svc.Status("jdupont")
			must(t, err)
			if st.State != flow.StateActivated || !reflect.DeepEqual(comparable(st.Dossier), comparable(before)) {
				t.Fatalf("after activation and a restart: %+v", st)
			}
			return nil
		}
		nx, err := e.svc.Open(ctx, code, user)
		must(t, err)
		after := dossier(t, nx)
		if !reflect.DeepEqual(comparable(before), comparable(after)) {
			t.Fatalf("after %s and a restart:\n got %+v\nwant %+v", name, after, before)
		}
		if after.Next() != before.Next() {
			t.Fatalf("after %s: resumed at %s, was at %s", name, after.Next(), before.Next())
		}
		return nx
	})
	if d.Activated.IsZero() {
		t.Fatal("not activated")
	}
}

// comparable drops the fields a reopening rightly changes.
func comparable(d flow.Dossier) flow.Dossier {
	d.Updated = time.Time{}
	return d
}

// Unknown, pending and active logins get the same answer; the pending one
// gets a code, the active one a reset code, to their owners only.
func TestBeginDoesNotEnumerate(t *testing.T) {
	e := newEnv(t)
	var answers []error
	for _, login := range []string{"nobody", "amartin", "pdurand"} {
		answers = append(answers, e.svc.Begin(ctx, login, user))
	}
	for i, a := range answers {
		if a != nil {
			t.Fatalf("answer %d: %v", i, a)
		}
	}
	byLogin := map[string][]flow.MailKind{}
	for _, m := range e.mails() {
		byLogin[m.Login] = append(byLogin[m.Login], m.Kind)
		if m.Code == "" || !slices.Contains(e.dir.Account(m.Login).RecoveryMails, m.To) {
			t.Errorf("a %s mail to %s without a code, or not to the owner", m.Kind, m.To)
		}
	}
	if !reflect.DeepEqual(byLogin, map[string][]flow.MailKind{"amartin": {flow.MailRecovery}, "pdurand": {flow.MailReset}}) {
		t.Errorf("mails: %v", byLogin)
	}
	// The rate limit counts every login alike, existing or not.
	for _, login := range []string{"nobody", "amartin"} {
		for range 4 {
			must(t, e.svc.Begin(ctx, login, user))
		}
		var rl *flow.RateLimitError
		if err := e.svc.Begin(ctx, login, user); !errors.As(err, &rl) || rl.Wait <= 0 {
			t.Errorf("%s: 6th begin within the hour: %v", login, err)
		}
	}
	e.clock.Add(time.Hour)
	must(t, e.svc.Begin(ctx, "nobody", user))
	// A code pasted in the login field is refused as a code: it is not kept.
	code := flow.NewCode()
	if err := e.svc.Begin(ctx, code, user); !errors.Is(err, flow.ErrLoginIsCode) {
		t.Errorf("a code in the login field: %v", err)
	}
	must(t, e.svc.Events(0, "", time.Time{}, func(ev flow.Event) error {
		if strings.Contains(strings.ToUpper(ev.Login+ev.Detail), code) || ev.Login == "nobody" {
			t.Errorf("typed text of an unknown login in the audit: %+v", ev)
		}
		return nil
	}))
	if err := e.svc.Begin(ctx, "*)(uid=*", user); !errors.Is(err, flow.ErrInvalidLogin) {
		t.Errorf("begin with a filter: %v", err)
	}
	e.dir.SetDown(true)
	if err := e.svc.Begin(ctx, "amartin", user); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("directory down: %v", err)
	}
	if err := e.svc.Begin(ctx, "nobody", user); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("directory down, unknown login: %v", err)
	}
}

func TestCodeErrors(t *testing.T) {
	e := newEnv(t)
	must(t, e.svc.Begin(ctx, "amartin", user))
	first := e.lastCode("amartin", flow.MailRecovery)
	e.clock.Add(time.Minute)
	must(t, e.svc.Begin(ctx, "amartin", user))
	second := e.lastCode("amartin", flow.MailRecovery)
	if first == second {
		t.Fatal("same code twice")
	}
	for _, c := range []struct {
		code string
		want error
	}{
		{"", flow.ErrCodeWrong},
		{"not a code", flow.ErrCodeWrong},
		{flow.NewCode(), flow.ErrCodeWrong},
		{first, flow.ErrCodeSuperseded},
	} {
		if _, err := e.svc.Open(ctx, c.code, user); !errors.Is(err, c.want) {
			t.Errorf("Open(%q): %v, want %v", c.code, err, c.want)
		}
	}
	// Typed in lower case with spaces: still the code.
	x, err := e.svc.Open(ctx, "  "+lowerSpaced(second)+" ", user)
	must(t, err)
	// One session at a time.
	if _, err := e.svc.Open(ctx, second, user); !errors.Is(err, flow.ErrBusy) {
		t.Errorf("second session: %v, want ErrBusy", err)
	}
	x.Close()
	x.Close() // idempotent
	if err := x.AcceptCharter(true); !errors.Is(err, flow.ErrClosed) {
		t.Errorf("closed session: %v", err)
	}
	x, err = e.svc.Open(ctx, second, user)
	must(t, err)
	if err := x.AcceptCharter(false); !errors.Is(err, flow.ErrNotAccepted) {
		t.Errorf("unticked charter: %v", err)
	}
	if err := x.ChooseDirectory(true); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("directory before charter: %v", err)
	}
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("finish before charter: %v", err)
	}
	x.Close()
	// Past 23:59:59 the same day: expired, and an open session is stopped too.
	x, err = e.svc.Open(ctx, second, user)
	must(t, err)
	e.clock.Set(time.Date(2026, 11, 25, 23, 59, 59, 0, paris))
	must(t, x.AcceptCharter(true))
	e.clock.Set(time.Date(2026, 11, 26, 0, 0, 0, 0, paris))
	if err := x.ChooseDirectory(true); !errors.Is(err, flow.ErrCodeExpired) {
		t.Errorf("after midnight: %v, want ErrCodeExpired", err)
	}
	x.Close()
	if _, err := e.svc.Open(ctx, second, user); !errors.Is(err, flow.ErrCodeExpired) {
		t.Errorf("expired code: %v", err)
	}
	// A new code resumes where the user was.
	must(t, e.svc.Begin(ctx, "amartin", user))
	x, err = e.svc.Open(ctx, e.lastCode("amartin", flow.MailRecovery), user)
	must(t, err)
	if d := dossier(t, x); d.Next() != flow.StepDirectory {
		t.Errorf("resumed at %s, want directory", d.Next())
	}
	x.Close()
}

func lowerSpaced(code string) string {
	out := []rune{}
	for i, r := range code {
		if r == '-' {
			out = append(out, ' ')
			continue
		}
		if r >= 'A' && r <= 'Z' && i%2 == 0 {
			r += 'a' - 'A'
		}
		out = append(out, r)
	}
	return string(out)
}

func TestWrongCodesAreRateLimitedPerAddress(t *testing.T) {
	e := newEnv(t)
	for i := range e.svc.Config().WrongCodes {
		if _, err := e.svc.Open(ctx, flow.NewCode(), user); !errors.Is(err, flow.ErrCodeWrong) {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	var rl *flow.RateLimitError
	if _, err := e.svc.Open(ctx, flow.NewCode(), user); !errors.As(err, &rl) {
		t.Fatalf("one wrong code past the limit: %v", err)
	}
	other := flow.Client{Remote: "198.51.100.7:1"}
	if _, err := e.svc.Open(ctx, flow.NewCode(), other); !errors.Is(err, flow.ErrCodeWrong) {
		t.Errorf("another address is limited too: %v", err)
	}
	e.clock.Add(16 * time.Minute)
	if _, err := e.svc.Open(ctx, flow.NewCode(), user); !errors.Is(err, flow.ErrCodeWrong) {
		t.Errorf("after the window: %v", err)
	}
}

func openAt(t *testing.T, e *env, login string, step flow.Step) *flow.Session {
	t.Helper()
	must(t, e.svc.Begin(ctx, login, user))
	x, err := e.svc.Open(ctx, e.lastCode(login, flow.MailRecovery), user)
	must(t, err)
	if step > flow.StepCharter {
		must(t, x.AcceptCharter(true))
	}
	if step > flow.StepDirectory {
		must(t, x.ChooseDirectory(true))
	}
	if step > flow.StepMailbox {
		must(t, x.ChooseMailbox("", false))
	}
	if got := dossier(t, x).Next(); got != step {
		t.Fatalf("at %s, want %s", got, step)
	}
	return x
}

func TestRedirectVerification(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "jdupont", flow.StepMailbox)
	if err := x.ChooseMailbox("not an address", true); !errors.Is(err, flow.ErrInvalidAddress) {
		t.Errorf("invalid address: %v", err)
	}
	if d := dossier(t, x); d.MailboxChosen {
		t.Error("an invalid address changed the dossier")
	}
	must(t, x.ChooseMailbox("a@ailleurs.example.com", true))
	codeA := e.lastCode("jdupont", flow.MailRedirect)
	// Back from step 6 and the same address confirmed again: no new mail,
	// the code already sent stays good.
	sent := len(e.mails())
	must(t, x.ChooseMailbox("A@ailleurs.example.com", false))
	if len(e.mails()) != sent || e.lastCode("jdupont", flow.MailRedirect) != codeA {
		t.Error("confirming the same redirect again mailed a new code")
	}
	// Changing the address kills the first code.
	must(t, x.ChooseMailbox("b@ailleurs.example.com", false))
	codeB := e.lastCode("jdupont", flow.MailRedirect)
	if err := x.VerifyRedirect(codeA); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("code of the old address: %v", err)
	}
	if err := x.VerifyRedirect(e.lastCode("jdupont", flow.MailRecovery)); !errors.Is(err, flow.ErrCodeWrong) {
		t.Errorf("recovery code as redirect code: %v", err)
	}
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("finish with an unverified redirect: %v", err)
	}
	must(t, x.ResendRedirect())
	codeC := e.lastCode("jdupont", flow.MailRedirect)
	if err := x.VerifyRedirect(codeB); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("resent code does not supersede: %v", err)
	}
	x.Close()
	// Reconnecting with the redirect code (ssh <code>@host) verifies the
	// redirect and spends the code, but opens nothing: its holder may be a
	// stranger whose address the user mistyped.
	if x, err := e.svc.Open(ctx, codeC, flow.Client{Remote: "203.0.113.9:1"}); !errors.Is(err, flow.ErrRedirectConfirmed) || x != nil {
		t.Fatalf("open with a redirect code: %v, session %v", err, x)
	}
	if e.svc.Busy("jdupont") {
		t.Error("a redirect code left a session open")
	}
	if _, err := e.svc.Open(ctx, codeC, user); !errors.Is(err, flow.ErrCodeUsed) {
		t.Errorf("spent redirect code: %v", err)
	}
	x, err := e.svc.Open(ctx, e.lastCode("jdupont", flow.MailRecovery), user)
	must(t, err)
	d := dossier(t, x)
	if !d.RedirectVerified || d.Next() != flow.StepPassword || d.KeepCopy {
		t.Errorf("after the redirect code: %+v", d)
	}
	if err := x.ResendRedirect(); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("resend after verification: %v", err)
	}
	// Going back and choosing the same address keeps it verified.
	must(t, x.ChooseDirectory(true))
	must(t, x.ChooseMailbox("B@ailleurs.example.com", false))
	if d := dossier(t, x); !d.RedirectVerified || d.Next() != flow.StepPassword {
		t.Errorf("same address again lost its verification: %+v", d)
	}
	x.Close()
}

func TestFinishFailures(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "amartin", flow.StepPassword)
	defer x.Close()
	if err := x.Finish(ctx, "short"); !errors.Is(err, flow.ErrPasswordPolicy) {
		t.Errorf("weak password: %v", err)
	}
	if err := x.Finish(ctx, "amartin-violet-staple-horse"); !errors.Is(err, flow.ErrPasswordPolicy) {
		t.Errorf("password with the login: %v", err)
	}
	e.dir.Refuse("Password fails quality checking policy")
	var refused *flow.PasswordRefusedError
	if err := x.Finish(ctx, goodPassword); !errors.As(err, &refused) || refused.Reason != "Password fails quality checking policy" {
		t.Errorf("refused by the directory: %v", err)
	}
	if d := dossier(t, x); !d.PasswordSet.IsZero() || d.Next() != flow.StepPassword {
		t.Errorf("refused password changed the dossier: %+v", d)
	}
	e.dir.Refuse("")
	e.dir.SetDown(true)
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("directory down: %v", err)
	}
	// The password passes, then the Modify fails: the dossier remembers the
	// password is set, and a retry completes without it.
	e.dir.SetDown(false)
	e.dir.FailActivate(-1, nil)
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("modify failed: %v", err)
	}
	d := dossier(t, x)
	if d.PasswordSet.IsZero() || !d.Activated.IsZero() || d.Next() != flow.StepPassword {
		t.Fatalf("after a failed modify: %+v", d)
	}
	if e.dir.Account("amartin").Active {
		t.Fatal("marked active after a failed modify")
	}
	e.dir.FailActivate(0, nil)
	must(t, e.dir.SetPassword(ctx, flow.Account{Login: "amartin"}, "sentinel"))
	must(t, x.Finish(ctx, ""))
	if e.dir.Password("amartin") != "sentinel" {
		t.Error("retry set the password again")
	}
	if d := dossier(t, x); d.Activated.IsZero() {
		t.Error("retry did not activate")
	}
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrAlreadyActivated) {
		t.Errorf("finish twice: %v", err)
	}
	if err := x.ChooseDirectory(false); !errors.Is(err, flow.ErrAlreadyActivated) {
		t.Errorf("change after activation: %v", err)
	}
}

func TestCheckPasswordUsesNames(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "jdupont", flow.StepCharter)
	defer x.Close()
	if x.CheckPassword("JeanneDupontJeanneDupont").OK() {
		t.Error("names accepted as a password")
	}
	if !x.CheckPassword(goodPassword).OK() {
		t.Error("good password refused")
	}
	must(t, x.SetLang("en"))
	if d := dossier(t, x); d.Lang != "en" {
		t.Errorf("language not kept: %q", d.Lang)
	}
}

func TestInviteAndStaffOperations(t *testing.T) {
	e := newEnv(t)
	staff := flow.Client{Actor: "staff:Alice SHA256:abc", Remote: "127.0.0.1:1"}
	for login, want := range map[string]flow.InviteOutcome{
		"jdupont": flow.Invited, "pdurand": flow.AlreadyActive, "nobody": flow.UnknownLogin, "*)(uid=*": flow.InvalidLoginOut,
	} {
		got, err := e.svc.Invite(ctx, login, false, staff)
		if err != nil || got != want {
			t.Errorf("Invite(%s) = %s, %v; want %s", login, got, err, want)
		}
	}
	e.dir.Put(flow.Account{Login: "nomail", DN: "uid=nomail"})
	if got, _ := e.svc.Invite(ctx, "nomail", false, staff); got != flow.NoRecoveryMail {
		t.Errorf("no recovery address: %s", got)
	}
	// Idempotent without renew, a new code with renew.
	if got, _ := e.svc.Invite(ctx, "jdupont", false, staff); got != flow.AlreadyInvited {
		t.Errorf("second invite: %s", got)
	}
	invite1 := e.lastCode("jdupont", flow.MailInvitation)
	if got, _ := e.svc.Invite(ctx, "jdupont", true, staff); got != flow.Invited {
		t.Errorf("resend: %s", got)
	}
	invite2 := e.lastCode("jdupont", flow.MailInvitation)
	if _, err := e.svc.Open(ctx, invite1, user); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("old invitation: %v", err)
	}
	ms := e.mails()
	last := ms[len(ms)-1]
	if want := flow.NextDayDeadline(e.clock.Now(), paris); !last.Deadline.Equal(want) {
		t.Errorf("invitation deadline %s, want %s", last.Deadline, want)
	}
	// The invitation's code is valid until 23:59 the next day.
	e.clock.Set(time.Date(2026, 11, 26, 23, 59, 0, 0, paris))
	x, err := e.svc.Open(ctx, invite2, user)
	must(t, err)
	st, err := e.svc.Status("jdupont")
	must(t, err)
	if st.State != flow.StateInProgress || st.Step != flow.StepCharter || !st.Busy || len(st.Mails) != 2 {
		t.Errorf("status: state %s step %s busy %v mails %d", st.State, st.Step, st.Busy, len(st.Mails))
	}
	changes, stop := e.svc.Subscribe()
	defer stop()
	// Revoking ends the session and the codes.
	e.clock.Set(time.Date(2026, 11, 26, 23, 59, 30, 0, paris))
	revokedAt := e.clock.Now()
	must(t, e.svc.Revoke("jdupont", staff))
	select {
	case <-x.Done():
	default:
		t.Error("revoke left the session open")
	}
	if got := <-changes; got != "jdupont" {
		t.Errorf("change notified for %q", got)
	}
	if _, err := e.svc.Open(ctx, invite2, user); !errors.Is(err, flow.ErrCodeRevoked) {
		t.Errorf("revoked code: %v", err)
	}
	must(t, e.svc.Begin(ctx, "jdupont", user))
	for _, m := range e.mails() {
		if m.Kind == flow.MailRecovery && m.Login == "jdupont" {
			t.Error("a revoked dossier got a recovery code")
		}
	}
	list, err := e.svc.List(flow.StateRevoked, time.Time{})
	must(t, err)
	if len(list) != 1 || list[0].Dossier.Login != "jdupont" {
		t.Errorf("revoked list: %+v", list)
	}
	// A revoke is a change: `list --since` the time of it shows the dossier.
	if list, err := e.svc.List("", revokedAt); err != nil || len(list) != 1 || !list[0].Dossier.Updated.Equal(revokedAt) {
		t.Errorf("list since the revoke: %+v %v, want jdupont updated at %s", list, err, revokedAt)
	}
	// A new invitation lifts the revocation.
	if got, _ := e.svc.Invite(ctx, "jdupont", false, staff); got != flow.Invited {
		t.Errorf("invite after revoke: %s", got)
	}
	// Create, then invite.
	a, err := e.svc.Create(ctx, flow.NewAccount{Login: "NEWBIE", RecoveryMail: "new@perso.example.net", Affiliation: "student"}, staff)
	must(t, err)
	if a.Login != "newbie" {
		t.Errorf("created %q", a.Login)
	}
	if _, err := e.svc.Create(ctx, flow.NewAccount{Login: "x", RecoveryMail: "nope"}, staff); !errors.Is(err, flow.ErrInvalidAddress) {
		t.Errorf("create with a bad address: %v", err)
	}
	if _, err := e.svc.Create(ctx, flow.NewAccount{Login: "*"}, staff); !errors.Is(err, flow.ErrInvalidLogin) {
		t.Errorf("create with a bad login: %v", err)
	}
	var n int
	must(t, e.svc.Events(0, "jdupont", time.Time{}, func(ev flow.Event) error {
		n++
		if ev.Action == "revoke" && ev.Actor != staff.Actor {
			t.Errorf("revoke audited as %q", ev.Actor)
		}
		return nil
	}))
	if n < 5 {
		t.Errorf("%d audit events for jdupont", n)
	}
	stats, err := e.svc.Stats()
	must(t, err)
	// Three invitations to jdupont: the first was superseded and the second
	// revoked before they could be sent, so only the third is still queued.
	// The revocation forgot the progress: the re-invited dossier is pending.
	if stats.States[flow.StatePending] != 1 || stats.MailsQueued != 1 {
		t.Errorf("stats: %+v", stats)
	}
	if err := e.svc.Revoke("nobody", staff); !errors.Is(err, flow.ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	e.dir.SetDown(true)
	if _, err := e.svc.Invite(ctx, "amartin", false, staff); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("invite with LDAP down: %v", err)
	}
}

func TestStatsAndStates(t *testing.T) {
	e := newEnv(t)
	walk(t, e, "amartin", "", func(string, *flow.Session) *flow.Session { return nil })
	must(t, e.svc.Begin(ctx, "jdupont", user))
	st, err := e.svc.Stats()
	must(t, err)
	if st.States[flow.StateActivated] != 1 || st.States[flow.StatePending] != 1 || st.Steps["recovery-code"] != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(st.PerDay) != 1 || st.PerDay[0] != (flow.DayCount{Day: "2026-11-25", Count: 1}) {
		t.Errorf("per day %+v", st.PerDay)
	}
	e.clock.Add(48 * time.Hour)
	if l, _ := e.svc.List(flow.StateExpired, time.Time{}); len(l) != 1 || l[0].Dossier.Login != "jdupont" {
		t.Errorf("expired: %+v", l)
	}
	if l, _ := e.svc.List("", e.clock.Now()); len(l) != 0 {
		t.Errorf("since now: %+v", l)
	}
	if flow.Step(42).String() != "unknown" || flow.StepDone.String() != "done" {
		t.Error("step names")
	}
}

// A leaked invitation: a stranger opens the dossier, accepts the charter,
// sets and verifies a redirect of theirs; staff revoke and invite again.
// The owner starts at step 2 with none of the stranger's answers.
func TestRevokeForgetsAStrangersChoices(t *testing.T) {
	e := newEnv(t)
	staff := flow.Client{Actor: "staff:Alice SHA256:abc"}
	if out, err := e.svc.Invite(ctx, "jdupont", false, staff); err != nil || out != flow.Invited {
		t.Fatalf("invite: %s %v", out, err)
	}
	x, err := e.svc.Open(ctx, e.lastCode("jdupont", flow.MailInvitation), flow.Client{Remote: "203.0.113.9:1"})
	must(t, err)
	must(t, x.AcceptCharter(true))
	must(t, x.ChooseDirectory(true))
	must(t, x.ChooseMailbox("thief@attacker.example.com", false))
	must(t, x.VerifyRedirect(e.lastCode("jdupont", flow.MailRedirect)))
	must(t, e.svc.Revoke("jdupont", staff))
	if out, err := e.svc.Invite(ctx, "jdupont", false, staff); err != nil || out != flow.Invited {
		t.Fatalf("invite again: %s %v", out, err)
	}
	y, err := e.svc.Open(ctx, e.lastCode("jdupont", flow.MailInvitation), user)
	must(t, err)
	defer y.Close()
	d := dossier(t, y)
	if d.Next() != flow.StepCharter || d.Redirect != "" || d.RedirectVerified || d.DirectoryChosen || !d.PasswordSet.IsZero() {
		t.Errorf("the owner inherits the stranger's answers: %+v", d)
	}
	if d.GivenName != "Jeanne" || len(d.RecoveryMails) != 1 {
		t.Errorf("the account's own data was lost: %+v", d)
	}
}

// One client address cannot try every login of the directory: past its
// limit of logins in 10 minutes it is told to wait; other addresses are not.
func TestBeginIsLimitedPerAddress(t *testing.T) {
	e := newEnv(t)
	from := flow.Client{Remote: "198.51.100.20"}
	for i := range e.svc.Config().BeginsPerAddress {
		must(t, e.svc.Begin(ctx, fmt.Sprintf("user%02d", i), from))
	}
	var rl *flow.RateLimitError
	if err := e.svc.Begin(ctx, "amartin", from); !errors.As(err, &rl) {
		t.Fatalf("one login past the limit from one address: %v", err)
	}
	for _, m := range e.mails() {
		if m.Login == "amartin" {
			t.Error("a refused begin mailed a code")
		}
	}
	must(t, e.svc.Begin(ctx, "amartin", flow.Client{Remote: "198.51.100.21"}))
	e.clock.Add(10 * time.Minute)
	must(t, e.svc.Begin(ctx, "jdupont", from))
}

// A directory that spells a uid with capitals: the dossier is still found
// by the login as users and staff type it, in any case.
func TestLoginSpelledWithCapitalsInTheDirectory(t *testing.T) {
	e := newEnv(t)
	a := studentAccount()
	a.Login, a.DN = "BMartin", "uid=BMartin,ou=people,dc=example,dc=org"
	e.dir.Put(a)
	must(t, e.svc.Begin(ctx, "bmartin", user))
	x, err := e.svc.Open(ctx, e.lastCode("bmartin", flow.MailRecovery), user)
	must(t, err)
	must(t, x.AcceptCharter(true))
	x.Close()
	must(t, e.svc.Begin(ctx, "BMARTIN", user)) // a new code keeps the progress
	st, err := e.svc.Status("BMartin")
	must(t, err)
	if st.Dossier.CharterAcceptedAt.IsZero() || st.Step != flow.StepDirectory {
		t.Errorf("the progress was lost: %+v", st)
	}
	must(t, e.svc.Revoke("BMartin", flow.Client{Actor: "staff:x"}))
}

// Strangers typing a login at step 1 do not use up the owner's redirect
// mails; a redirect confirmed by reconnecting leaves the step 6 screen with
// nothing to do.
func TestRedirectMailsApartFromStrangers(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "jdupont", flow.StepMailbox)
	defer x.Close()
	for range 4 { // with openAt's, five begins: the step-1 limit is reached
		must(t, e.svc.Begin(ctx, "jdupont", flow.Client{Remote: "203.0.113.7:1"}))
	}
	must(t, x.ChooseMailbox("jd@ailleurs.example.com", true))
	must(t, x.ResendRedirect())
	code := e.lastCode("jdupont", flow.MailRedirect)
	if _, err := e.svc.Open(ctx, code, user); !errors.Is(err, flow.ErrRedirectConfirmed) {
		t.Fatalf("reconnecting with the redirect code: %v", err)
	}
	if err := x.VerifyRedirect(code); err != nil {
		t.Errorf("the open step 6 after the redirect was confirmed elsewhere: %v", err)
	}
	if d := dossier(t, x); d.Next() != flow.StepPassword {
		t.Errorf("at %s", d.Next())
	}
}

// slowDir holds Activate until released, to act while a Finish is in the
// directory.
type slowDir struct {
	*flowtest.Directory
	entered, release chan struct{}
}

func (d slowDir) Activate(ctx context.Context, a flow.Account, act flow.Activation) error {
	close(d.entered)
	<-d.release
	return d.Directory.Activate(ctx, a, act)
}

// The directory and the dossier never disagree: a Finish past the deadline
// writes nothing to LDAP; the deadline passing during the write still
// records it (a revoke meanwhile: TestDisconnectDuringFinish).
func TestFinishAgainstRevokeAndDeadline(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "amartin", flow.StepPassword)
	e.clock.Set(time.Date(2026, 11, 26, 0, 0, 1, 0, paris))
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrCodeExpired) {
		t.Errorf("finish past the deadline: %v", err)
	}
	if e.dir.Password("amartin") != "" {
		t.Error("a finish past the deadline set the password")
	}
	x.Close()

	e.clock.Set(time.Date(2026, 11, 25, 23, 59, 0, 0, paris))
	slow := slowDir{e.dir, make(chan struct{}), make(chan struct{})}
	svc, err := flow.New(e.cfg, e.db, slow, e.clock, nil)
	must(t, err)
	must(t, svc.Begin(ctx, "amartin", user))
	y, err := svc.Open(ctx, e.lastCode("amartin", flow.MailRecovery), user)
	must(t, err)
	defer y.Close()
	done := make(chan error, 1)
	go func() { done <- y.Finish(ctx, goodPassword) }()
	<-slow.entered
	e.clock.Set(time.Date(2026, 11, 26, 0, 0, 1, 0, paris)) // midnight passes meanwhile
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatalf("finish: %v", err)
	}
	st, err := svc.Status("amartin")
	must(t, err)
	if st.State != flow.StateActivated || !e.dir.Account("amartin").Active {
		t.Errorf("LDAP active %v, dossier %s", e.dir.Account("amartin").Active, st.State)
	}
	if err := svc.Revoke("amartin", flow.Client{Actor: "staff:x"}); !errors.Is(err, flow.ErrAlreadyActivated) {
		t.Errorf("revoke after activation: %v", err)
	}
}

// countingStore counts the transactions that write (each one a commit:
// two fsyncs on bbolt).
type countingStore struct {
	*storage.DB
	writes atomic.Int32
}

func (c *countingStore) Update(fn func(flow.Tx) error) error {
	c.writes.Add(1)
	return c.DB.Update(fn)
}

func (c *countingStore) Batch(fn func(flow.Tx) error) error {
	c.writes.Add(1)
	return c.DB.Batch(fn)
}

// The last step is one commit: the password the directory took is
// recorded with the activation, not in a commit of its own.
func TestFinishIsOneCommit(t *testing.T) {
	e := newEnv(t)
	store := &countingStore{DB: e.db}
	svc, err := flow.New(e.cfg, store, e.dir, e.clock, nil)
	must(t, err)
	e.svc = svc
	x := openAt(t, e, "amartin", flow.StepPassword)
	defer x.Close()
	store.writes.Store(0)
	must(t, x.Finish(ctx, goodPassword))
	if n := store.writes.Load(); n != 1 {
		t.Errorf("Finish wrote %d transactions, want 1", n)
	}
	if d := dossier(t, x); d.PasswordSet.IsZero() || d.Activated.IsZero() {
		t.Errorf("dossier after Finish: %+v", d)
	}
}
