// Package storage owns the bbolt database of activated: dossiers, codes
// (kept only as an HMAC under a secret stored beside the database), the
// sealed mail outbox, the append-only audit log, and the schema version with
// the migrations run at Open. It implements flow.Store and the outbox queue
// the mail worker uses; it knows nothing of SSH, terminals or LDAP.
package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"activated/flow"
)

// Bucket names.
var (
	bucketDossiers = []byte("dossiers") // login → JSON flow.Dossier
	bucketCodes    = []byte("codes")    // HMAC(code) → JSON flow.Code
	bucketCodeIdx  = []byte("codeidx")  // login 0x00 purpose → HMAC of the live code
	bucketOutbox   = []byte("outbox")   // BE uint64 id → sealed JSON flow.Mail
	bucketMailIdx  = []byte("mailidx")  // login 0x00 BE id → nothing
	bucketQueue    = []byte("queue")    // BE id of every queued mail → its login (empty: not yet in queueidx)
	bucketQueueIdx = []byte("queueidx") // login 0x00 BE id of every queued mail → nothing
	bucketAudit    = []byte("audit")    // BE uint64 seq → JSON flow.Event
	bucketAuditIdx = []byte("auditidx") // login 0x00 BE seq → nothing (since v2)
	bucketMeta     = []byte("meta")     // "version" → BE uint64

	keyVersion = []byte("version")
)

// migrations[v] brings a database from schema version v to v+1; the
// current version is len(migrations).
var migrations = []func(*bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDossiers, bucketCodes, bucketCodeIdx,
			bucketOutbox, bucketMailIdx, bucketQueue, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	1: indexAudit,
}

// indexAudit (v1 → v2) creates the per-login audit index and fills it
// with every event already logged.
func indexAudit(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketAuditIdx)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketAuditIdx, err)
	}
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e flow.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("index audit event %x: %w", k, err)
		}
		if err := idx.Put(idxKey(e.Login, k), nil); err != nil {
			return fmt.Errorf("index audit event %x: %w", k, err)
		}
	}
	return nil
}

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock (default 1s).
	Timeout time.Duration
	// QueueChanged, if set, is told after each commit by how much the
	// number of queued mails changed (enqueued, delivered, given up,
	// cancelled); QueueLen gives the number to start from.
	QueueChanged func(delta int)
}

// DB is the open database. It is safe for concurrent use.
type DB struct {
	path     string   // the file, or "etcd <prefix>": what messages name
	bolt     *bolt.DB // nil on etcd
	eng      engine
	etcd     *etcdEngine // nil on bbolt
	keys     *keys
	enqueued chan struct{}
	opts     Options
}

var _ flow.Store = (*DB)(nil)

