// Package sshapp owns the SSH server: authentication per username
// (activate, a one-time code, staff), the limits (connections per minute
// and address, sessions at once, timeouts), the middleware chain that sends
// a session to the TUI wizard, the plain prompts, the staff commands or a
// short explanation, and the connection log. It is the only package that
// imports wish.
package sshapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	charmlog "charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	gossh "golang.org/x/crypto/ssh"

	"activated/flow"
	"activated/flow/i18n"
	"activated/flow/plain"
	"activated/internal/sanitize"
)

// Defaults for the zero fields of Config.
const (
	DefaultHandshakeTimeout     = 120 * time.Second // OpenSSH LoginGraceTime: a first-time user reads the host-key prompt
	DefaultIdleTimeout          = 15 * time.Minute
	DefaultKeepAlive            = 15 * time.Second
	DefaultMaxTimeout           = 2 * time.Hour
	DefaultMaxSessions          = 1000
	DefaultMaxStartups          = 100
	DefaultMaxStartupsPerSource = 20
	DefaultSessionWait          = 30 * time.Second
)

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = ssh.ErrServerClosed

// Config is what the SSH server needs. Zero durations and counts get the
// defaults above.
type Config struct {
	HostKey gossh.Signer
	// StaffKeysFile is an OpenSSH authorized_keys file; the comment of a
	// line is the staff member's name. It is re-read when it changes. ""
	// means no staff access.
	StaffKeysFile string

	// IdleTimeout closes a session that read and wrote nothing for that
	// long (and a connection that opened no session).
	IdleTimeout, MaxTimeout, HandshakeTimeout time.Duration
	// KeepAlive is how often a session's client is asked for a reply; one
	// that gives none within two periods is gone and its connection is
	// closed. Default 15s, negative for none.
	KeepAlive   time.Duration
	MaxSessions int // sessions open at once, server-wide
	// MaxStartups caps the connections that have not finished
	// authentication, server-wide (default 100), and MaxStartupsPerSource
	// the same per client address, an IPv6 /64 (default 20); past either a
	// new connection is closed at once, before any cryptography. Negative:
	// no cap.
	MaxStartups, MaxStartupsPerSource int
	// SessionWait closes a connection that authenticated but opened no
	// session within it; default 30s.
	SessionWait time.Duration

	PublicHost  string   // what users type after the @ (in the messages)
	PublicPort  int      // default 22
	Services    []string // listed on the confirmation screen
	DefaultLang string   // when the client sends no LANG; default: the flow's
	// Ephemeral says the data goes with the server (the demo): a stop
	// tells the wizard users so, instead of "nothing is lost".
	Ephemeral bool

	// Dashboard builds the staff dashboard for `ssh -t staff@host` with no
	// command; nil means staff with no command get the StaffHandler with
	// no arguments.
	Dashboard func(ctx context.Context, who Staff) tea.Model

	Log *slog.Logger
	// Metrics counts connections and sessions; nil counts nothing.
	Metrics Metrics
}

// Metrics is what the server counts. No argument carries a login, an
// address or a code.
type Metrics interface {
	ConnectionOutcome(outcome string) // a connection closed, with its log line's outcome
	SessionOpened(kind string)        // kind: tui, plain or staff
	SessionClosed(kind string)
}

type noMetrics struct{}

func (noMetrics) ConnectionOutcome(string) {}
func (noMetrics) SessionOpened(string)     {}
func (noMetrics) SessionClosed(string)     {}

// Staff is an authenticated staff member.
type Staff struct {
	Name        string // from the authorized_keys comment
	Fingerprint string // SHA256 of the key used
	Remote      string // client address
}

