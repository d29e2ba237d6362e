package storage

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"activated/flow"
)

// EtcdConfig says how to reach the etcd cluster several nodes share.
type EtcdConfig struct {
	Endpoints []string
	// Prefix is put before every key (default "/activated/"): several
	// deployments may share one cluster.
	Prefix   string
	TLS      *tls.Config // nil: plain connections
	Username string
	Password string
	// Timeout bounds each request (default 5s): when the cluster has lost
	// its quorum, users are told the service is briefly unavailable after
	// about this long.
	Timeout time.Duration
	// LeaseTTL is how long a dead node's dossier locks and mail claims
	// outlive it (default 10s).
	LeaseTTL time.Duration
	// MaxTxnOps is the cluster's --max-txn-ops (default 128, etcd's own).
	MaxTxnOps int
}

// etcd key layout, under the prefix:
//
//	d/<bucket>/<key>  the keys of a bucket (the same buckets as in bbolt)
//	d/<bucket>        the bucket's sequence (BE uint64)
//	secret            the code secret, created once
//	lock/<login>      the node holding the dossier open (leased)
//	claim/<BE id>     the node sending an outbox mail (leased)
//	rate/<hash>       the last events of a rate limit (leased, etcdrate.go)
const (
	etcdData   = "d/"
	etcdSecret = "secret"
	etcdLock   = "lock/"
	etcdClaim  = "claim/"
)

// maxAttempts bounds the retries of a transaction that conflicts with
// other nodes' writes.
const maxAttempts = 20

// etcdEngine runs the transactions of tx.go optimistically: fn runs
// against a snapshot (a revision), its writes buffered; the commit is one
// Txn that applies them if nothing fn read has changed since, else fn runs
// again.
type etcdEngine struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	maxOps  int
	leases  *leases
	// writing serializes this node's transactions: they would all
	// conflict on the audit sequence anyway, so only other nodes' writes
	// can make one run again.
	writing sync.Mutex
}

// OpenEtcd connects to the cluster and returns the store kept in it. The
// code secret is created in etcd by the first node (put if absent), so
// every node hashes codes and seals mails alike.
func OpenEtcd(cfg EtcdConfig) (*DB, error) {
	e, err := openEtcdClient(cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{path: "etcd " + e.prefix, eng: e, etcd: e, enqueued: make(chan struct{}, 1)}
	secret, err := e.putIfAbsent(e.prefix+etcdSecret, nil)
	if err == nil {
		db.keys, err = newKeys(secret)
	}
	if err == nil {
		err = e.checkVersion()
	}
	if err != nil {
		e.close()
		return nil, fmt.Errorf("etcd %s: %w", e.prefix, err)
	}
	return db, nil
}

// openEtcdClient fills in cfg's defaults and connects.
func openEtcdClient(cfg EtcdConfig) (*etcdEngine, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/activated/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = 128
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, TLS: cfg.TLS, Username: cfg.Username, Password: cfg.Password,
		DialTimeout: cfg.Timeout, Logger: zap.NewNop(),
		DialKeepAliveTime: cfg.Timeout, DialKeepAliveTimeout: cfg.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	e := &etcdEngine{cli: cli, prefix: cfg.Prefix, timeout: cfg.Timeout, maxOps: cfg.MaxTxnOps}
	e.leases = newLeases(cli, cfg.LeaseTTL, cfg.Timeout)
	return e, nil
}

// unavailable marks an etcd failure (no quorum, no member reachable,
// timeout) as the brief outage flow tells users about.
func unavailable(err error) error {
	return fmt.Errorf("%w: etcd: %w", flow.ErrUnavailable, err)
}

// putIfAbsent stores value under key unless the key exists, and returns
// what the key holds then. A nil value means a fresh random secret.
func (e *etcdEngine) putIfAbsent(key string, value []byte) ([]byte, error) {
	if value == nil {
		value = make([]byte, secretLen)
		if _, err := rand.Read(value); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, unavailable(err)
	}
	if resp.Succeeded {
		return value, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 {
		return nil, fmt.Errorf("%s vanished while read", key)
	}
	return kvs[0].Value, nil
}

// checkVersion records the schema version on a new cluster and refuses
// one written by a newer program.
func (e *etcdEngine) checkVersion() error {
	known := uint64(len(migrations))
	raw, err := e.putIfAbsent(e.key(bucketMeta, keyVersion), u64(known))
	if err != nil {
		return err
	}
	if len(raw) != 8 {
		return fmt.Errorf("corrupt schema version (%d bytes)", len(raw))
	}
	if v := binary.BigEndian.Uint64(raw); v > known {
		return fmt.Errorf("schema version %d is newer than this program knows (%d): run a newer activated", v, known)
	}
	return nil
}

func (e *etcdEngine) key(b, k []byte) string {
	return e.prefix + etcdData + string(b) + "/" + string(k)
}

func (e *etcdEngine) close() error {
	e.leases.close()
	return e.cli.Close()
}

func (e *etcdEngine) view(fn func(kvTx) error) error {
	for attempt := 1; ; attempt++ {
		t := e.newTx()
		err := fn(t)
		t.cancel()
		if t.err == nil {
			return err
		}
		if !errors.Is(t.err, rpctypes.ErrCompacted) || attempt == maxAttempts {
			return unavailable(t.err)
		}
	}
}

func (e *etcdEngine) update(fn func(kvTx) error) error {
	e.writing.Lock()
	defer e.writing.Unlock()
	for attempt := 1; ; attempt++ {
		t := e.newTx()
		err := fn(t)
		if t.err == nil && err == nil {
			var ok bool
			ok, err = t.commit()
			if err == nil && ok {
				t.cancel()
				return nil
			}
		}
		t.cancel()
		switch {
		case t.err != nil && !errors.Is(t.err, rpctypes.ErrCompacted):
			return unavailable(t.err)
		case t.err == nil && err != nil:
			return err
		case attempt == maxAttempts:
			return unavailable(errors.New("too many conflicting writes from other nodes"))
		}
		backoff(attempt)
	}
}

// backoff waits a little, at random, so that two nodes that conflicted
// do not conflict again at once.
func backoff(attempt int) {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(attempt)*2_000_000))
	time.Sleep(time.Duration(n.Int64()) + 100*time.Microsecond)
}

