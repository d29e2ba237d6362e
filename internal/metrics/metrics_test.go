package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// /readyz names the first check that fails, and why; /healthz does not
// depend on them; every SPEC series is there from the start.
func TestHandler(t *testing.T) {
	m := New("1.2.3")
	var ldapErr error
	h := m.Handler(
		Check{Name: "storage", Run: func(context.Context) error { return nil }},
		Check{Name: "ldap", Run: func(context.Context) error { return ldapErr }},
	)
	if code, body := get(t, h, "/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz all up: %d %q", code, body)
	}
	ldapErr = errors.New("dial tcp 127.0.0.1:389: connection refused")
	if code, body := get(t, h, "/readyz"); code != 503 || body != "ldap: dial tcp 127.0.0.1:389: connection refused\n" {
		t.Errorf("/readyz ldap down: %d %q", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	m.QueueChanged(3)
	m.QueueChanged(-1)
	_, body := get(t, h, "/metrics")
	for _, line := range []string{
		`activated_ssh_connections_total{outcome="tui"} 0`,
		`activated_sessions_active{kind="staff"} 0`,
		`activated_step_entered_total{step="verify-redirect"} 0`,
		`activated_activations_total 0`,
		`activated_mails_sent_total{kind="invitation"} 0`,
		`activated_mails_failed_total{kind="redirect"} 0`,
		`activated_outbox_queued 2`,
		`activated_ldap_errors_total 0`,
		`activated_build_info{goversion="`,
		`version="1.2.3"} 1`,
		"\ngo_goroutines ",
		"\nprocess_open_fds ",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("no %q in /metrics", line)
		}
	}
}
