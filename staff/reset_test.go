package staff_test

import (
	"context"
	"strings"
	"testing"

	"activated/flow"
	"activated/staff"
)

// Staff reset: an active account gets a reset code at its recovery
// address; it shows in status, list and audit; a pending account or an
// unknown login gets nothing.
func TestReset(t *testing.T) {
	w := newWorld(t, pending, active)
	var r report
	w.runJSON(&r, 0, "", "reset", "cactive")
	if r.outcomes()["cactive"] != "reset-mailed" {
		t.Fatalf("reset: %+v", r)
	}
	ms := w.queued()["cactive"]
	if len(ms) != 1 || ms[0].Kind != flow.MailReset || ms[0].Code == "" || ms[0].To != active.RecoveryMail {
		t.Fatalf("mails after reset: %+v", ms)
	}
	x, err := w.svc.Open(context.Background(), ms[0].Code, flow.Client{Remote: "198.51.100.1"})
	if err != nil {
		t.Fatalf("open with the staff's reset code: %v", err)
	}
	defer x.Close()
	var st flow.Status
	w.runJSON(&st, 0, "", "status", "cactive")
	// The directory records no charter for it: the reset asks for it first.
	if st.State != flow.StateActivated || !st.Dossier.Resetting() || st.Step != flow.StepCharter || !st.Dossier.ResetCharter {
		t.Errorf("status during the reset: %s %v resetting=%v", st.State, st.Step, st.Dossier.Resetting())
	}
	if _, out, _ := w.run("", "status", "cactive"); !strings.Contains(out, "under way since") || !strings.Contains(out, "charter asked again") || strings.Contains(out, ms[0].Code) {
		t.Errorf("status text:\n%s", out)
	}
	if _, out, _ := w.run("", "list"); !strings.Contains(out, "activated (reset)") {
		t.Errorf("list:\n%s", out)
	}
	if _, out, _ := w.run("", "audit", "--login", "cactive"); !strings.Contains(out, "reset") || !strings.Contains(out, actor) {
		t.Errorf("audit:\n%s", out)
	}
	if code, _, errs := w.run("", "reset", "amartin"); code != staff.ExitFailed || !strings.Contains(errs, "not active yet") {
		t.Errorf("reset of a pending account: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := w.run("", "reset", "nobody"); code != staff.ExitFailed || !strings.Contains(errs, "no such account") {
		t.Errorf("reset of an unknown login: exit %d, stderr %q", code, errs)
	}
	if n := len(w.queued()["amartin"]); n != 0 {
		t.Errorf("%d mails to a pending account", n)
	}
}

// charter wants status or remind; --dry-run belongs to remind.
func TestCharterUsage(t *testing.T) {
	w := newStoreWorld(t)
	for _, args := range [][]string{{"charter"}, {"charter", "sign"}, {"charter", "status", "--dry-run"}} {
		if code, _, errs := w.run("", args...); code != staff.ExitUsage || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	var st flow.CharterCount
	w.runJSON(&st, 0, "", "charter", "status")
	if st.Active != 0 || st.Version == "" || st.Outdated == nil {
		t.Errorf("charter status of an empty store: %+v", st)
	}
}
