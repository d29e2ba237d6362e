package flow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"activated/flow"
)

// downCounter is a shared Counter whose cluster has lost its quorum.
type downCounter struct{}

func (downCounter) Hits(string, int, time.Duration, time.Time) ([]time.Time, error) {
	return nil, flow.ErrUnavailable
}
func (downCounter) Hit(string, int, time.Duration, time.Time) error { return flow.ErrUnavailable }

// TestLimitsUnavailable: when Config.Limits cannot tell, the limits fail
// closed: step 1 and a typed code answer ErrUnavailable, and no mail goes.
func TestLimitsUnavailable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.cfg.Limits = downCounter{}
	e.restart()
	if err := e.svc.Begin(ctx, "amartin", user); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Begin: %v, want ErrUnavailable", err)
	}
	if _, err := e.svc.Open(ctx, flow.NewCode(), user); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
	if m := e.mails(); len(m) != 0 {
		t.Errorf("mails queued while the limits cannot tell: %d", len(m))
	}
}
