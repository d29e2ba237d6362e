package storage

import (
	bolt "go.etcd.io/bbolt"
)

// The rules of tx.go and outbox.go are written once, over buckets of
// ordered keys; an engine provides them: bbolt (one file, one node) or
// etcd (a cluster, several nodes).

// bucket is an ordered key space, as bbolt's.
type bucket interface {
	// Get returns nil when key is absent.
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() cursor
	NextSequence() (uint64, error)
	Sequence() uint64
	SetSequence(v uint64) error
}

// cursor walks a bucket in key order; a nil key is the end.
type cursor interface {
	First() (key, value []byte)
	Next() (key, value []byte)
	Seek(seek []byte) (key, value []byte)
}

// kvTx is one transaction of an engine.
type kvTx interface{ Bucket(name []byte) bucket }

// engine runs transactions. update may run fn more than once (etcd retries
// on a conflict with another node): fn must start from what it reads.
type engine interface {
	update(fn func(kvTx) error) error
	view(fn func(kvTx) error) error
	close() error
}

// boltEngine is the bbolt file.
type boltEngine struct{ db *bolt.DB }

func (e boltEngine) update(fn func(kvTx) error) error {
	return e.db.Update(func(btx *bolt.Tx) error { return fn(boltTx{btx}) })
}

func (e boltEngine) view(fn func(kvTx) error) error {
	return e.db.View(func(btx *bolt.Tx) error { return fn(boltTx{btx}) })
}

func (e boltEngine) close() error { return e.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) bucket { return boltBucket{t.tx.Bucket(name)} }

type boltBucket struct{ *bolt.Bucket }

func (b boltBucket) Cursor() cursor { return b.Bucket.Cursor() }
