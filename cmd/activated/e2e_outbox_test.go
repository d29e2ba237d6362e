package main

import "testing"

// activated_outbox_queued follows the outbox while the service runs: a
// code mail the relay cannot take stays queued and the gauge says so (the
// "outbox stuck" alert and the troubleshooting table rely on it).
func TestE2EOutboxGaugeFollowsQueue(t *testing.T) {
	h := newHarness(t)
	must(t, h.smtp.Stop())
	h.waitMetric(`activated_outbox_queued`, 0)
	p := h.openPlain("activate", "en")
	p.waitPrompt("Login")
	p.answer("jdupont")
	p.waitPrompt("Code from the mail")
	h.waitMetric(`activated_mails_failed_total{kind="recovery"}`, 1)
	h.waitMetric(`activated_outbox_queued`, 1)
}