// Open opens the database at path, creating it (0600, parent directory
// 0700) and its secret file (path + ".secret") when missing, and runs the
// migrations.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := checkModes(path); err != nil {
		return nil, err
	}
	k, err := loadKeys(path)
	if err != nil {
		return nil, err
	}
	// The free-page list is not written at each commit (as etcd does): a
	// commit writes fewer pages, and an open after a crash rebuilds the
	// list by reading the file. A database written either way opens either
	// way (TestFreelistNotWritten).
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("database %s is in use by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	b.MaxBatchDelay = 2 * time.Millisecond // a login step waits this long at most for company
	db := &DB{path: path, bolt: b, eng: boltEngine{b}, keys: k, enqueued: make(chan struct{}, 1), opts: opts}
	if err := db.migrate(); err != nil {
		b.Close()
		return nil, err
	}
	if err := db.indexQueue(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// checkModes refuses, like the host key's, a database directory the group
// or others can write to (they could replace the database or its secret)
// and an existing database they can read (names, addresses, the audit).
func checkModes(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("database directory %s has mode %04o: the group or others can write to it and could replace the database or its secret; run: chmod go-w %s", dir, perm, dir)
	}
	st, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("database %s has mode %04o: the group or others can access it; run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// indexQueue fills the queueidx index for queued mails written before it
// existed (their queue value is empty): the only ones it has to unseal.
func (db *DB) indexQueue() error {
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		if _, err := btx.CreateBucketIfNotExists(bucketQueueIdx); err != nil {
			return err
		}
		t := &tx{db: db, btx: boltTx{btx}}
		var todo []uint64
		c := btx.Bucket(bucketQueue).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 0 {
				todo = append(todo, binary.BigEndian.Uint64(k))
			}
		}
		for _, id := range todo {
			m, err := t.mail(id)
			if err != nil {
				return err
			}
			if err := t.putMail(m); err != nil {
				return fmt.Errorf("mail %d: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("database %s: index queued mails: %w", db.path, err)
	}
	return nil
}

// migrate runs every missing migration in one transaction.
func (db *DB) migrate() error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		var v uint64
		if raw := meta.Get(keyVersion); raw != nil {
			if len(raw) != 8 {
				return fmt.Errorf("corrupt schema version (%d bytes)", len(raw))
			}
			v = binary.BigEndian.Uint64(raw)
		}
		known := uint64(len(migrations))
		if v > known {
			return fmt.Errorf("schema version %d is newer than this program knows (%d): run a newer activated", v, known)
		}
		if v == known {
			return nil
		}
		for ; v < known; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		return meta.Put(keyVersion, u64(known))
	})
	if err != nil {
		return fmt.Errorf("database %s: %w", db.path, err)
	}
	return nil
}

// Close closes the database file.
func (db *DB) Close() error {
	if err := db.eng.close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// Update runs fn in one read-write transaction, committed when fn returns
// nil. After a commit in which fn called Enqueue, Enqueued is signalled.
func (db *DB) Update(fn func(flow.Tx) error) error {
	var t *tx
	var fnErr error
	err := db.eng.update(func(k kvTx) error {
		t = &tx{db: db, btx: k}
		fnErr = fn(t)
		return fnErr
	})
	if err != nil {
		if fnErr != nil && err == fnErr {
			return fnErr
		}
		return fmt.Errorf("commit %s: %w", db.path, err)
	}
	if t.enqueued {
		select {
		case db.enqueued <- struct{}{}:
		default:
		}
	}
	db.committed(t)
	return nil
}

// committed reports a committed transaction's change of the queue.
func (db *DB) committed(t *tx) {
	if t.queued != 0 && db.opts.QueueChanged != nil {
		db.opts.QueueChanged(t.queued)
	}
}

// QueueLen is the number of mails queued now.
func (db *DB) QueueLen() (int, error) {
	var n int
	err := db.eng.view(func(btx kvTx) error {
		c := btx.Bucket(bucketQueue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// Batch is Update for many concurrent callers: their fns share one
// transaction and one commit (bbolt's Batch, at most a few milliseconds
// apart). fn may run more than once, so it must only act through its Tx.
func (db *DB) Batch(fn func(flow.Tx) error) error {
	if db.bolt == nil { // etcd: a node's transactions run one at a time anyway
		return db.Update(fn)
	}
	var enqueued atomic.Bool
	var fnErr error
	var t *tx // the run of fn that was committed
	err := db.bolt.Batch(func(btx *bolt.Tx) error {
		t = &tx{db: db, btx: boltTx{btx}}
		fnErr = fn(t)
		if fnErr == nil && t.enqueued {
			enqueued.Store(true)
		}
		return fnErr
	})
	if err != nil {
		if fnErr != nil {
			return fnErr
		}
		return fmt.Errorf("commit %s: %w", db.path, err)
	}
	if enqueued.Load() {
		select {
		case db.enqueued <- struct{}{}:
		default:
		}
	}
	db.committed(t)
	return nil
}

// View runs fn in one read-only transaction.
func (db *DB) View(fn func(flow.Tx) error) error {
	return db.eng.view(func(k kvTx) error {
		return fn(&tx{db: db, btx: k})
	})
}

// Enqueued is signalled (buffer of one) after a committed Update that
// added a mail to the outbox.
func (db *DB) Enqueued() <-chan struct{} { return db.enqueued }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
