package flow_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"activated/flow"
)

// A refusal waiting will not cure is not an outage: the user is told so
// (through i18n), the log says what to fix at level ERROR, the dossier is
// kept and a retry once fixed completes.
func TestFinishMisconfigured(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	svc, err := flow.New(e.cfg, e.db, e.dir, e.clock, slog.New(slog.NewTextHandler(&logs, nil)))
	must(t, err)
	e.svc = svc
	x := openAt(t, e, "amartin", flow.StepPassword)
	defer x.Close()
	fix := fmt.Errorf("%w: the directory demands an encrypted connection: use an ldaps:// url", flow.ErrMisconfigured)
	e.dir.FailActivate(-1, fix)
	err = x.Finish(ctx, goodPassword)
	if !errors.Is(err, flow.ErrMisconfigured) {
		t.Fatalf("Finish = %v, want ErrMisconfigured", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "use an ldaps:// url") {
		t.Errorf("the log does not say what to fix at level ERROR:\n%s", logs.String())
	}
	if d := dossier(t, x); d.PasswordSet.IsZero() || !d.Activated.IsZero() || d.Next() != flow.StepPassword {
		t.Fatalf("dossier after a configuration error: %+v", d)
	}
	e.dir.FailActivate(0, nil)
	must(t, x.Finish(ctx, ""))
	if d := dossier(t, x); d.Activated.IsZero() {
		t.Error("retry after the fix did not activate")
	}
}
