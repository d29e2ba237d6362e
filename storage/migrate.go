package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// copyBatch is how many keys one etcd transaction of CopyToEtcd writes.
const copyBatch = 100

// CopyStats counts what CopyToEtcd did.
type CopyStats struct{ Copied, Present int }

// CopyToEtcd copies the bbolt database at path (stopped: its file is
// locked while open) into the etcd store cfg names, with its secret, so
// that codes already mailed keep working. A key already in etcd is left
// as it is and counted Present: running it twice copies nothing the
// second time, and never overwrites what nodes wrote since. Run it before
// the nodes first start on etcd: a node that started first created
// another secret, and the copy is refused.
func CopyToEtcd(path string, cfg EtcdConfig) (CopyStats, error) {
	var st CopyStats
	src, err := Open(path, Options{})
	if err != nil {
		return st, err
	}
	defer src.Close()
	// The secret goes first, so that OpenEtcd finds it rather than
	// creating one.
	tmp, err := openEtcdClient(cfg)
	if err != nil {
		return st, err
	}
	secret, err := tmp.putIfAbsent(tmp.prefix+etcdSecret, src.keys.secret)
	tmp.close()
	if err != nil {
		return st, fmt.Errorf("etcd %s: %w", cfg.Prefix, err)
	}
	if !bytes.Equal(secret, src.keys.secret) {
		return st, fmt.Errorf("etcd %s already holds another code secret (did a node start on it before the copy?): "+
			"nothing was copied; stop the nodes, delete the prefix (etcdctl del --prefix %s) and copy again", cfg.Prefix, cfg.Prefix)
	}
	dst, err := OpenEtcd(cfg)
	if err != nil {
		return st, err
	}
	defer dst.Close()
	e := dst.etcd
	// Every bucket but meta (etcd has its own schema version), whatever
	// indexes this version keeps.
	err = src.bolt.View(func(btx *bolt.Tx) error {
		return btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.Equal(name, bucketMeta) {
				return nil
			}
			var batch [][2][]byte
			flush := func() error {
				n, err := e.putAbsent(name, batch)
				st.Copied += n
				st.Present += len(batch) - n
				batch = batch[:0]
				return err
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				batch = append(batch, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				if len(batch) == copyBatch {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := flush(); err != nil {
				return err
			}
			return e.raiseSequence(name, b.Sequence())
		})
	})
	if err != nil {
		return st, fmt.Errorf("copy %s to etcd %s: %w", path, cfg.Prefix, err)
	}
	return st, nil
}

// putAbsent writes the keys of bucket b that etcd does not hold yet, in
// one transaction, and returns how many.
func (e *etcdEngine) putAbsent(b []byte, kvs [][2][]byte) (int, error) {
	if len(kvs) == 0 {
		return 0, nil
	}
	for range maxAttempts {
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		// The keys etcd holds from the batch's first to its last (kvs is
		// in key order).
		got, err := e.cli.Get(ctx, e.key(b, kvs[0][0]), clientv3.WithRange(e.key(b, kvs[len(kvs)-1][0])+"\x00"), clientv3.WithKeysOnly())
		if err != nil {
			cancel()
			return 0, unavailable(err)
		}
		held := map[string]bool{}
		for _, kv := range got.Kvs {
			held[string(kv.Key)] = true
		}
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, kv := range kvs {
			key := e.key(b, kv[0])
			if !held[key] {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
				ops = append(ops, clientv3.OpPut(key, string(kv[1])))
			}
		}
		if len(ops) == 0 {
			cancel()
			return 0, nil
		}
		resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			return 0, unavailable(err)
		}
		if resp.Succeeded {
			return len(ops), nil
		}
	}
	return 0, errors.New("keys kept changing while copied")
}

// raiseSequence makes the sequence of bucket b at least v.
func (e *etcdEngine) raiseSequence(b []byte, v uint64) error {
	return e.update(func(t kvTx) error {
		bk := t.Bucket(b)
		if bk.Sequence() >= v {
			return nil
		}
		return bk.SetSequence(v)
	})
}
