package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/storage"
)

// TestEtcdRateLimitsShared: two nodes sharing one prefix share the rate
// limits. Wrong codes from one address, alternating between the nodes,
// are refused once their total passes the limit (each node alone has seen
// only half of them); another address is not.
func TestEtcdRateLimitsShared(t *testing.T) {
	const limit = 4
	clock := flowtest.NewClock(time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC))
	var nodes [2]*flow.Service
	open := nodesOn(t, storage.EtcdConfig{})
	for i := range nodes {
		db := open()
		cfg := flow.Config{WrongCodes: limit, WrongCodesWindow: time.Minute, Locks: db, Limits: db.Counter()}
		svc, err := flow.New(cfg, db, flowtest.NewDirectory(), clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = svc
	}
	ctx := context.Background()
	attacker := flow.Client{Remote: "192.0.2.7:40000"}
	for i := range limit {
		if _, err := nodes[i%2].Open(ctx, flow.NewCode(), attacker); !errors.Is(err, flow.ErrCodeWrong) {
			t.Fatalf("wrong code %d: %v, want ErrCodeWrong", i+1, err)
		}
	}
	for i, svc := range nodes {
		var rl *flow.RateLimitError
		if _, err := svc.Open(ctx, flow.NewCode(), attacker); !errors.As(err, &rl) {
			t.Errorf("node %d, after %d wrong codes on both nodes: %v, want a rate limit", i, limit, err)
		}
	}
	if _, err := nodes[1].Open(ctx, flow.NewCode(), flow.Client{Remote: "198.51.100.9:40000"}); !errors.Is(err, flow.ErrCodeWrong) {
		t.Errorf("another address: %v, want ErrCodeWrong", err)
	}
	clock.Add(time.Minute)
	if _, err := nodes[0].Open(ctx, flow.NewCode(), attacker); !errors.Is(err, flow.ErrCodeWrong) {
		t.Errorf("a window later: %v, want ErrCodeWrong", err)
	}
}

// TestEtcdRateUnavailable: without quorum, a limit fails closed with
// flow.ErrUnavailable, as the store does.
func TestEtcdRateUnavailable(t *testing.T) {
	c := etcdCluster(t)
	db := nodesOn(t, storage.EtcdConfig{Timeout: time.Second})()
	counter := db.Counter()
	now := time.Now()
	if err := counter.Hit("k", 3, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if h, err := counter.Hits("k", 3, time.Minute, now); err != nil || len(h) != 1 {
		t.Fatalf("after one hit: %v, %v", h, err)
	}
	c.Stop(0)
	c.Stop(1)
	t.Cleanup(func() {
		if err := c.RestartAll(); err != nil {
			t.Error(err)
		}
		eventually(t, "the cluster answers again", func() bool {
			_, err := counter.Hits("k", 3, time.Minute, now)
			return err == nil
		})
	})
	if _, err := counter.Hits("k", 3, time.Minute, now); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Hits without quorum: %v, want ErrUnavailable", err)
	}
	if err := counter.Hit("k", 3, time.Minute, now); !errors.Is(err, flow.ErrUnavailable) {
		t.Errorf("Hit without quorum: %v, want ErrUnavailable", err)
	}
}
