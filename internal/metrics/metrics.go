// Package metrics counts what the service does, for Prometheus, and serves
// /metrics, /healthz and /readyz on the operator's listener. Each package
// that has something to count declares a small hook in its own options
// (sshapp.Config.Metrics, flow.Config.Metrics, mailer.WorkerOptions.Metrics,
// directory.Config.Metrics, storage.Options.QueueChanged); *Metrics
// implements them all. No label carries a login, an address or a code: the
// label values are outcomes, step names, session kinds and mail kinds.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"activated/flow"
)

// Metrics holds every series of the service on a registry of its own.
type Metrics struct {
	reg         *prometheus.Registry
	connections *prometheus.CounterVec
	sessions    *prometheus.GaugeVec
	steps       *prometheus.CounterVec
	activations prometheus.Counter
	sent        *prometheus.CounterVec
	failed      *prometheus.CounterVec
	queued      prometheus.Gauge
	ldapErrors  prometheus.Counter
}

// New registers the service's metrics, the Go runtime and process
// collectors, and activated_build_info for version.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activated_ssh_connections_total",
			Help: "SSH connections closed, by outcome (tui, plain, staff-exit-N, explained, auth-refused, no-auth, no-session, penalized, busy, ...).",
		}, []string{"outcome"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "activated_sessions_active",
			Help: "SSH sessions open now, by kind (tui, plain, staff).",
		}, []string{"kind"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activated_step_entered_total",
			Help: "Times a user reached a step of the procedure (login: a wizard started without a code; the others: a dossier moved on to it).",
		}, []string{"step"}),
		activations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activated_activations_total",
			Help: "Accounts activated (written to LDAP and recorded).",
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activated_mails_sent_total",
			Help: "Mails the SMTP server (or maildir) accepted, by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "activated_mails_failed_total",
			Help: "Delivery attempts that failed, by kind (a mail retried counts at each failed attempt).",
		}, []string{"kind"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "activated_outbox_queued",
			Help: "Mails waiting in the outbox.",
		}),
		ldapErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "activated_ldap_errors_total",
			Help: "LDAP operations that failed: directory unreachable, timed out, or an unexpected error (a password the policy refuses is not one).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "activated_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.connections, m.sessions, m.steps, m.activations, m.sent, m.failed, m.queued, m.ldapErrors, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The series a dashboard plots exist from the start, at 0 (the
	// outcomes of a normal day; the others appear when they happen).
	for _, o := range []string{"tui", "plain", "staff-exit-0", "explained", "auth-refused", "no-auth"} {
		m.connections.WithLabelValues(o)
	}
	for _, k := range []string{"tui", "plain", "staff"} {
		m.sessions.WithLabelValues(k)
	}
	for s := flow.StepLogin; s <= flow.StepDone; s++ {
		m.steps.WithLabelValues(s.String())
	}
	for _, k := range []flow.MailKind{flow.MailInvitation, flow.MailRecovery, flow.MailRedirect, flow.MailActivated, flow.MailAlreadyActive} {
		m.sent.WithLabelValues(string(k))
		m.failed.WithLabelValues(string(k))
	}
	return m
}

// ConnectionOutcome counts a closed SSH connection (sshapp).
func (m *Metrics) ConnectionOutcome(outcome string) { m.connections.WithLabelValues(outcome).Inc() }

// SessionOpened counts a session of kind tui, plain or staff as open (sshapp).
func (m *Metrics) SessionOpened(kind string) { m.sessions.WithLabelValues(kind).Inc() }

// SessionClosed counts it closed again (sshapp).
func (m *Metrics) SessionClosed(kind string) { m.sessions.WithLabelValues(kind).Dec() }

// StepEntered counts a user reaching step (flow).
func (m *Metrics) StepEntered(step string) { m.steps.WithLabelValues(step).Inc() }

// Activated counts an activation (flow).
func (m *Metrics) Activated() { m.activations.Inc() }

// Sent counts a mail of kind delivered (mailer).
func (m *Metrics) Sent(kind string) { m.sent.WithLabelValues(kind).Inc() }

// Failed counts a failed delivery attempt of a mail of kind (mailer).
func (m *Metrics) Failed(kind string) { m.failed.WithLabelValues(kind).Inc() }

// SetQueued sets the outbox gauge, once at start from the store.
func (m *Metrics) SetQueued(n int) { m.queued.Set(float64(n)) }

// QueueChanged moves the outbox gauge by delta after a commit (storage).
func (m *Metrics) QueueChanged(delta int) { m.queued.Add(float64(delta)) }

// LDAPError counts a failed LDAP operation (directory).
func (m *Metrics) LDAPError() { m.ldapErrors.Inc() }

// Check is one dependency /readyz asks; a nil error means it answers.
type Check struct {
	Name string
	Run  func(context.Context) error
}

// readyTimeout bounds each readiness check.
const readyTimeout = 5 * time.Second

// Handler serves GET /metrics, /healthz (200 while the process serves) and
// /readyz (200 when every check answers, 503 naming the first that does
// not and why).
func (m *Metrics) Handler(checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		for _, c := range checks {
			if err := c.Run(ctx); err != nil {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "%s: %v\n", c.Name, err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