// StaffHandler runs a staff command (args split like a shell would) on the
// session's streams and returns the exit status. It knows nothing of SSH.
// ctx ends when the connection does, when the server stops (cause
// context.Canceled), or when the staff key is withdrawn: the cause is then
// an error whose text tells the staff member why, for the handler to report
// as a failure; the connection is closed a moment later.
type StaffHandler func(ctx context.Context, who Staff, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// Server is the SSH front door of the activation service.
type Server struct {
	cfg   Config
	svc   *flow.Service
	staff StaffHandler
	log   *slog.Logger
	keys  *staffKeys
	door  *door
	slots *sessionTable
	texts plain.Texts // the charter as plain text, for every plain session
	srv   *ssh.Server
	open  openConns

	mu        sync.Mutex
	closing   bool
	listeners []net.Listener
	// stopping is closed when Shutdown starts: wizard sessions end at once,
	// cleanly, telling the user how to come back.
	stopping chan struct{}
	// stopCtx is cancelled with stopping: sessions hook their end on it
	// with context.AfterFunc, which costs no goroutine while they last.
	stopCtx context.Context
	stopNow context.CancelFunc
}

// New builds the server; nothing listens until Serve.
func New(cfg Config, svc *flow.Service, staff StaffHandler) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("ssh server: no host key")
	}
	if svc == nil {
		return nil, errors.New("ssh server: no flow service")
	}
	cfg.HandshakeTimeout = cmp.Or(cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxTimeout = cmp.Or(cfg.MaxTimeout, DefaultMaxTimeout)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, DefaultKeepAlive)
	cfg.MaxSessions = cmp.Or(cfg.MaxSessions, DefaultMaxSessions)
	cfg.MaxStartups = cmp.Or(cfg.MaxStartups, DefaultMaxStartups)
	cfg.MaxStartupsPerSource = cmp.Or(cfg.MaxStartupsPerSource, DefaultMaxStartupsPerSource)
	cfg.SessionWait = cmp.Or(cfg.SessionWait, DefaultSessionWait)
	cfg.PublicHost = cmp.Or(cfg.PublicHost, "localhost")
	cfg.PublicPort = cmp.Or(cfg.PublicPort, 22)
	cfg.DefaultLang = i18n.Pick(cmp.Or(cfg.DefaultLang, svc.Config().DefaultLang), i18n.Langs[0])
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("ssh server: max sessions %d < 0", cfg.MaxSessions)
	}

	s := &Server{
		cfg: cfg, svc: svc, staff: staff, log: cfg.Log,
		keys:     newStaffKeys(cfg.StaffKeysFile, cfg.Log),
		door:     newDoor(cfg.MaxStartups, cfg.MaxStartupsPerSource),
		slots:    newSessionTable(cfg.MaxSessions, cfg.IdleTimeout/5),
		stopping: make(chan struct{}),
	}
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	s.srv = &ssh.Server{
		HostSigners:      []ssh.Signer{cfg.HostKey},
		Version:          "activated",
		HandshakeTimeout: cfg.HandshakeTimeout,
		// Later than watch's: a session told why it is closed is closed by
		// watch, not cut short by charm when no keepalive came in between.
		IdleTimeout:          cfg.IdleTimeout + cfg.KeepAlive + time.Second,
		MaxTimeout:           cfg.MaxTimeout,
		ConnCallback:         s.connOpened,
		ServerConfigCallback: s.serverConfig,
		PublicKeyHandler:     s.publicKey,
		// No PasswordHandler nor KeyboardInteractiveHandler: both refused.
		// Only shells and exec requests; subsystems (sftp…) are refused.
		SessionRequestCallback: func(_ ssh.Session, req string) bool { return req == "shell" || req == "exec" },
		SubsystemHandlers:      map[string]ssh.SubsystemHandler{},
		// Only session channels: direct-tcpip (ssh -L) and anything else is
		// an unknown channel type. Forwarding callbacks stay nil (refused).
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": s.sessionChannel},
		// No global requests: tcpip-forward (ssh -R) is refused.
		RequestHandlers: map[string]ssh.RequestHandler{},
	}
	// wish's bubbletea middleware reports every client that drops mid-TUI
	// as an error on charm's global logger; our connection log already
	// records the outcome of each session.
	charmlog.SetOutput(io.Discard)
	if err := s.srv.SetOption(wish.WithMiddleware(s.middleware()...)); err != nil {
		return nil, fmt.Errorf("ssh server: %w", err)
	}
	s.keys.mu.Lock()
	if cfg.StaffKeysFile != "" {
		s.keys.refresh() // log the staff keys state at start
	} else {
		s.log.Info("no staff_authorized_keys: staff access off")
	}
	s.keys.mu.Unlock()
	return s, nil
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	s.log.Info("ssh server listening", "addr", l.Addr().String())
	err := s.srv.Serve(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops listening and waits for the open connections to end; when
// ctx ends first it closes them and returns ctx's error.
//
// It does not call charm.land/ssh's Server.Shutdown: that one waits on a
// WaitGroup to which connections finishing their handshake still Add, a
// misuse the race detector reports (and sync may panic on). Connections are
// counted here instead, from the first byte.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stopping)
		s.stopNow()
	}
	s.closing = true
	for _, l := range s.listeners {
		_ = l.Close()
	}
	s.listeners = nil
	s.mu.Unlock()
	err := s.open.wait(ctx)
	_ = s.srv.Close()
	if err != nil {
		return fmt.Errorf("ssh server: shutdown: %w", err)
	}
	return nil
}

