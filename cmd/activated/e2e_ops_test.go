package main

// What an operator relies on, through the real server: metrics and health,
// JSON logs, systemd notify, the online backup.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"activated/flow"
	"activated/storage"
)

// scrape GETs path on the metrics listener.
func (h *harness) scrape(path string) (int, string) {
	h.t.Helper()
	if h.app.metricsAddr == nil {
		h.t.Fatal("metrics listener off")
	}
	resp, err := http.Get("http://" + h.app.metricsAddr.String() + path)
	must(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(h.t, err)
	return resp.StatusCode, string(b)
}

// metric returns the value of series (name{labels} as Prometheus prints
// it) in a /metrics body.
func metric(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitMetric waits until series has value want.
func (h *harness) waitMetric(series string, want float64) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		_, body := h.scrape("/metrics")
		got, ok := metric(body, series)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s = %v (present: %t), want %v", series, got, ok, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A full activation through the TUI, with a verified redirect, and a staff
// command: each SPEC metric then has the value these events give it.
// /readyz follows slapd down and back up.
func TestE2EMetricsAfterActivation(t *testing.T) {
	h := newHarness(t)
	if code, body := h.scrape("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := h.scrape("/readyz"); code != 200 {
		t.Fatalf("/readyz with everything up: %d %s", code, body)
	}
	tm := h.openTerm("activate", 80, 24, "en_US.UTF-8")
	h.waitMetric(`activated_sessions_active{kind="tui"}`, 1)
	h.walkJeanneTUI(tm)
	h.waitMail("jeanne@perso.example.net", 1) // the activation notice
	tm.close()

	sc := staffDial(h)
	if r := sc.run("", "status jdupont"); r.code != 0 {
		t.Fatalf("status: %d %s", r.code, r.stderr)
	}
	sc.c.Close()

	h.waitMetric(`activated_ssh_connections_total{outcome="tui"}`, 1)
	h.waitMetric(`activated_ssh_connections_total{outcome="staff-exit-0"}`, 1)
	h.waitMetric(`activated_outbox_queued`, 0)
	_, body := h.scrape("/metrics")
	want := map[string]float64{
		`activated_sessions_active{kind="tui"}`:                                     0,
		`activated_sessions_active{kind="plain"}`:                                   0,
		`activated_sessions_active{kind="staff"}`:                                   0,
		`activated_step_entered_total{step="login"}`:                                1,
		`activated_step_entered_total{step="recovery-code"}`:                        1,
		`activated_step_entered_total{step="charter"}`:                              1,
		`activated_step_entered_total{step="directory"}`:                            1,
		`activated_step_entered_total{step="mailbox"}`:                              1,
		`activated_step_entered_total{step="verify-redirect"}`:                      1,
		`activated_step_entered_total{step="password"}`:                             1,
		`activated_step_entered_total{step="done"}`:                                 1,
		`activated_activations_total`:                                               1,
		`activated_mails_sent_total{kind="recovery"}`:                               1,
		`activated_mails_sent_total{kind="redirect"}`:                               1,
		`activated_mails_sent_total{kind="activated"}`:                              1,
		`activated_mails_sent_total{kind="invitation"}`:                             0,
		`activated_mails_failed_total{kind="recovery"}`:                             0,
		`activated_outbox_queued`:                                                   0,
		`activated_ldap_errors_total`:                                               0,
		`activated_build_info{goversion="` + runtime.Version() + `",version="dev"}`: 1,
	}
	for series, v := range want {
		if got, ok := metric(body, series); !ok || got != v {
			t.Errorf("%s = %v (present: %t), want %v", series, got, ok, v)
		}
	}
	for _, name := range []string{"go_goroutines ", "process_resident_memory_bytes ", "process_open_fds "} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("no %s in /metrics", strings.TrimSpace(name))
		}
	}
	for _, secret := range []string{"jdupont", "jeanne", "127.0.0.1"} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics names %q", secret)
		}
	}

	// slapd stops: not ready, and a user's lookup is an LDAP error.
	must(t, h.ldap.Stop())
	code, body := h.scrape("/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "ldap: ") {
		t.Fatalf("/readyz with slapd stopped: %d %q", code, body)
	}
	tm = h.openTerm("activate", 80, 24, "en_US.UTF-8")
	tm.waitFor("Step 1 of 7", "Login")
	tm.send("amartin", keyEnter)
	staffWaitFlat(tm, "The service is unavailable for a moment; nothing is lost.")
	_, body = h.scrape("/metrics")
	if n, _ := metric(body, "activated_ldap_errors_total"); n < 1 {
		t.Errorf("activated_ldap_errors_total = %v during the outage", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	must(t, h.ldap.Restart(ctx))
	if code, body := h.scrape("/readyz"); code != 200 {
		t.Fatalf("/readyz with slapd back: %d %s", code, body)
	}
}

// With log.format = "json", every line the server logs while a user walks
// is one JSON object with time, level and msg.
func TestE2EJSONLogs(t *testing.T) {
	h := newHarness(t)
	h.cfg.Log.Format = "json"
	h.cfg.Log.Level = "debug"
	h.restart()
	p := h.openPlain("activate", "en")
	p.waitPrompt("Login")
	p.answer("jdupont")
	p.waitPrompt("Code from the mail")
	h.code("jeanne@perso.example.net", 0)
	p.client.Close()
	h.stop()
	lines := 0
	sawRestart := false
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		if !sawRestart { // the lines before the restart are logfmt
			sawRestart = strings.HasPrefix(line, "{")
			if !sawRestart {
				continue
			}
		}
		lines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %q: %v", line, err)
			continue
		}
		if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("no time, level or msg: %q", line)
		}
	}
	if lines < 5 {
		t.Fatalf("only %d JSON lines:\n%s", lines, h.logs.String())
	}
	if !strings.Contains(h.logs.String(), `"msg":"ssh connection"`) {
		t.Errorf("no connection line in the JSON log:\n%s", h.logs.String())
	}
}

