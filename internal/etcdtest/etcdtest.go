// Package etcdtest runs a real etcd cluster inside a test process: three
// members on loopback ports (server/v3/embed), each in a temporary
// directory, with short heartbeats so that elections take milliseconds.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a running cluster. Its methods are safe for concurrent use.
type Cluster struct {
	dir string

	mu      sync.Mutex
	cfgs    []*embed.Config
	members []*embed.Etcd // nil: stopped
}

// Start starts a cluster of n members under dir (a temporary directory the
// caller removes), and waits until it has a leader.
func Start(dir string, n int) (*Cluster, error) {
	c := &Cluster{dir: dir, cfgs: make([]*embed.Config, n), members: make([]*embed.Etcd, n)}
	var initial []string
	for i := range n {
		peer, client, err := freePorts()
		if err != nil {
			return nil, err
		}
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.ListenPeerUrls = []url.URL{{Scheme: "http", Host: peer}}
		cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
		cfg.ListenClientUrls = []url.URL{{Scheme: "http", Host: client}}
		cfg.AdvertiseClientUrls = cfg.ListenClientUrls
		cfg.TickMs, cfg.ElectionMs = 25, 250 // margin for a loaded machine and -race
		cfg.InitialClusterToken = "activated-test"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.UnsafeNoFsync = true // a test cluster: speed over durability
		c.cfgs[i] = cfg
		initial = append(initial, cfg.Name+"="+cfg.ListenPeerUrls[0].String())
	}
	for _, cfg := range c.cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
	}
	// The members wait for each other: start them together.
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.start(i) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		c.Close()
		return nil, first
	}
	return c, nil
}

// freePorts returns two loopback addresses free at the time of the call.
func freePorts() (string, string, error) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs[0], addrs[1], nil
}

func (c *Cluster) start(i int) error {
	c.mu.Lock()
	cfg := c.cfgs[i]
	c.mu.Unlock()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd member %s: %w", cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd member %s: %w", cfg.Name, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return fmt.Errorf("etcd member %s: not ready after 30s", cfg.Name)
	}
	c.mu.Lock()
	c.members[i] = e
	cfg.ClusterState = embed.ClusterStateFlagExisting // a restart rejoins
	c.mu.Unlock()
	return nil
}

// Endpoints are the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, cfg := range c.cfgs {
		out = append(out, cfg.ListenClientUrls[0].String())
	}
	return out
}

// Stop stops member i abruptly (as a crash would, minus the disk).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	e := c.members[i]
	c.members[i] = nil
	c.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts member i again with its data; it rejoins the cluster.
// Restarting two stopped members at once needs both calls concurrently
// when they are the quorum: use RestartAll.
func (c *Cluster) Restart(i int) error { return c.start(i) }

// RestartAll restarts every stopped member, concurrently (a member
// without quorum waits for the others to be ready).
func (c *Cluster) RestartAll() error {
	c.mu.Lock()
	var stopped []int
	for i, e := range c.members {
		if e == nil {
			stopped = append(stopped, i)
		}
	}
	c.mu.Unlock()
	errs := make(chan error, len(stopped))
	for _, i := range stopped {
		go func() { errs <- c.start(i) }()
	}
	var first error
	for range stopped {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Client returns a client of every member; the caller closes it.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// WaitHealthy waits until a write through the cluster succeeds.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	cli, err := c.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Put(rctx, "/etcdtest/health", "ok")
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd cluster not healthy: %w", err)
		}
	}
}

// Close stops every member and removes nothing (dir is the caller's).
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}

// Shared starts one cluster for a whole test binary, in a temporary
// directory; call the returned stop from TestMain after m.Run.
func Shared() (*Cluster, func(), error) {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, nil, err
	}
	c, err := Start(dir, 3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() { c.Close(); os.RemoveAll(dir) }, nil
}