// connOpened runs for every TCP connection, before any cryptography: the
// door admits it, or it is closed at once (with a line of text that SSH
// clients show in their verbose output, the only place left to say why).
func (s *Server) connOpened(ctx ssh.Context, c net.Conn) net.Conn {
	remote := clientIP(c.RemoteAddr()).String()
	rec := &connRecord{start: time.Now(), remote: remote, source: flow.Source(remote)}
	lc := &loggedConn{Conn: c, rec: rec, log: s.log, door: s.door, metrics: s.cfg.Metrics, closed: s.open.done}
	s.open.add()
	if s.door.admit(lc) == refused {
		s.open.done()
		s.log.Debug("ssh connection refused at accept", "remote", remote)
		s.cfg.Metrics.ConnectionOutcome("busy") // counted, not logged: a flood must not flood the log
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, bothLangs("ssh.full"))
		return nil // closed at once
	}
	ctx.SetValue(recordKey{}, rec)
	ctx.SetValue(connKey{}, lc)
	return lc
}

// connKey finds a connection's loggedConn in its ssh.Context.
type connKey struct{}

// authenticated ends the connection's startup, and starts the wait for its
// first session.
func (s *Server) authenticated(ctx ssh.Context) {
	lc, ok := ctx.Value(connKey{}).(*loggedConn)
	if !ok {
		return
	}
	s.door.authenticated(lc)
	lc.timer.Store(time.AfterFunc(s.cfg.SessionWait, lc.closeUnlessSession))
}

var (
	errNeedKey   = errors.New("staff: public key required")
	errPenalized = errors.New("too many failed connections from this address")
)

// serverConfig decides authentication per username. OpenSSH tries the
// "none" method first: wizard usernames (and unknown ones, which get the
// explanation) succeed with it, so a user whose agent holds many keys gets
// in without a prompt. "staff" must use a listed public key.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	rec := recordOf(ctx)
	cfg := &gossh.ServerConfig{
		NoClientAuth: true,
		NoClientAuthCallback: func(c gossh.ConnMetadata) (*gossh.Permissions, error) {
			switch {
			case rec.explaining:
				return nil, errPenalized
			case parseUser(c.User()).kind == userStaff:
				return nil, errNeedKey
			}
			return &gossh.Permissions{}, nil
		},
		// keyboard-interactive is never a way in. It is offered so that
		// staff whose key is refused are told why (OpenSSH prints the
		// instruction; it has no other place for text at that point).
		KeyboardInteractiveCallback: func(c gossh.ConnMetadata, ask gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
			if parseUser(c.User()).kind == userStaff && !rec.explaining && rec.once("staffkey") {
				msg := asciiFold(strings.ReplaceAll(bothLangs("ssh.staffkey"), "\r\n", "\n"))
				_, _ = ask("", msg, nil, nil)
			}
			return nil, errNeedKey
		},
		AuthLogCallback: func(c gossh.ConnMetadata, method string, err error) {
			if rec.auth(parseUser(c.User()), err) {
				s.authenticated(ctx)
			}
			if err != nil && method == "publickey" && parseUser(c.User()).kind == userStaff {
				s.log.Debug("staff key refused", "remote", rec.remote)
			}
		},
	}
	if rec.explaining {
		cfg.BannerCallback = func(gossh.ConnMetadata) string {
			if h := s.svc.Config().Helpdesk; h != "" { // a dead end for now: who can help
				return bothLangs("ssh.penalized") + sanitize.Text(h) + "\r\n"
			}
			return bothLangs("ssh.penalized")
		}
	}
	return cfg
}

// publicKey accepts a key only for "staff", and only a listed one.
func (s *Server) publicKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if recordOf(ctx).explaining || parseUser(ctx.User()).kind != userStaff {
		return false
	}
	_, ok := s.keys.lookup(key)
	return ok
}

// sessionChannel opens a session channel through filteredSession, at most
// maxChannelsPerConn at once per connection.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	rec := recordOf(ctx)
	if !rec.openChannel() {
		_ = nc.Reject(gossh.ResourceShortage, "too many sessions on this connection")
		return
	}
	defer rec.closeChannel()
	ssh.DefaultSessionHandler(srv, conn, filteredSession{nc}, ctx)
}

// lang is the language of a session's messages: the client's, else the
// default.
func (s *Server) lang(sess ssh.Session) string {
	if l := clientLang(sess); l != "" {
		return i18n.Pick(l, s.cfg.DefaultLang)
	}
	return s.cfg.DefaultLang
}

// clientLang is the locale the client sent: LC_ALL, LC_MESSAGES or LANG in
// POSIX order (OpenSSH sends LANG and LC_* by default on Debian and
// macOS), "" when it sent none.
func clientLang(sess ssh.Session) string {
	env := map[string]string{}
	for _, kv := range sess.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := env[k]; v != "" {
			return v
		}
	}
	return ""
}

// client is who calls flow operations from this session. Lang stays ""
// when the client sent no locale, so flow keeps the dossier's language.
func (s *Server) client(sess ssh.Session) flow.Client {
	c := flow.Client{Remote: clientIP(sess.RemoteAddr()).String(), Actor: "user"}
	if l := clientLang(sess); l != "" {
		c.Lang = i18n.Pick(l, s.cfg.DefaultLang)
	}
	return c
}