// etcdTx is one attempt of a transaction.
type etcdTx struct {
	e      *etcdEngine
	ctx    context.Context
	cancel context.CancelFunc
	rev    int64                     // the snapshot; 0 until the first read
	reads  map[string]int64          // key → ModRevision read (0: absent)
	vals   map[string][]byte         // key → value read (nil: absent)
	ranges map[*etcdCursor][2]string // [start, end) each cursor read
	writes map[string]*[]byte        // key → value to put (nil: delete)
	err    error                     // the first failed read: the attempt is void
}

func (e *etcdEngine) newTx() *etcdTx {
	ctx, cancel := context.WithCancel(context.Background())
	return &etcdTx{e: e, ctx: ctx, cancel: cancel, reads: map[string]int64{}, vals: map[string][]byte{},
		ranges: map[*etcdCursor][2]string{}, writes: map[string]*[]byte{}}
}

func (t *etcdTx) Bucket(name []byte) bucket {
	return &etcdBucket{t: t, name: name, pre: t.e.prefix + etcdData + string(name) + "/"}
}

// get reads key from the writes, then the snapshot.
func (t *etcdTx) get(key string) []byte {
	if w, ok := t.writes[key]; ok {
		if w == nil {
			return nil
		}
		return *w
	}
	if v, ok := t.vals[key]; ok || t.err != nil {
		return v
	}
	resp, err := t.read(key)
	if err != nil {
		t.err = err
		return nil
	}
	var v []byte
	var mod int64
	if len(resp.Kvs) == 1 {
		v, mod = append([]byte{}, resp.Kvs[0].Value...), resp.Kvs[0].ModRevision
	}
	t.reads[key], t.vals[key] = mod, v
	return v
}

// read gets key (and opts) at the snapshot. The first read of a
// transaction is linearizable and fixes the snapshot; the next ones are
// served by the member asked, unless it has not applied the snapshot yet.
func (t *etcdTx) read(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.e.timeout)
	defer cancel()
	if t.rev == 0 {
		resp, err := t.e.cli.Get(ctx, key, opts...)
		if err == nil {
			t.rev = resp.Header.Revision
		}
		return resp, err
	}
	opts = append(opts, clientv3.WithRev(t.rev))
	resp, err := t.e.cli.Get(ctx, key, append(opts, clientv3.WithSerializable())...)
	if errors.Is(err, rpctypes.ErrFutureRev) {
		resp, err = t.e.cli.Get(ctx, key, opts...)
	}
	return resp, err
}

func (t *etcdTx) put(key string, value []byte) {
	v := append([]byte{}, value...)
	t.writes[key] = &v
}

// commit applies the writes if nothing read changed since the snapshot:
// every key read keeps its ModRevision, every range walked has no key
// modified or added after the snapshot. false: a conflict, run again.
func (t *etcdTx) commit() (bool, error) {
	if len(t.writes) == 0 {
		return true, nil
	}
	if len(t.writes) > t.e.maxOps {
		return false, fmt.Errorf("transaction too large: %d writes, etcd allows %d", len(t.writes), t.e.maxOps)
	}
	var cmps []clientv3.Cmp
	for k, mod := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", mod))
	}
	for _, r := range t.ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r[0]), "<", t.rev+1).WithRange(r[1]))
	}
	if len(cmps) > t.e.maxOps { // coarser: nothing in the data changed
		d := t.e.prefix + etcdData
		cmps = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(d), "<", t.rev+1).WithRange(clientv3.GetPrefixRangeEnd(d))}
	}
	ops := make([]clientv3.Op, 0, len(t.writes))
	for k, w := range t.writes {
		if w == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(*w)))
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.e.timeout)
	defer cancel()
	resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, unavailable(err)
	}
	return resp.Succeeded, nil
}

type etcdBucket struct {
	t    *etcdTx
	name []byte
	pre  string // prefix of the bucket's keys
}

func (b *etcdBucket) Get(key []byte) []byte { return b.t.get(b.pre + string(key)) }

func (b *etcdBucket) Put(key, value []byte) error {
	b.t.put(b.pre+string(key), value)
	return nil
}

func (b *etcdBucket) Delete(key []byte) error {
	b.t.writes[b.pre+string(key)] = nil
	return nil
}

func (b *etcdBucket) seqKey() string { return strings.TrimSuffix(b.pre, "/") }

func (b *etcdBucket) Sequence() uint64 {
	raw := b.t.get(b.seqKey())
	if len(raw) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(raw)
}

func (b *etcdBucket) SetSequence(v uint64) error {
	b.t.put(b.seqKey(), u64(v))
	return nil
}

func (b *etcdBucket) NextSequence() (uint64, error) {
	v := b.Sequence() + 1
	if b.t.err != nil {
		return 0, unavailable(b.t.err)
	}
	return v, b.SetSequence(v)
}

func (b *etcdBucket) Cursor() cursor { return &etcdCursor{b: b} }

// cursorPage is how many keys a cursor reads from etcd at once.
const cursorPage = 100

// etcdCursor merges the snapshot's keys (read a page at a time) with the
// transaction's own writes, which it sees even when made during the walk.
type etcdCursor struct {
	b    *etcdBucket
	page [][2][]byte // full keys and values from etcd, sorted
	more bool        // etcd has keys after the page
	last string      // the full key returned last ("": none yet)
	from string      // the walk's start (full key)
}

func (c *etcdCursor) First() ([]byte, []byte) { return c.Seek(nil) }

func (c *etcdCursor) Seek(seek []byte) ([]byte, []byte) {
	c.from, c.last, c.page, c.more = c.b.pre+string(seek), "", nil, false
	c.fetch(c.from)
	return c.Next()
}

// walked records that the walk read every key from its start to end
// (excluded): a write another node makes there voids the transaction,
// one made further on does not.
func (c *etcdCursor) walked(end string) { c.b.t.ranges[c] = [2]string{c.from, end} }

// fetch reads the page of keys from start (included).
func (c *etcdCursor) fetch(start string) {
	t := c.b.t
	c.page, c.more = nil, false
	if t.err != nil {
		return
	}
	resp, err := t.read(start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(c.b.pre)),
		clientv3.WithLimit(cursorPage), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		t.err = err
		return
	}
	for _, kv := range resp.Kvs {
		c.page = append(c.page, [2][]byte{kv.Key, kv.Value})
	}
	c.more = resp.More
}

func (c *etcdCursor) Next() ([]byte, []byte) {
	t := c.b.t
	for t.err == nil {
		// The next snapshot key after last.
		for len(c.page) > 0 && c.last != "" && string(c.page[0][0]) <= c.last {
			c.page = c.page[1:]
		}
		if len(c.page) == 0 && c.more {
			c.fetch(c.last + "\x00")
			continue
		}
		var snap string
		if len(c.page) > 0 {
			snap = string(c.page[0][0])
		}
		// The next written key after last.
		var wrote string
		for k := range t.writes {
			if strings.HasPrefix(k, c.b.pre) && k >= c.from && (c.last == "" || k > c.last) && (wrote == "" || k < wrote) {
				wrote = k
			}
		}
		switch {
		case snap == "" && wrote == "":
			c.walked(clientv3.GetPrefixRangeEnd(c.b.pre))
			return nil, nil
		case wrote != "" && (snap == "" || wrote <= snap):
			c.last = wrote
			c.walked(wrote + "\x00")
			if w := t.writes[wrote]; w != nil {
				return []byte(wrote[len(c.b.pre):]), *w
			}
		default:
			c.last = snap
			c.walked(snap + "\x00")
			return []byte(snap[len(c.b.pre):]), c.page[0][1]
		}
	}
	return nil, nil
}

