package mailer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/internal/smtptest"
)

func activatedMail(id uint64) flow.Mail {
	return flow.Mail{ID: id, Kind: flow.MailActivated, To: "fh@perso.example", Lang: "fr", Login: "fhebert",
		Name: "François Hébert", Created: time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)}
}

func render(t testing.TB, cfg Config, m flow.Mail) []byte {
	t.Helper()
	raw, err := NewRenderer(cfg).Render(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestStartTLSRequiredButNotOffered(t *testing.T) {
	srv := smtptest.StartT(t)
	cfg := testConfig(t, srv.Addr)
	cfg.SMTPURL = "smtp+starttls://" + srv.Addr
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Send(context.Background(), "it@example.org", "fh@perso.example", render(t, cfg, activatedMail(1)))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("send over smtp+starttls to a server without STARTTLS: %v", err)
	}
	if err := Check(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("check: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages went through in clear", n)
	}
}

func TestTLSWithCAFile(t *testing.T) {
	tc, caFile := selfSigned(t)
	starttls, err := smtptest.StartOptions("127.0.0.1:0", smtptest.Options{TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = starttls.Stop() })
	implicit, err := smtptest.StartOptions("127.0.0.1:0", smtptest.Options{TLSConfig: tc, ImplicitTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = implicit.Stop() })

	for _, tc := range []struct {
		url string
		srv *smtptest.Server
	}{
		{"smtp+starttls://" + starttls.Addr, starttls},
		{"smtp://" + starttls.Addr, starttls}, // opportunistic: upgrades, so verifies
		{"smtps://" + implicit.Addr, implicit},
	} {
		cfg := testConfig(t, "")
		cfg.SMTPURL = tc.url
		// Without the CA the certificate is not trusted.
		tr, err := NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Send(context.Background(), "it@example.org", "fh@perso.example", render(t, cfg, activatedMail(1))); err == nil {
			t.Errorf("%s: sent without trusting the certificate", tc.url)
		}
		cfg.CAFile = caFile
		if err := Check(context.Background(), cfg); err != nil {
			t.Errorf("%s: check: %v", tc.url, err)
		}
		tr, err = NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := len(tc.srv.Messages())
		if err := tr.Send(context.Background(), "it@example.org", "fh@perso.example", render(t, cfg, activatedMail(2))); err != nil {
			t.Errorf("%s: %v", tc.url, err)
		}
		if n := len(tc.srv.Messages()); n != before+1 {
			t.Errorf("%s: %d messages, want %d", tc.url, n, before+1)
		}
	}
}

func TestAuth(t *testing.T) {
	srv, err := smtptest.StartOptions("127.0.0.1:0", smtptest.Options{Username: "relay", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	cfg := testConfig(t, srv.Addr)
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatalf("check without credentials (AUTH is asked at MAIL): %v", err)
	}
	cfg.SMTPUsername, cfg.SMTPPassword = "relay", "wrong"
	if err := Check(context.Background(), cfg); err == nil {
		t.Fatal("check with a wrong password succeeded")
	}
	cfg.SMTPPassword = "s3cret"
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Send(context.Background(), "it@example.org", "fh@perso.example", render(t, cfg, activatedMail(1))); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestCheck(t *testing.T) {
	srv := smtptest.StartT(t)
	ctx := context.Background()
	cfg := testConfig(t, srv.Addr)
	if err := Check(ctx, cfg); err != nil {
		t.Fatalf("live server: %v", err)
	}
	closed := closedAddr(t)
	cfg.SMTPURL = "smtp://" + closed
	if err := Check(ctx, cfg); err == nil || !strings.Contains(err.Error(), closed) {
		t.Fatalf("closed port: %v", err)
	}

	cfg = testConfig(t, srv.Addr)
	cfg.Transport, cfg.Maildir = "maildir", filepath.Join(t.TempDir(), "Maildir")
	if err := Check(ctx, cfg); err != nil {
		t.Fatalf("maildir: %v", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(cfg.Maildir, sub))
		if err != nil || len(entries) != 0 {
			t.Fatalf("maildir %s after check: %v, %d entries", sub, err, len(entries))
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Maildir = filepath.Join(file, "Maildir")
	if err := Check(ctx, cfg); err == nil {
		t.Fatal("maildir under a regular file checked fine")
	}

	cfg.Transport = "log"
	if err := Check(ctx, cfg); err != nil {
		t.Fatalf("log: %v", err)
	}
	cfg.From = "nobody"
	if err := Check(ctx, cfg); err == nil {
		t.Fatal("bad From checked fine")
	}
}

func TestNewTransportRefuses(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown transport": {Transport: "pigeon"},
		"maildir no dir":    {Transport: "maildir"},
		"bad scheme":        {Transport: "smtp", SMTPURL: "http://mail.example.org"},
		"credentials":       {Transport: "smtp", SMTPURL: "smtp://u:p@mail.example.org"},
		"no host":           {Transport: "smtp", SMTPURL: "smtp://:25"},
		"bad port":          {Transport: "smtp", SMTPURL: "smtp://mail.example.org:99999"},
		"path":              {Transport: "smtp", SMTPURL: "smtp://mail.example.org/x"},
		"missing ca":        {Transport: "smtp", SMTPURL: "smtps://mail.example.org", CAFile: "/nonexistent/ca.pem"},
		"unparsable":        {Transport: "smtp", SMTPURL: "smtp://[::1"},
	} {
		if _, err := NewTransport(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTransport(Config{Transport: "smtp", SMTPURL: "smtps://mail.example.org", CAFile: notPEM}); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
	for _, u := range []string{"smtp://mail.example.org", "smtp+starttls://mail.example.org", "smtps://mail.example.org:4650", "smtp://mail.example.org/"} {
		if _, err := NewTransport(Config{Transport: "smtp", SMTPURL: u, SMTPUsername: "u", SMTPPassword: "p"}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestMaildirTransport(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Transport, cfg.Maildir = "maildir", filepath.Join(t.TempDir(), "Maildir")
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	for id := uint64(1); id <= 3; id++ {
		raw := render(t, cfg, activatedMail(id))
		if err := tr.Send(context.Background(), "it@example.org", "fh@perso.example", raw); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, raw)
	}
	entries, err := os.ReadDir(filepath.Join(cfg.Maildir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d files in new/, want 3", len(entries))
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(cfg.Maildir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range sent {
			found = found || bytes.Equal(b, s)
		}
		if !found {
			t.Errorf("%s is not one of the messages sent", e.Name())
		}
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
		if parseMessage(t, b).Subject == "" {
			t.Errorf("%s has no subject", e.Name())
		}
	}
	for _, sub := range []string{"tmp", "cur"} {
		if entries, err := os.ReadDir(filepath.Join(cfg.Maildir, sub)); err != nil || len(entries) != 0 {
			t.Errorf("%s/: %v, %d entries", sub, err, len(entries))
		}
	}
}

func TestLogTransport(t *testing.T) {
	var out flowtest.Buffer
	cfg := testConfig(t, "")
	cfg.Transport, cfg.LogWriter = "log", &out
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := activatedMail(1)
	m.Kind, m.Code, m.Deadline = flow.MailInvitation, testCode, m.Created.Add(time.Hour)
	if err := tr.Send(context.Background(), "it@example.org", m.To, render(t, cfg, m)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"to fh@perso.example", "Subject: Activez votre compte informatique Université Exemple\n", "Bonjour François Hébert,\n", "à 11:30 (heure de Paris)", testCode} {
		if !strings.Contains(got, want) {
			t.Errorf("log output lacks %q:\n%s", want, got)
		}
	}
	if err := tr.Send(context.Background(), "it@example.org", m.To, []byte("no header line")); err == nil {
		t.Error("log transport took a message without headers")
	}
	if tr, err := NewTransport(Config{Transport: "log"}); err != nil || tr.(*logTransport).w != os.Stdout {
		t.Errorf("default log writer: %v", err)
	}
}
