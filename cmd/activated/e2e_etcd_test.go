package main

// The end-to-end test of several nodes: three etcd members (embedded in
// this process), node B is the harness's server, node A is another
// process of this test binary running `activated serve` on the same
// config, killed with SIGKILL mid-walk.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/internal/etcdtest"
	"activated/internal/flowtest"
	"activated/internal/slapd/slapdtest"
)

// nodeEnv names the config a child of the test binary serves.
const nodeEnv = "E2E_NODE_CONFIG"

// serveNode is `activated serve -config path` with a lease of a second.
func serveNode(path string) int {
	cfg, err := LoadConfig(path, nil)
	if err == nil {
		var a *app
		if a, err = newApp(cfg, nodeOptions, newLogger(os.Stderr, cfg.Log), io.Discard); err == nil {
			err = a.run(context.Background(), nil)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		return 1
	}
	return 0
}

// nodeOptions: a dead node's locks expire after a second.
var nodeOptions = options{etcdLeaseTTL: time.Second}

// node is another `activated serve` process.
type node struct {
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startNode runs `activated serve` on cfg in a child process and waits
// until it listens.
func startNode(t *testing.T, cfg *Config) *node {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.toml")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	must(t, err)
	must(t, toml.NewEncoder(f).Encode(cfg))
	must(t, f.Close())
	n := &node{cmd: exec.Command(os.Args[0])}
	n.cmd.Env = append(os.Environ(), nodeEnv+"="+path)
	stderr, err := n.cmd.StderrPipe()
	must(t, err)
	must(t, n.cmd.Start())
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		if t.Failed() {
			n.mu.Lock()
			t.Logf("node A log:\n%s", n.log.String())
			n.mu.Unlock()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		close(ready)
	}()
	select {
	case addr, ok := <-ready:
		if !ok {
			t.Fatalf("node A exited before listening:\n%s", n.log.String())
		}
		n.addr = addr
	case <-time.After(waitLimit):
		t.Fatalf("node A not listening after %s", waitLimit)
	}
	return n
}

// dialAt opens an SSH connection to addr as user and returns the host
// key the server showed.
func dialAt(t *testing.T, addr, user string) (*gossh.Client, gossh.PublicKey) {
	t.Helper()
	var key gossh.PublicKey
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: user, Timeout: waitLimit,
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error { key = k; return nil }})
	must(t, err)
	return c, key
}

// waitForAny waits until the screen shows one of texts, and returns it.
func (tm *term) waitForAny(texts ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		for _, x := range texts {
			if strings.Contains(s, x) {
				return s
			}
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen never showed any of %q; it shows:\n%s", texts, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openUntil opens a session as user on addr until its screen shows want,
// closing the ones that show busy (the other node's lock has not expired
// yet).
func openUntil(t *testing.T, h *harness, addr, user, want, busy string) *term {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c, _ := dialAt(t, addr, user)
		tm := h.termOn(c, user, 80, 24, "en_US.UTF-8")
		if strings.Contains(tm.waitForAny(want, busy), want) {
			return tm
		}
		tm.close()
		if time.Now().After(deadline) {
			t.Fatalf("still %q after %s", busy, waitLimit)
		}
	}
}

// TestE2ETwoNodesOnEtcd is the done-when of several nodes: a walk on node
// A, A killed (SIGKILL) and one etcd member stopped, the user resumes on
// node B at the same step with the code, finishes and binds; one mail of
// each kind; one dossier open on two nodes at once is refused on the
// second; without quorum the user is told the service is unavailable,
// and nothing is lost once it is back.
func TestE2ETwoNodesOnEtcd(t *testing.T) {
	cluster, err := etcdtest.Start(t.TempDir(), 3)
	must(t, err)
	t.Cleanup(cluster.Close)
	h := &harness{t: t, dir: t.TempDir(), logs: &flowtest.Buffer{}, opts: nodeOptions, tweak: func(c *Config) {
		c.Storage.Backend = "etcd"
		c.Storage.EtcdEndpoints = cluster.Endpoints()
		c.Storage.EtcdTimeout = Duration{2 * time.Second}
	}}
	h.ldap = slapdtest.Start(t, e2eAccounts()...)
	h.setup(harnessLDAP{URL: h.ldap.URL, BindDN: h.ldap.ServiceDN, BindPassword: h.ldap.ServicePassword, PeopleDN: h.ldap.PeopleDN})
	a := startNode(t, h.cfg)
	const busy, unavailable = "open in another session", "unavailable for a moment"
	u := wizardAlex

	// Steps 1 to 3 on node A; both nodes show one host key.
	ca, keyA := dialAt(t, a.addr, "activate")
	cb, keyB := dialAt(t, h.addr, "activate")
	cb.Close()
	if !bytes.Equal(keyA.Marshal(), keyB.Marshal()) {
		t.Error("the two nodes show different host keys")
	}
	tmA := h.termOn(ca, "activate", 80, 24, "en_US.UTF-8")
	code := wizardWalk(h, tmA, u, flow.StepLogin, flow.StepDirectory)
	tmA.waitFor(wizardScreen(flow.StepDirectory))

	// The same dossier on node B meanwhile: refused.
	cb, _ = dialAt(t, h.addr, code)
	tmB := h.termOn(cb, code, 80, 24, "en_US.UTF-8")
	tmB.waitFor(busy)
	tmB.close()

	// Node A dies, one etcd member with it; the user goes on on node B,
	// at step 4, once A's lock has expired.
	a.cmd.Process.Kill()
	a.cmd.Wait()
	cluster.Stop(0)
	tm := openUntil(t, h, h.addr, code, wizardScreen(flow.StepDirectory), busy)
	wizardWalk(h, tm, u, flow.StepDirectory, flow.StepDone)
	tm.waitFor(wizardScreen(flow.StepDone))
	tm.close()
	wizardCheckActive(h, u)
	h.waitMail(u.recovery, 1) // the activation notice
	kinds := map[string]int{}
	for _, m := range h.mailsTo(u.recovery) {
		kinds[m.Subject]++
	}
	if len(kinds) != 2 {
		t.Errorf("mails to %s: %v, want a code and a notice", u.recovery, kinds)
	}
	for subject, n := range kinds {
		if n != 1 {
			t.Errorf("%d mails %q, want one", n, subject)
		}
	}

	// Without quorum: the unavailable message, nothing written.
	cluster.Stop(1)
	tmQ := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	tmQ.waitFor(wizardScreen(flow.StepLogin))
	tmQ.send(wizardJeanne.login, keyEnter)
	tmQ.waitFor(unavailable)
	tmQ.close()
	must(t, cluster.RestartAll())
	deadline := time.Now().Add(waitLimit)
	for {
		tmQ = h.openTerm("activate", 80, 24, "en_US.UTF-8")
		tmQ.waitFor(wizardScreen(flow.StepLogin))
		tmQ.send(wizardJeanne.login, keyEnter)
		s := tmQ.waitForAny(wizardScreen(flow.StepRecoveryCode), unavailable)
		tmQ.close()
		if strings.Contains(s, wizardScreen(flow.StepRecoveryCode)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unavailable %s after the quorum came back", waitLimit)
		}
	}
	h.code(wizardJeanne.recovery, 0)
	var d flow.Dossier
	must(t, h.app.db.View(func(tx flow.Tx) error {
		var err error
		d, err = tx.Dossier(u.login)
		return err
	}))
	if d.Activated.IsZero() || !d.CharterAcceptedAt.Before(d.Activated) {
		t.Errorf("%s after the outage: %+v", u.login, d)
	}
}