// Node-wide leased keys: dossier locks and mail claims.

// leases keeps one lease of this node alive; a node that dies (or loses
// etcd) stops renewing it, and its keys vanish after the TTL.
type leases struct {
	cli     *clientv3.Client
	ttl     time.Duration
	timeout time.Duration
	node    string // this process, as written in its keys
	ctx     context.Context
	stop    context.CancelFunc

	mu   sync.Mutex
	id   clientv3.LeaseID
	done chan struct{} // closed when the keepalive of id ends
}

func newLeases(cli *clientv3.Client, ttl, timeout time.Duration) *leases {
	var b [8]byte
	rand.Read(b[:])
	ctx, stop := context.WithCancel(context.Background())
	return &leases{cli: cli, ttl: ttl, timeout: timeout, node: strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 36), ctx: ctx, stop: stop}
}

// lease returns a live lease of this node, granting a new one when the
// last expired (etcd unreachable longer than the TTL).
func (l *leases) lease(ctx context.Context) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		select {
		case <-l.done:
		default:
			return l.id, nil
		}
	}
	g, err := l.cli.Grant(ctx, int64((l.ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	ch, err := l.cli.KeepAlive(l.ctx, g.ID)
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	l.id, l.done = g.ID, done
	return g.ID, nil
}

func (l *leases) close() { l.stop() }

// acquire puts key with this node's lease unless another node holds it;
// true when this node holds it afterwards.
func (e *etcdEngine) acquire(ctx context.Context, key string) (bool, error) {
	id, err := e.leases.lease(ctx)
	if err != nil {
		return false, unavailable(err)
	}
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, e.leases.node, clientv3.WithLease(id))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return false, unavailable(err)
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) == 1 && string(kvs[0].Value) == e.leases.node && clientv3.LeaseID(kvs[0].Lease) == id, nil
}

// releaseKey deletes key if this node holds it.
func (e *etcdEngine) releaseKey(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	_, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", e.leases.node)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Lock holds login's dossier for one session on this node: flow.ErrBusy
// when a session on any node has it. The lock ends with release, or
// within the lease TTL when this node dies.
func (db *DB) Lock(login string) (release func(), err error) {
	if db.etcd == nil {
		return func() {}, nil
	}
	e := db.etcd
	key := e.prefix + etcdLock + login
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	ok, err := e.acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, flow.ErrBusy
	}
	return func() { e.releaseKey(key) }, nil
}

// claim keeps the mails another node is sending: on etcd, due keeps only
// the mails this node could claim.
func (db *DB) claim(due []flow.Mail) ([]flow.Mail, error) {
	if db.etcd == nil {
		return due, nil
	}
	e := db.etcd
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	var out []flow.Mail
	for _, m := range due {
		ok, err := e.acquire(ctx, e.prefix+etcdClaim+string(u64(m.ID)))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// unclaim frees the claim on mail id once its attempt is recorded.
func (db *DB) unclaim(id uint64) {
	if db.etcd != nil {
		db.etcd.releaseKey(db.etcd.prefix + etcdClaim + string(u64(id)))
	}
}

// Changes sends the login of every dossier written through any node,
// until ctx ends (etcd: a watch; bbolt: nothing, the only node knows).
// Slow readers miss changes, never block the watch.
func (db *DB) Changes(ctx context.Context) <-chan string {
	out := make(chan string, 64)
	if db.etcd == nil {
		close(out)
		return out
	}
	e := db.etcd
	pre := e.prefix + etcdData + string(bucketDossiers) + "/"
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			// A watch survives member changes; it ends on compaction of its
			// revision or when the client closes: start another.
			for resp := range e.cli.Watch(clientv3.WithRequireLeader(ctx), pre, clientv3.WithPrefix()) {
				for _, ev := range resp.Events {
					select {
					case out <- strings.TrimPrefix(string(ev.Kv.Key), pre):
					default:
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return out
}
