package mailer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"activated/flow"
)

func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("time zone data missing (apt-get install tzdata): %v", err)
	}
	return loc
}

func testConfig(t testing.TB, smtpAddr string) Config {
	return Config{
		Transport:   "smtp",
		SMTPURL:     "smtp://" + smtpAddr,
		From:        "Université Exemple <it@example.org>",
		PublicHost:  "activate.example.org",
		PublicPort:  22,
		Location:    paris(t),
		Institution: "Université Exemple",
		Services:    []string{"ENT", "Messagerie", "Moodle"},
	}
}

// parsed is a received message decoded the way a mail client would.
type parsed struct {
	Header  mail.Header
	Subject string
	Body    string
}

func parseMessage(t testing.TB, raw []byte) parsed {
	t.Helper()
	for i, b := range raw {
		if b >= 0x80 {
			t.Fatalf("raw message has a non-ASCII byte at %d: %q", i, raw[max(0, i-20):min(len(raw), i+20)])
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("quoted-printable body: %v", err)
	}
	if !utf8.Valid(body) {
		t.Fatalf("body is not UTF-8")
	}
	return parsed{Header: m.Header, Subject: subject, Body: strings.ReplaceAll(string(body), "\r\n", "\n")}
}

// memQueue is an in-memory outbox implementing Queue. Every change closes
// changed so a test can wait for a condition without sleeping.
type memQueue struct {
	mu       sync.Mutex
	mails    map[uint64]*flow.Mail
	dueCalls int
	changed  chan struct{}
}

func newMemQueue(mails ...flow.Mail) *memQueue {
	q := &memQueue{mails: map[uint64]*flow.Mail{}, changed: make(chan struct{})}
	for _, m := range mails {
		m.State = flow.MailQueued
		q.mails[m.ID] = &m
	}
	return q
}

func (q *memQueue) notify() { close(q.changed); q.changed = make(chan struct{}) }

func (q *memQueue) Due(now time.Time, limit int) ([]flow.Mail, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.notify()
	q.dueCalls++
	var due []flow.Mail
	for _, m := range q.mails {
		if m.State == flow.MailQueued && !m.NextAttempt.After(now) {
			due = append(due, *m)
		}
	}
	slices.SortFunc(due, func(a, b flow.Mail) int { return int(a.ID) - int(b.ID) })
	return due[:min(limit, len(due))], nil
}

func (q *memQueue) update(id uint64, fn func(*flow.Mail)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.mails[id]
	if !ok || m.State != flow.MailQueued {
		return flow.ErrNotFound
	}
	fn(m)
	q.notify()
	return nil
}

func (q *memQueue) Delivered(id uint64, at time.Time) error {
	return q.update(id, func(m *flow.Mail) { m.State, m.Sent, m.Code = flow.MailSent, at, "" })
}

func (q *memQueue) Retry(id uint64, next time.Time, reason string) error {
	return q.update(id, func(m *flow.Mail) { m.Attempts++; m.NextAttempt, m.LastError = next, reason })
}

func (q *memQueue) GiveUp(id uint64, at time.Time, reason string) error {
	return q.update(id, func(m *flow.Mail) { m.Attempts++; m.State, m.LastError = flow.MailFailed, reason })
}

func (q *memQueue) get(id uint64) flow.Mail {
	q.mu.Lock()
	defer q.mu.Unlock()
	return *q.mails[id]
}

func (q *memQueue) all() []flow.Mail {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []flow.Mail
	for _, m := range q.mails {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b flow.Mail) int { return int(a.ID) - int(b.ID) })
	return out
}

// waitUntil blocks until cond holds (checked after every queue change) or
// fails the test after a generous deadline.
func (q *memQueue) waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		q.mu.Lock()
		ch := q.changed
		q.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s; outbox: %+v", what, q.all())
		}
	}
}

func (q *memQueue) dues() int { q.mu.Lock(); defer q.mu.Unlock(); return q.dueCalls }

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// selfSigned returns a server TLS config for 127.0.0.1 and the path of
// its certificate as a PEM CA file.
func selfSigned(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}
