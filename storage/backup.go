package storage

import (
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WriteTo writes a consistent copy of the whole database to w, from one
// read transaction: writers go on meanwhile.
func (db *DB) WriteTo(w io.Writer) (int64, error) {
	if db.bolt == nil {
		return 0, errors.New("storage.backend = \"etcd\": back up the etcd cluster (etcdctl snapshot save) and the code secret")
	}
	var n int64
	err := db.bolt.View(func(btx *bolt.Tx) error {
		var err error
		n, err = btx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", db.path, err)
	}
	return n, nil
}

// Ping tells whether the database answers (a read transaction opens).
func (db *DB) Ping() error {
	return db.eng.view(func(kvTx) error { return nil })
}

// VerifyCopy opens the database file at path read-only, checks its
// structure and returns the number of dossiers it holds.
func VerifyCopy(path string) (int, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("open copy %s: %w", path, err)
	}
	defer b.Close()
	n := 0
	err = b.View(func(btx *bolt.Tx) error {
		var errs []error
		for err := range btx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		d := btx.Bucket(bucketDossiers)
		if d == nil {
			return errors.New("no dossiers bucket: not an activated database")
		}
		n = d.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", path, err)
	}
	return n, nil
}
