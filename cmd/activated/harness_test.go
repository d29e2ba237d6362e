package main

// The end-to-end harness: the real server (newApp + run, as `activated
// serve` does) over a throwaway slapd and a capturing SMTP server, driven
// with a real SSH client. The client side of a PTY session is a terminal
// emulator (charmbracelet/x/vt), so tests read the screen a user sees.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"activated/internal/flowtest"
	"activated/internal/slapd"
	"activated/internal/slapd/slapdtest"
	"activated/internal/smtptest"
)

// waitLimit bounds every wait on a condition; it is a safety net, not a
// timing assertion.
const waitLimit = 20 * time.Second

type harness struct {
	t        testing.TB
	dir      string
	ldap     *slapd.Server
	smtp     *smtptest.Server
	cfg      *Config
	app      *app
	addr     string
	stopApp  func()
	staffKey gossh.Signer
	logs     *flowtest.Buffer
	tweak    func(*Config) // applied to the config before the server starts
	opts     options       // what start gives newApp
}

// e2eAccounts: a pending staff member, a pending student, an active one.
func e2eAccounts() []slapd.Account {
	return []slapd.Account{
		{Login: "jdupont", GivenName: "Jeanne", Surname: "Dupont", RecoveryMail: "jeanne@perso.example.net", Affiliation: "staff"},
		{Login: "amartin", GivenName: "Alex", Surname: "Martin", RecoveryMail: "alex@perso.example.net", Affiliation: "student"},
		{Login: "pdurand", GivenName: "Pierre", Surname: "Durand", RecoveryMail: "pierre@perso.example.net", Affiliation: "student", Active: true},
	}
}

func newHarness(t testing.TB, accounts ...slapd.Account) *harness {
	t.Helper()
	return newHarnessWith(t, options{}, accounts...)
}

// newHarnessWith is newHarness with the app's options (a clock, shorter
// delays).
func newHarnessWith(t testing.TB, opts options, accounts ...slapd.Account) *harness {
	t.Helper()
	if len(accounts) == 0 {
		accounts = e2eAccounts()
	}
	h := &harness{t: t, dir: t.TempDir(), logs: &flowtest.Buffer{}, opts: opts}
	h.ldap = slapdtest.Start(t, accounts...)
	return h.setup(harnessLDAP{URL: h.ldap.URL, BindDN: h.ldap.ServiceDN, BindPassword: h.ldap.ServicePassword, PeopleDN: h.ldap.PeopleDN})
}

// harnessLDAP is where the server finds its directory.
type harnessLDAP struct{ URL, CAFile, BindDN, BindPassword, PeopleDN string }

// setup starts the SMTP server and the server over the directory l.
func (h *harness) setup(l harnessLDAP) *harness {
	t := h.t
	t.Helper()
	h.smtp = smtptest.StartT(t)
	pwFile := filepath.Join(h.dir, "ldap.secret")
	must(t, os.WriteFile(pwFile, []byte(l.BindPassword+"\n"), 0o600))
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	h.staffKey, err = gossh.NewSignerFromKey(priv)
	must(t, err)
	keysFile := filepath.Join(h.dir, "staff_keys")
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(h.staffKey.PublicKey()))) + " Alice Helpdesk\n"
	must(t, os.WriteFile(keysFile, []byte(line), 0o600))

	cfg := DefaultConfig()
	cfg.SSH.Listen = "127.0.0.1:0"
	cfg.SSH.HostKey = filepath.Join(h.dir, "ssh", "host_ed25519")
	cfg.SSH.StaffAuthorizedKeys = keysFile
	cfg.Storage.Path = filepath.Join(h.dir, "activated.db")
	cfg.LDAP.URL = l.URL
	cfg.LDAP.CAFile = l.CAFile
	cfg.LDAP.BindDN = l.BindDN
	cfg.LDAP.BindPasswordFile = pwFile
	cfg.LDAP.PeopleBase = l.PeopleDN
	cfg.LDAP.MailDomain = slapd.MailDomain
	cfg.Mail.Transport = "smtp"
	cfg.Mail.SMTPURL = "smtp://" + h.smtp.Addr
	cfg.Mail.From = "Université Exemple <informatique@example.org>"
	cfg.Activation.PublicHost = "activate.example.org"
	cfg.Activation.PublicPort = 2222
	cfg.Activation.Institution = "Université Exemple"
	cfg.Activation.Language = "en"
	cfg.Metrics.Listen = "127.0.0.1:0"
	if h.tweak != nil {
		h.tweak(cfg)
	}
	must(t, cfg.Validate())
	h.cfg = cfg
	h.start()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", h.logs.String())
		}
	})
	return h
}

// start runs the server as `activated serve` does.
func (h *harness) start() {
	h.t.Helper()
	a, err := newApp(h.cfg, h.opts, newLogger(h.logs, h.cfg.Log), io.Discard)
	must(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- a.run(ctx, func(addr net.Addr) { ready <- addr.String() }) }()
	select {
	case h.addr = <-ready:
	case err := <-done:
		cancel()
		h.t.Fatalf("server did not start: %v", err)
	}
	h.app = a
	var once sync.Once
	h.stopApp = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("server stopped with: %v", err)
			}
		})
	}
}

func (h *harness) stop() { h.stopApp() }

// restart stops the server (open sessions end) and starts it again on the
// same data; the address changes.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

func (h *harness) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", h.addr, &gossh.ClientConfig{
		User: user, Auth: auth, Timeout: waitLimit, HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
}

// mailsTo returns the decoded messages received for addr, oldest first.
func (h *harness) mailsTo(addr string) []decoded {
	var out []decoded
	for _, m := range h.smtp.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, decode(h.t, m.Data))
			}
		}
	}
	return out
}

