// Package smtptest owns a real SMTP server for tests: it listens on
// 127.0.0.1, accepts every message (github.com/emersion/go-smtp) and keeps
// what it received, so a test can wait for mail and read it. It can be
// stopped and restarted on the same port to play an outage.
package smtptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one mail the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Options change what the server offers. The zero value is a plain server
// that accepts anything, with AUTH PLAIN allowed but not required.
type Options struct {
	// TLSConfig, when set, makes the server offer STARTTLS.
	TLSConfig *tls.Config
	// ImplicitTLS speaks TLS from the first byte (smtps); needs TLSConfig.
	ImplicitTLS bool
	// Username and Password, when set, are required (AUTH PLAIN) before MAIL.
	Username, Password string
	// Reject lists recipients refused with a permanent 550 at RCPT.
	Reject []string
}

// Server is a capturing SMTP server on a loopback port.
type Server struct {
	Addr string // host:port, stable across Restart

	opts Options

	mu       sync.Mutex
	msgs     []Message
	changed  chan struct{} // closed and replaced whenever msgs grows
	srv      *smtp.Server
	lis      net.Listener
	serveErr chan error
}

// Start listens on addr ("127.0.0.1:0" for a free port) and serves.
func Start(addr string) (*Server, error) { return StartOptions(addr, Options{}) }

// StartOptions is Start with options (TLS, required authentication,
// refused recipients).
func StartOptions(addr string, o Options) (*Server, error) {
	if o.ImplicitTLS && o.TLSConfig == nil {
		return nil, errors.New("smtptest: ImplicitTLS needs a TLSConfig")
	}
	s := &Server{opts: o, changed: make(chan struct{})}
	l, err := s.listen(addr)
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	s.serve(l)
	return s, nil
}

// StartT starts a plain server on a free loopback port and stops it when
// the test ends.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func (s *Server) listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen %s: %w", addr, err)
	}
	if s.opts.ImplicitTLS {
		l = tls.NewListener(l, s.opts.TLSConfig)
	}
	return l, nil
}

// serve runs a fresh go-smtp server on l (a closed go-smtp server cannot
// serve again).
func (s *Server) serve(l net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest.localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if !s.opts.ImplicitTLS {
		srv.TLSConfig = s.opts.TLSConfig
	}
	errc := make(chan error, 1)
	s.mu.Lock()
	s.srv, s.lis = srv, l
	s.serveErr = errc
	s.mu.Unlock()
	go func() { errc <- srv.Serve(l) }()
}

// Stop closes the listener and every open connection. Stopping a stopped
// server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	srv, l, errc := s.srv, s.lis, s.serveErr
	s.srv, s.lis, s.serveErr = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	// go-smtp closes only the listeners Serve has registered; close ours
	// too in case Serve has not started yet.
	if lerr := l.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
		err = lerr
	}
	if serr := <-errc; serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("smtptest: stop: %w", err)
	}
	return nil
}

// Restart starts a stopped server again on the same address; the messages
// received before are kept.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return errors.New("smtptest: restart: server is running")
	}
	l, err := s.listen(s.Addr)
	if err != nil {
		return err
	}
	s.serve(l)
	return nil
}

// Messages returns a copy of the messages received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// WaitFor blocks until at least n messages were received and returns them
// all, or returns ctx's error with the messages received so far.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			m := slices.Clone(s.msgs)
			s.mu.Unlock()
			return m, nil
		}
		ch, got := s.changed, slices.Clone(s.msgs)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("smtptest: waiting for %d messages, got %d: %w", n, len(got), ctx.Err())
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

// session is one SMTP connection's transaction.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var errAuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		o := se.s.opts
		if o.Username != "" && (user != o.Username || pass != o.Password) {
			return errAuthFailed
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.Username != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	for _, r := range se.s.opts.Reject {
		if strings.EqualFold(r, to) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.add(Message{From: se.from, To: slices.Clone(se.to), Data: b})
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }
