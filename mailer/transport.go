package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// Transport carries one rendered message to one recipient.
type Transport interface {
	Send(ctx context.Context, from, to string, msg []byte) error
}

// NewTransport returns the transport cfg.Transport names.
func NewTransport(cfg Config) (Transport, error) {
	switch cfg.Transport {
	case "smtp":
		return newSMTPTransport(cfg)
	case "maildir":
		if cfg.Maildir == "" {
			return nil, errors.New("mail transport maildir: no maildir directory configured")
		}
		return &maildirTransport{dir: cfg.Maildir}, nil
	case "log":
		w := cfg.LogWriter
		if w == nil {
			w = os.Stdout
		}
		return &logTransport{w: w}, nil
	default:
		return nil, fmt.Errorf("mail transport %q: want smtp, maildir or log", cfg.Transport)
	}
}

// Check tells whether cfg's transport can work now: for smtp it connects,
// says EHLO, does STARTTLS and AUTH as configured, and quits; for maildir
// it writes and removes a file; for log there is nothing to check.
func Check(ctx context.Context, cfg Config) error {
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return fmt.Errorf("mail sender %q: %w", cfg.From, err)
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		return err
	}
	switch t := tr.(type) {
	case *smtpTransport:
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		if err := c.Quit(); err != nil {
			return fmt.Errorf("smtp %s: quit: %w", t.addr, err)
		}
	case *maildirTransport:
		tmp, err := t.prepare()
		if err != nil {
			return err
		}
		f, err := os.CreateTemp(tmp, "check-*")
		if err != nil {
			return fmt.Errorf("maildir %s: %w", t.dir, err)
		}
		f.Close()
		if err := os.Remove(f.Name()); err != nil {
			return fmt.Errorf("maildir %s: %w", t.dir, err)
		}
	}
	return nil
}

// smtpTransport opens one connection per message with go-mail.
type smtpTransport struct {
	addr   string
	client *gomail.Client
}

// smtpTimeout bounds a whole connection: dial, EHLO, STARTTLS, AUTH and
// the transaction.
const smtpTimeout = 30 * time.Second

func newSMTPTransport(cfg Config) (*smtpTransport, error) {
	u, err := url.Parse(cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("mail smtp_url: %w", err)
	}
	if u.User != nil {
		return nil, errors.New("mail smtp_url: put credentials in smtp_username and smtp_password_file, not in the URL")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("mail smtp_url %q: want scheme://host:port only", u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("mail smtp_url %q: no host", u.Redacted())
	}
	opts := []gomail.Option{gomail.WithTimeout(smtpTimeout)}
	var port int
	switch u.Scheme {
	case "smtp":
		port = 25
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtp+starttls":
		port = 587
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("mail smtp_url %q: scheme must be smtp, smtp+starttls or smtps", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("mail smtp_url %q: bad port", u.Redacted())
		}
	}
	opts = append(opts, gomail.WithPort(port))

	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	opts = append(opts, gomail.WithTLSConfig(tc))

	if cfg.SMTPUsername != "" {
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			// PLAIN on loopback is fine without TLS (go-mail's PLAIN
			// refuses an unencrypted connection to any other host).
			opts = append(opts, gomail.WithSMTPAuthCustom(gosmtp.PlainAuth("", cfg.SMTPUsername, cfg.SMTPPassword, host, false)))
		} else {
			// The strongest mechanism offered; PLAIN and LOGIN only over TLS.
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
				gomail.WithUsername(cfg.SMTPUsername), gomail.WithPassword(cfg.SMTPPassword))
		}
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail smtp client: %w", err)
	}
	return &smtpTransport{addr: net.JoinHostPort(host, strconv.Itoa(port)), client: c}, nil
}

func (t *smtpTransport) dial(ctx context.Context) (*gosmtp.Client, error) {
	c, err := t.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: connect: %w", t.addr, err)
	}
	return c, nil
}

// Send runs one SMTP transaction. It returns once the server accepted the
// message (250 after DATA) or with the reason it did not. The QUIT that
// follows acceptance goes on in the background (bounded by the
// connection's deadline): the caller records the delivery at once, so the
// window in which a crash would send the mail again is that record alone.
func (t *smtpTransport) Send(ctx context.Context, from, to string, msg []byte) error {
	c, err := t.dial(ctx)
	if err != nil {
		return err
	}
	accepted := false
	defer func() {
		if !accepted {
			c.Close()
		}
	}()
	if err := c.Mail((&mail.Address{Address: from}).String()); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", t.addr, err)
	}
	if err := c.Rcpt((&mail.Address{Address: to}).String()); err != nil {
		return fmt.Errorf("smtp %s: RCPT TO: %w", t.addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", t.addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", t.addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: end of DATA: %w", t.addr, err)
	}
	accepted = true
	go func() {
		_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
		c.Close()
	}()
	return nil
}

// maildirTransport delivers into a Maildir: the file is written in tmp/,
// synced, then renamed into new/, so a reader never sees half a message.
type maildirTransport struct {
	dir string
}

var maildirSeq atomic.Uint64

func (t *maildirTransport) prepare() (tmp string, err error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(t.dir, sub), 0o700); err != nil {
			return "", fmt.Errorf("maildir %s: %w", t.dir, err)
		}
	}
	return filepath.Join(t.dir, "tmp"), nil
}

func (t *maildirTransport) Send(_ context.Context, _, _ string, msg []byte) error {
	tmp, err := t.prepare()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	now := time.Now()
	name := fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), maildirSeq.Add(1), host)
	tmpPath := filepath.Join(tmp, name)
	if err := writeSynced(tmpPath, msg); err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("maildir %s: %w", t.dir, err)
	}
	if err := os.Rename(tmpPath, filepath.Join(t.dir, "new", name)); err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("maildir %s: %w", t.dir, err)
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// logTransport prints each message decoded (subject and body readable),
// for the demo. It prints codes: never use it in production.
type logTransport struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *logTransport) Send(_ context.Context, from, to string, msg []byte) error {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("log transport: %w", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		subject = m.Header.Get("Subject")
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(m.Body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("log transport: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "──── mail from %s to %s ────\n", from, to)
	fmt.Fprintf(&b, "Date: %s\nSubject: %s\n\n", m.Header.Get("Date"), subject)
	b.WriteString(strings.ReplaceAll(string(text), "\r\n", "\n"))
	b.WriteString("──── end of mail ────\n")
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return fmt.Errorf("log transport: %w", err)
	}
	return nil
}