// waitMail waits for message number after+1 to addr and returns it.
func (h *harness) waitMail(addr string, after int) decoded {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if ms := h.mailsTo(addr); len(ms) > after {
			return ms[after]
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("no mail #%d to %s; got %d messages in all", after+1, addr, len(h.smtp.Messages()))
	return decoded{}
}

var codeRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}\b`)

// code waits for the next mail to addr and returns the code it carries.
func (h *harness) code(addr string, after int) string {
	h.t.Helper()
	m := h.waitMail(addr, after)
	c := codeRE.FindString(m.Body)
	if c == "" {
		h.t.Fatalf("no code in the mail to %s:\n%s", addr, m.Body)
	}
	return c
}

type decoded struct {
	Header  mail.Header
	Subject string
	Body    string
}

func decode(t testing.TB, data []byte) decoded {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	must(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	must(t, err)
	var body []byte
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	} else {
		body, err = io.ReadAll(m.Body)
	}
	must(t, err)
	return decoded{Header: m.Header, Subject: subject, Body: string(body)}
}

// term is a PTY session seen through a terminal emulator.
type term struct {
	t      testing.TB
	client *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	mu     sync.Mutex
	vt     *vt.Emulator
	ended  chan struct{}
}

// openTerm connects as user with a PTY of w×h and LANG=lang.
func (h *harness) openTerm(user string, w, ht int, lang string) *term {
	h.t.Helper()
	c, err := h.dial(user)
	must(h.t, err)
	return h.termOn(c, user, w, ht, lang)
}

// termOn opens a PTY session on client c; the client side leaves no
// goroutine behind once the connection is closed.
func (h *harness) termOn(c *gossh.Client, user string, w, ht int, lang string) *term {
	h.t.Helper()
	s, err := c.NewSession()
	must(h.t, err)
	if lang != "" {
		must(h.t, s.Setenv("LANG", lang))
	}
	must(h.t, s.RequestPty("xterm-256color", ht, w, gossh.TerminalModes{gossh.ECHO: 0}))
	tm := &term{t: h.t, client: c, sess: s, vt: vt.NewEmulator(w, ht), ended: make(chan struct{})}
	tm.stdin, err = s.StdinPipe()
	must(h.t, err)
	out, err := s.StdoutPipe()
	must(h.t, err)
	must(h.t, s.Shell())
	go func() { // the emulator's answers to the program's queries go back as input
		io.Copy(tm.stdin, vtReader{tm.vt})
	}()
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := out.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				tm.vt.Write(buf[:n])
				tm.mu.Unlock()
			}
			if err != nil {
				break
			}
		}
		// Ends the copy above. Closing the pipe, not the emulator: its
		// Close writes a flag Read reads without a lock.
		tm.vt.InputPipe().(io.Closer).Close()
		close(tm.ended)
	}()
	h.t.Cleanup(tm.close)
	return tm
}

type vtReader struct{ e *vt.Emulator }

func (r vtReader) Read(p []byte) (int, error) { return r.e.Read(p) }

func (tm *term) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.vt.String()
}

// waitFor waits until the screen shows every one of texts.
func (tm *term) waitFor(texts ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		ok := true
		for _, x := range texts {
			ok = ok && strings.Contains(s, x)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen never showed %q; it shows:\n%s", texts, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Keys as a terminal sends them.
const (
	keyEnter = "\r"
	keyTab   = "\t"
	keyDown  = "\x1b[B"
	keyCtrlU = "\x15"
	keyCtrlC = "\x03"
)

func (tm *term) send(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		if _, err := io.WriteString(tm.stdin, k); err != nil {
			tm.t.Fatalf("send %q: %v", k, err)
		}
	}
}

// resize tells the server the window changed.
func (tm *term) resize(w, h int) {
	tm.mu.Lock()
	tm.vt.Resize(w, h)
	tm.mu.Unlock()
	must(tm.t, tm.sess.WindowChange(h, w))
}

// close drops the connection abruptly, as a closed laptop lid would.
func (tm *term) close() { tm.client.Close() }

// waitEnd waits for the server to end the session.
func (tm *term) waitEnd() {
	tm.t.Helper()
	select {
	case <-tm.ended:
	case <-time.After(waitLimit):
		tm.t.Fatalf("session did not end; screen:\n%s", tm.screen())
	}
}

// plainSession is a session without PTY: line prompts.
type plainSession struct {
	t      testing.TB
	client *gossh.Client
	stdin  io.WriteCloser
	out    *flowtest.Buffer
	done   chan error
}

func (h *harness) openPlain(user, lang string) *plainSession {
	h.t.Helper()
	c, err := h.dial(user)
	must(h.t, err)
	s, err := c.NewSession()
	must(h.t, err)
	if lang != "" {
		must(h.t, s.Setenv("LANG", lang))
	}
	p := &plainSession{t: h.t, client: c, out: &flowtest.Buffer{}, done: make(chan error, 1)}
	s.Stdout, s.Stderr = p.out, p.out
	p.stdin, err = s.StdinPipe()
	must(h.t, err)
	must(h.t, s.Shell())
	go func() { p.done <- s.Wait() }()
	h.t.Cleanup(func() { c.Close() })
	return p
}

// waitPrompt waits until the output ends with a prompt line containing text.
func (p *plainSession) waitPrompt(text string) string {
	p.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		out := p.out.String()
		last := out[strings.LastIndexByte(out, '\n')+1:]
		if strings.HasSuffix(last, "> ") && strings.Contains(last, text) {
			return out
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no prompt %q; output ends:\n%s", text, tail(out, 1500))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *plainSession) answer(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
