package smtptest

import (
	"context"
	"errors"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func send(addr, from, to, body string) error {
	return smtp.SendMail(addr, nil, from, []string{to}, []byte("Subject: t\r\n\r\n"+body+"\r\n"))
}

func TestCaptureStopRestart(t *testing.T) {
	s := StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := send(s.Addr, "a@example.org", "b@example.net", "one"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.WaitFor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != "b@example.net" || !strings.Contains(string(m.Data), "one") {
		t.Fatalf("captured %+v", m)
	}

	addr := s.Addr
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := send(addr, "a@example.org", "b@example.net", "lost"); err == nil {
		t.Fatal("a stopped server accepted a message")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Addr != addr {
		t.Fatalf("restart moved from %s to %s", addr, s.Addr)
	}
	if err := s.Restart(); err == nil {
		t.Fatal("Restart of a running server succeeded")
	}
	if err := send(s.Addr, "a@example.org", "c@example.net", "two"); err != nil {
		t.Fatal(err)
	}
	msgs, err = s.WaitFor(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || len(s.Messages()) != 2 || msgs[1].To[0] != "c@example.net" {
		t.Fatalf("after restart: %+v", msgs)
	}
}

func TestWaitForGivesUpWithContext(t *testing.T) {
	s := StartT(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msgs, err := s.WaitFor(ctx, 1)
	if !errors.Is(err, context.Canceled) || len(msgs) != 0 {
		t.Fatalf("WaitFor on a cancelled context: %v, %d messages", err, len(msgs))
	}
}

func TestAuthAndReject(t *testing.T) {
	s, err := StartOptions("127.0.0.1:0", Options{Username: "u", Password: "p", Reject: []string{"nobody@example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if err := send(s.Addr, "a@example.org", "b@example.net", "x"); err == nil {
		t.Fatal("accepted MAIL without AUTH")
	}
	// net/smtp sends PLAIN to 127.0.0.1 without TLS (it is loopback).
	auth := smtp.PlainAuth("", "u", "wrong", "127.0.0.1")
	if err := smtp.SendMail(s.Addr, auth, "a@example.org", []string{"b@example.net"}, []byte("x\r\n")); err == nil {
		t.Fatal("accepted a wrong password")
	}
	auth = smtp.PlainAuth("", "u", "p", "127.0.0.1")
	err = smtp.SendMail(s.Addr, auth, "a@example.org", []string{"nobody@example.net"}, []byte("x\r\n"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("rejected recipient: %v", err)
	}
	if err := smtp.SendMail(s.Addr, auth, "a@example.org", []string{"b@example.net"}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestImplicitTLSNeedsConfig(t *testing.T) {
	if _, err := StartOptions("127.0.0.1:0", Options{ImplicitTLS: true}); err == nil {
		t.Fatal("ImplicitTLS without a TLSConfig started")
	}
}
