package storage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"activated/flow"
)

// etcdRate is the key layout of the rate limits, under the prefix:
//
//	rate/<hash of the limit and key>  the times of its last events (BE
//	                                  int64 Unix nanoseconds, at most n),
//	                                  leased: gone some time after the
//	                                  window of the last one has passed
//
// The key is hashed: no login or address appears in etcd in clear.
const etcdRate = "rate/"

// Counter returns the flow.Counter that counts the rate limits of every
// node sharing the etcd cluster, or nil on bbolt (one node counts in its
// memory).
func (db *DB) Counter() flow.Counter {
	if db.etcd == nil {
		return nil
	}
	return &etcdCounter{e: db.etcd, leases: map[time.Duration]slotLease{}}
}

// etcdCounter keeps the events of a limit in one key per limited key,
// updated with a Txn that compares its ModRevision (retried on conflict).
// When etcd cannot answer, both methods return flow.ErrUnavailable, as
// the store does: the limits then fail closed, and users are told the
// service is briefly unavailable, which they would be anyway since the
// dossiers live in the same cluster.
type etcdCounter struct {
	e *etcdEngine

	mu     sync.Mutex
	leases map[time.Duration]slotLease // window → the lease of the current slot
}

// slotLease is a lease of 2 windows granted for the slot of one window
// that starts at from: every key written during the slot outlives its
// last event by at least a window, without a lease per write.
type slotLease struct {
	from time.Time
	id   clientv3.LeaseID
}

func (c *etcdCounter) key(key string) string {
	h := sha256.Sum256([]byte(key))
	return c.e.prefix + etcdRate + hex.EncodeToString(h[:16])
}

// Hits implements flow.Counter.
func (c *etcdCounter) Hits(key string, n int, window time.Duration, now time.Time) ([]time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.e.timeout)
	defer cancel()
	resp, err := c.e.cli.Get(ctx, c.key(key))
	if err != nil {
		return nil, unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return recentHits(resp.Kvs[0].Value, window, now), nil
}

// Hit implements flow.Counter.
func (c *etcdCounter) Hit(key string, n int, window time.Duration, now time.Time) error {
	k := c.key(key)
	ctx, cancel := context.WithTimeout(context.Background(), c.e.timeout)
	defer cancel()
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		id, err := c.lease(ctx, window)
		if err != nil {
			return unavailable(err)
		}
		resp, err := c.e.cli.Get(ctx, k)
		if err != nil {
			return unavailable(err)
		}
		var rev int64 // 0: absent
		var h []time.Time
		if len(resp.Kvs) == 1 {
			rev, h = resp.Kvs[0].ModRevision, recentHits(resp.Kvs[0].Value, window, now)
		}
		h = append(h, now)
		slices.SortFunc(h, time.Time.Compare) // the nodes' clocks differ a little
		h = h[max(len(h)-n, 0):]
		v := make([]byte, 0, 8*len(h))
		for _, t := range h {
			v = binary.BigEndian.AppendUint64(v, uint64(t.UnixNano()))
		}
		tr, err := c.e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
			Then(clientv3.OpPut(k, string(v), clientv3.WithLease(id))).Commit()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound): // revoked: take another
			c.forget(window)
		case err != nil:
			return unavailable(err)
		case tr.Succeeded:
			return nil
		}
		backoff(attempt)
	}
	return unavailable(errors.New("rate limit: too many conflicting writes"))
}

// recentHits decodes the times in v that are within window before now.
func recentHits(v []byte, window time.Duration, now time.Time) []time.Time {
	var h []time.Time
	for ; len(v) >= 8; v = v[8:] {
		t := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		if now.Sub(t) < window {
			h = append(h, t)
		}
	}
	return h
}

// lease returns the lease of the current slot of window, granting it
// first. Slots follow the real time, as etcd's TTLs do.
func (c *etcdCounter) lease(ctx context.Context, window time.Duration) (clientv3.LeaseID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := time.Now().Truncate(window)
	if l, ok := c.leases[window]; ok && l.from.Equal(from) {
		return l.id, nil
	}
	g, err := c.e.cli.Grant(ctx, int64((2*window+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	c.leases[window] = slotLease{from: from, id: g.ID}
	return g.ID, nil
}

func (c *etcdCounter) forget(window time.Duration) {
	c.mu.Lock()
	delete(c.leases, window)
	c.mu.Unlock()
}
