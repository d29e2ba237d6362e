package storage_test

import (
	"path/filepath"
	"testing"

	"activated/storage"
	"activated/storage/storagetest"
)

// TestBboltContract runs the storage contract against a real bbolt file.
func TestBboltContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (*storage.DB, func() *storage.DB) {
		db, err := storage.Open(filepath.Join(t.TempDir(), "activated.db"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, func() *storage.DB { return db } // one process holds the file
	})
}
