package storage_test

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"activated/internal/etcdtest"
	"activated/storage"
	"activated/storage/storagetest"
)

// One three-member cluster serves every test of the binary, started at
// the first test that needs it; each test has its own prefix.
var (
	clusterOnce sync.Once
	cluster     *etcdtest.Cluster
	clusterErr  error
	stopCluster = func() {}
	prefixes    atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

func etcdCluster(t testing.TB) *etcdtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, stopCluster, clusterErr = etcdtest.Shared() })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

// openEtcd opens a store under a fresh prefix, and returns a function that
// opens another node's handle on it.
func openEtcd(t testing.TB) (*storage.DB, func() *storage.DB) {
	c := etcdCluster(t)
	cfg := storage.EtcdConfig{Endpoints: c.Endpoints(), Prefix: fmt.Sprintf("/test%d/", prefixes.Add(1))}
	node := func() *storage.DB {
		db, err := storage.OpenEtcd(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return node(), node
}

// TestEtcdContract runs the storage contract against a real three-member
// etcd cluster.
func TestEtcdContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (*storage.DB, func() *storage.DB) { return openEtcd(t) })
}
