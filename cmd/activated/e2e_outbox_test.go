package main

import (
	"testing"
	"time"

	"activated/internal/etcdtest"
	"activated/internal/flowtest"
	"activated/internal/slapd/slapdtest"
)

// activated_outbox_queued follows the outbox while the service runs: a
// code mail the relay cannot take stays queued and the gauge says so (the
// "outbox stuck" alert and the troubleshooting table rely on it).
func TestE2EOutboxGaugeFollowsQueue(t *testing.T) {
	outboxGaugeFollowsQueue(t, newHarness(t))
}

// On etcd too, where other nodes change the outbox as well: the gauge is
// read from the outbox every queueEvery.
func TestE2EOutboxGaugeFollowsQueueOnEtcd(t *testing.T) {
	cluster, err := etcdtest.Start(t.TempDir(), 1)
	must(t, err)
	t.Cleanup(cluster.Close)
	h := &harness{t: t, dir: t.TempDir(), logs: &flowtest.Buffer{}, opts: options{queueEvery: 100 * time.Millisecond}, tweak: func(c *Config) {
		c.Storage.Backend = "etcd"
		c.Storage.EtcdEndpoints = cluster.Endpoints()
	}}
	h.ldap = slapdtest.Start(t, e2eAccounts()...)
	h.setup(harnessLDAP{URL: h.ldap.URL, BindDN: h.ldap.ServiceDN, BindPassword: h.ldap.ServicePassword, PeopleDN: h.ldap.PeopleDN})
	outboxGaugeFollowsQueue(t, h)
}

func outboxGaugeFollowsQueue(t *testing.T, h *harness) {
	must(t, h.smtp.Stop())
	h.waitMetric(`activated_outbox_queued`, 0)
	p := h.openPlain("activate", "en")
	p.waitPrompt("Login")
	p.answer("jdupont")
	p.waitPrompt("Code from the mail")
	h.waitMetric(`activated_mails_failed_total{kind="recovery"}`, 1)
	h.waitMetric(`activated_outbox_queued`, 1)
}