// Under systemd (NOTIFY_SOCKET set), serve says READY=1 once it listens,
// pings the watchdog, and says STOPPING=1 when it stops.
func TestE2ESystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	must(t, err)
	defer conn.Close()
	got := make(chan string, 100)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		timeout := time.After(waitLimit)
		for {
			select {
			case s := <-got:
				if s == want {
					return
				}
			case <-timeout:
				t.Fatalf("no %s on NOTIFY_SOCKET", want)
			}
		}
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	h := newHarness(t)
	next("READY=1")
	if _, err := h.dial("activate"); err != nil { // it listens once READY=1 is sent
		t.Fatalf("dial after READY=1: %v", err)
	}
	next("WATCHDOG=1")
	h.stop()
	next("STOPPING=1")
}

// A backup taken while a user is half-way through holds the same dossiers
// as the live database, with the code secret beside it (0600): restored,
// the user's code opens the dossier where it was.
func TestE2EBackupDuringWalk(t *testing.T) {
	h := newHarness(t)
	p := h.openPlain("activate", "en")
	p.waitPrompt("Login")
	p.answer("jdupont")
	p.waitPrompt("Code from the mail")
	code := h.code("jeanne@perso.example.net", 0)
	p.answer(code)
	p.waitPrompt("I have read and accept")
	p.answer("y")
	p.waitPrompt("public directory")

	out := filepath.Join(t.TempDir(), "backup.db")
	rc, stdout, stderr := runCmd("backup", "-config", h.writeConfig(nil), "-o", out)
	if rc != 0 || !strings.Contains(stdout, "copied by the running service") {
		t.Fatalf("backup: %d %q %q", rc, stdout, stderr)
	}
	st, err := os.Stat(out + ".secret")
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret copy mode %v, want 0600", st.Mode().Perm())
	}
	var live []string
	must(t, h.app.db.View(func(tx flow.Tx) error {
		return tx.Dossiers(func(d flow.Dossier) error { live = append(live, d.Login+" "+d.Next().String()); return nil })
	}))
	copyDB, err := storage.Open(out, storage.Options{})
	must(t, err)
	defer copyDB.Close()
	var copied []string
	must(t, copyDB.View(func(tx flow.Tx) error {
		return tx.Dossiers(func(d flow.Dossier) error { copied = append(copied, d.Login+" "+d.Next().String()); return nil })
	}))
	if strings.Join(copied, ",") != strings.Join(live, ",") || len(live) == 0 {
		t.Fatalf("copy holds %v, live %v", copied, live)
	}
	if strings.Join(copied, ",") != "jdupont directory" {
		t.Errorf("copy holds %v, want jdupont at the directory step", copied)
	}
	// The codes are readable with the copied secret.
	must(t, copyDB.View(func(tx flow.Tx) error {
		norm, _ := flow.NormalizeCode(code)
		c, err := tx.Code(norm)
		if err == nil && c.Login != "jdupont" {
			t.Errorf("code in the copy belongs to %q", c.Login)
		}
		return err
	}))
}

// A socket systemd passes (LISTEN_PID, LISTEN_FDS) is the one served; none
// passed, or passed to another process, means listen as configured.
func TestSystemdListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	must(t, err)
	defer f.Close()
	// systemdListener takes the descriptor it is given (closes it): give
	// it one of its own, so f's own is not closed twice.
	dup, err := syscall.Dup(int(f.Fd()))
	must(t, err)
	env := map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}
	got, err := systemdListener(func(k string) string { return env[k] }, os.Getpid(), uintptr(dup))
	if err != nil || got == nil {
		t.Fatalf("with LISTEN_FDS=1: %v, %v", got, err)
	}
	defer got.Close()
	if got.Addr().String() != l.Addr().String() {
		t.Errorf("listener on %s, want %s", got.Addr(), l.Addr())
	}
	if got, err := systemdListener(func(k string) string { return env[k] }, os.Getpid()+1, f.Fd()); got != nil || err != nil {
		t.Errorf("LISTEN_PID of another process: %v, %v", got, err)
	}
	env["LISTEN_FDS"] = "2"
	if _, err := systemdListener(func(k string) string { return env[k] }, os.Getpid(), f.Fd()); err == nil {
		t.Error("two sockets accepted")
	}
}

// serve's last words are in the log's format too: with format = "json", a
// serve that cannot start (the database is held by another) writes only
// JSON lines.
func TestServeFailureLoggedAsJSON(t *testing.T) {
	h := newHarness(t)
	path := h.writeConfig(nil)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("[log]\nformat = \"json\"\n")
	must(t, err)
	must(t, f.Close())
	code, _, stderr := runCmd("serve", "-config", path)
	if code != 1 || !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("serve on a held database: %d %q", code, stderr)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not JSON: %q", line)
		}
	}
}
