package flow_test

import (
	"errors"
	"testing"

	"activated/flow"
)

// A reset of pdurand, active, whose consent in the directory is charter.
func startReset(t *testing.T, e *env, charter string) *flow.Session {
	t.Helper()
	a := activeAccount()
	a.Charter = charter
	e.dir.Put(a)
	must(t, e.dir.SetPassword(ctx, a, "old password of pierre durand"))
	must(t, e.svc.Begin(ctx, "pdurand", user))
	code := e.lastCode("pdurand", flow.MailReset)
	x, err := e.svc.OpenFor(ctx, "pdurand", code, user)
	if err != nil {
		t.Fatalf("open with the reset code: %v", err)
	}
	t.Cleanup(x.Close)
	return x
}

// The owner of an active account resets the password with the mailed
// code: straight to the password when the charter is unchanged, nothing
// else written, a notice mailed, the code spent.
func TestResetPassword(t *testing.T) {
	e := newEnv(t)
	x := startReset(t, e, e.svc.CharterVersion())
	d := dossier(t, x)
	if d.Next() != flow.StepPassword || d.Show(flow.StepMailbox) != flow.StepPassword {
		t.Fatalf("reset opened at %v (shown %v), want the password", d.Next(), d.Show(flow.StepMailbox))
	}
	if v := e.svc.View(d, flow.StepPassword); v.Back != 0 || v.Saved || len(v.Rules) == 0 || v.Intro[0].Key != "reset.intro" {
		t.Errorf("password view of a reset: %+v", v)
	}
	if err := x.ChooseDirectory(true); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("a reset changes the directory choice: %v", err)
	}
	code := e.lastCode("pdurand", flow.MailReset)
	if err := x.Finish(ctx, "short"); !errors.Is(err, flow.ErrPasswordPolicy) {
		t.Fatalf("weak password: %v", err)
	}
	must(t, x.Finish(ctx, goodPassword))
	if got := e.dir.Password("pdurand"); got != goodPassword {
		t.Errorf("directory password %q", got)
	}
	if act := e.dir.Activation("pdurand"); act != (flow.Activation{}) {
		t.Errorf("a reset wrote the activation: %+v", act)
	}
	if e.dir.Account("pdurand").Charter != e.svc.CharterVersion() {
		t.Errorf("consent changed: %q", e.dir.Account("pdurand").Charter)
	}
	d = dossier(t, x)
	if d.Resetting() || d.Next() != flow.StepDone || e.svc.View(d, flow.StepDone).Intro[0].Key != "reset.done" {
		t.Errorf("after the reset: resetting %v, next %v", d.Resetting(), d.Next())
	}
	var notice int
	for _, m := range e.mails() {
		if m.Kind == flow.MailPasswordReset && m.To == "pierre@perso.example.net" && m.Code == "" {
			notice++
		}
	}
	if notice != 1 {
		t.Errorf("%d password-reset notices", notice)
	}
	x.Close()
	if _, err := e.svc.Open(ctx, code, user); !errors.Is(err, flow.ErrCodeUsed) {
		t.Errorf("the reset code again: %v", err)
	}
}

// A charter changed since the recorded acceptance is asked again first,
// and its new version goes to the directory with the password.
func TestResetAsksChangedCharter(t *testing.T) {
	e := newEnv(t)
	x := startReset(t, e, "sha256:old")
	d := dossier(t, x)
	if d.Next() != flow.StepCharter {
		t.Fatalf("reset with a changed charter opened at %v", d.Next())
	}
	if v := e.svc.View(d, flow.StepCharter); v.Accepted || v.Intro[0].Key != "reset.charter" {
		t.Errorf("charter view: %+v", v)
	}
	if err := x.Finish(ctx, goodPassword); !errors.Is(err, flow.ErrOrder) {
		t.Fatalf("password before the charter: %v", err)
	}
	must(t, x.AcceptCharter(true))
	if d := dossier(t, x); d.Next() != flow.StepPassword {
		t.Fatalf("after the charter: %v", d.Next())
	}
	must(t, x.Finish(ctx, goodPassword))
	if got := e.dir.Account("pdurand").Charter; got != e.svc.CharterVersion() {
		t.Errorf("consent %q, want %q", got, e.svc.CharterVersion())
	}
}

// The directory's refusal (a password used before) leaves the reset open:
// another password passes.
func TestResetRefusedByDirectory(t *testing.T) {
	e := newEnv(t)
	x := startReset(t, e, e.svc.CharterVersion())
	e.dir.RefuseContaining("violet", "Password is in history of old passwords")
	var refused *flow.PasswordRefusedError
	if err := x.Finish(ctx, goodPassword); !errors.As(err, &refused) {
		t.Fatalf("refused password: %v", err)
	}
	if d := dossier(t, x); !d.Resetting() {
		t.Fatal("a refusal ended the reset")
	}
	must(t, x.Finish(ctx, "another good passphrase for pierre"))
	x.Close()

	// A second reset: the password set by the first is not "saved" for it.
	must(t, e.svc.Begin(ctx, "pdurand", user))
	y, err := e.svc.Open(ctx, e.lastCode("pdurand", flow.MailReset), user)
	must(t, err)
	defer y.Close()
	d := dossier(t, y)
	if d.PasswordSaved() || e.svc.View(d, d.Next()).Saved || d.Next() != flow.StepPassword {
		t.Errorf("second reset: saved %v, view %+v", d.PasswordSaved(), e.svc.View(d, d.Next()))
	}
}

// Staff mail a reset code (helpdesk); an account not active needs an
// invitation instead. Staff resets count in the per-login mail limit.
func TestStaffReset(t *testing.T) {
	e := newEnv(t)
	staff := flow.Client{Actor: "staff:helpdesk SHA256:x"}
	if _, err := e.svc.Reset(ctx, "amartin", staff); !errors.Is(err, flow.ErrNotActive) {
		t.Errorf("reset of a pending account: %v", err)
	}
	if _, err := e.svc.Reset(ctx, "nobody", staff); !errors.Is(err, flow.ErrNoAccount) {
		t.Errorf("reset of an unknown login: %v", err)
	}
	to, err := e.svc.Reset(ctx, "pdurand", staff)
	if err != nil || len(to) != 1 || to[0] != "pierre@perso.example.net" {
		t.Fatalf("Reset = %v, %v", to, err)
	}
	code := e.lastCode("pdurand", flow.MailReset)
	x, err := e.svc.Open(ctx, code, user)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !dossier(t, x).Resetting() {
		t.Error("the staff code opened no reset")
	}
	for range 5 {
		_, err = e.svc.Reset(ctx, "pdurand", staff)
	}
	var rl *flow.RateLimitError
	if !errors.As(err, &rl) {
		t.Errorf("6th reset mail within the hour: %v", err)
	}
}

// A charter campaign: the active account whose accepted charter is not the
// current one gets a code leading to the charter alone; accepting it
// writes the consent and nothing else (no password asked or set).
func TestCharterCampaign(t *testing.T) {
	e := newEnv(t)
	x := startReset(t, e, "sha256:old")
	must(t, x.AcceptCharter(true))
	must(t, x.Finish(ctx, goodPassword)) // pdurand: current charter, via a reset
	x.Close()
	// amartin activated under an older charter.
	must(t, e.svc.Begin(ctx, "amartin", user))
	y, err := e.svc.Open(ctx, e.lastCode("amartin", flow.MailRecovery), user)
	must(t, err)
	must(t, y.AcceptCharter(true))
	must(t, y.ChooseDirectory(false))
	must(t, y.ChooseMailbox("", false))
	must(t, y.Finish(ctx, goodPassword))
	y.Close()
	old := e.svc.CharterVersion()
	e.cfg.Charter = []byte("# Charte v2\n")
	e.restart()
	st, err := e.svc.CharterStatus()
	must(t, err)
	if st.Active != 2 || st.Current != 0 || len(st.Outdated) != 2 || st.Version == old {
		t.Fatalf("status after a new charter: %+v", st)
	}
	dry, err := e.svc.CharterRemind(ctx, true, flow.Client{Actor: "staff:x"})
	must(t, err)
	before := len(e.mails())
	if len(dry) != 2 || dry[0].Outcome != flow.WouldRemind || before != len(e.mails()) {
		t.Fatalf("dry run: %+v", dry)
	}
	done, err := e.svc.CharterRemind(ctx, false, flow.Client{Actor: "staff:x"})
	must(t, err)
	if len(done) != 2 || done[1].Outcome != flow.Reminded {
		t.Fatalf("remind: %+v", done)
	}
	code := e.lastCode("amartin", flow.MailCharter)
	z, err := e.svc.Open(ctx, code, user)
	must(t, err)
	defer z.Close()
	if d := dossier(t, z); d.Next() != flow.StepCharter || e.svc.View(d, flow.StepCharter).Accepted {
		t.Fatalf("campaign code opened at %v", d.Next())
	}
	if err := z.Finish(ctx, "another good passphrase for alex"); !errors.Is(err, flow.ErrOrder) {
		t.Errorf("a password through a campaign code: %v", err)
	}
	must(t, z.AcceptCharter(true))
	d := dossier(t, z)
	if d.Next() != flow.StepDone || d.Show(flow.StepDirectory) != flow.StepDone || e.svc.View(d, flow.StepDone).Intro[0].Key != "charter.done" {
		t.Errorf("after the campaign's charter: next %v, view %+v", d.Next(), e.svc.View(d, flow.StepDone))
	}
	if got := e.dir.Account("amartin").Charter; got != st.Version {
		t.Errorf("consent %q, want %q", got, st.Version)
	}
	if e.dir.Password("amartin") != goodPassword {
		t.Error("the campaign changed the password")
	}
	if st, _ := e.svc.CharterStatus(); st.Current != 1 || len(st.Outdated) != 1 || st.Outdated[0] != "pdurand" {
		t.Errorf("status after one acceptance: %+v", st)
	}
}
