package sshapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"charm.land/ssh"
	"charm.land/wish/v2"
	gossh "golang.org/x/crypto/ssh"

	"activated/flow/i18n"
	"activated/internal/sanitize"
)

// middleware builds the session chain. wish composes the list so that the
// LAST middleware listed runs FIRST: read it from the bottom up to follow a
// session through it.
func (s *Server) middleware() []wish.Middleware {
	return []wish.Middleware{
		// 7. TUI: the bubbletea wizard, one program per session tied to the
		//    session's context (wish's bubbletea middleware).
		s.tuiMiddleware,
		// 6. Plain: "+plain", TERM=dumb or no PTY get the line prompts.
		s.plainMiddleware,
		// 5. Wizard: a wizard username running a command is refused.
		s.noExecMiddleware,
		// 4. Route: unknown usernames get the explanation; "staff" has its key
		//    checked again and goes to the staff handler; wizards go on.
		s.routeMiddleware,
		// 3. Capacity: past MaxSessions, the session idle longest of the
		//    address holding the most gives way (sessionTable), or a short
		//    message and close.
		s.capacityMiddleware,
		// 2. Alive: everything below reads and writes through a session that
		//    records its activity; keepalives close the connection of a
		//    vanished client, and a session idle too long, or giving way to
		//    a newcomer, is closed.
		s.aliveMiddleware,
		// 1. Log: records the session's outcome and recovers a panic, so
		//    everything below it is covered.
		s.logMiddleware,
	}
}

// say writes a message for the user on the session's stderr. Line ends are
// "\n": with a PTY the session turns them into "\r\n".
func say(sess ssh.Session, msg string) {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	_, _ = io.WriteString(sess.Stderr(), msg)
}

// refusal is a refusal's message in the client's language or, when the
// client sent no locale (Windows' OpenSSH, PuTTY) or one that names no
// language (C.UTF-8), in every language, the default first.
func (s *Server) refusal(sess ssh.Session, msg func(lang string) string) string {
	if i18n.Names(clientLang(sess)) {
		return msg(s.lang(sess))
	}
	out := msg(s.cfg.DefaultLang)
	for _, l := range i18n.Langs {
		if l != s.cfg.DefaultLang {
			out = strings.TrimRight(out, "\r\n") + "\n\n" + msg(l)
		}
	}
	return out
}

// fail tells the user msg and ends the session with status 1.
func fail(sess ssh.Session, msg string) {
	say(sess, msg)
	_ = sess.Exit(1)
}

// drainWindows reads the session's window changes until the session ends,
// for the handlers that do not: charm.land/ssh sends each one on a channel
// of one slot, and an unread one blocks the session's request loop (and
// its goroutines) for good.
//
// It is called with the channel taken at the start of the session:
// charm.land/ssh writes the window size without a lock, so calling Pty()
// later races with a resize.
func drainWindows(winch <-chan ssh.Window) {
	if winch != nil {
		go func() {
			for range winch {
			}
		}()
	}
}

func (s *Server) logMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		rec := recordOf(sess.Context())
		start := time.Now()
		_, winch, _ := sess.Pty()
		defer drainWindows(winch) // from now on nobody else reads them
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("ssh session panic", "remote", rec.remote, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				rec.setOutcome("panic")
				_ = sess.Exit(1)
			}
			s.log.Debug("ssh session ended", "remote", rec.remote, "user", parseUser(sess.User()).class(),
				"duration", time.Since(start).Round(time.Millisecond))
		}()
		next(sess)
	}
}

func (s *Server) capacityMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		a := sess.(*activeSession) // aliveMiddleware runs first
		rec := recordOf(sess.Context())
		a.source, a.evictable = rec.source, parseUser(sess.User()).kind != userStaff
		staff := false // a listed key: staff get in even when the server is full
		if pk := sess.PublicKey(); !a.evictable && pk != nil {
			_, staff = s.keys.lookup(pk)
		}
		if !s.slots.acquire(a, staff) {
			rec.setOutcome("server-full")
			s.log.Warn("ssh session refused: max sessions reached", "remote", rec.remote, "max", s.cfg.MaxSessions)
			fail(sess, s.refusal(sess, func(l string) string { return i18n.T(l, "ssh.busy") }))
			return
		}
		defer s.slots.release(a)
		next(sess)
	}
}

func (s *Server) routeMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		rec := recordOf(sess.Context())
		switch u := parseUser(sess.User()); u.kind {
		case userStaff:
			s.staffSession(sess, rec)
		case userUnknown:
			rec.setOutcome("explained")
			suffix := "" // a user who asked for plain mode keeps it
			if _, ok := cutPlain(sess.User()); ok {
				suffix = plainSuffix
			}
			fail(sess, s.refusal(sess, func(lang string) string {
				return i18n.T(lang, "username.unknown",
					i18n.Command("activate"+suffix, s.cfg.PublicHost, s.cfg.PublicPort),
					i18n.Command(i18n.T(lang, "ssh.code")+suffix, s.cfg.PublicHost, s.cfg.PublicPort))
			}))
		default:
			next(sess)
		}
	}
}

// staffSession checks the session's key again — the key a PublicKeyHandler
// approved is not proof of the key that signed (soft-serve does the same),
// and the file may have changed since — then runs the staff handler.
func (s *Server) staffSession(sess ssh.Session, rec *connRecord) {
	_, winch, _ := sess.Pty()
	pk := sess.PublicKey()
	name, ok := s.keys.lookup(pk)
	if !ok || s.staff == nil {
		rec.setOutcome("staff-denied")
		s.log.Warn("staff session refused: key not listed", "remote", rec.remote)
		fail(sess, s.refusal(sess, func(l string) string { return i18n.T(l, "ssh.denied") }))
		return
	}
	defer s.track("staff")()
	who := Staff{Name: name, Fingerprint: gossh.FingerprintSHA256(pk), Remote: rec.remote}
	args := sess.Command()
	_, _, pty := sess.Pty()
	dashboard := len(args) == 0 && pty && s.cfg.Dashboard != nil
	ctx, cancel := s.untilStopping(sess.Context()) // a stop ends audit --follow too
	defer cancel()
	ctx, endCommand := context.WithCancelCause(ctx)
	defer endCommand(nil)
	// A key removed from the file (or a file made unsafe) ends the session,
	// a running `audit --follow` or dashboard included. A command is told
	// why through its context, so that it reports it as a failure (as JSON
	// with --json); the connection closes anyway a moment later.
	if conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn); ok {
		defer s.keys.watch(pk, func() {
			rec.setOutcome("staff-key-removed")
			s.log.Warn("staff session ended: key no longer listed", "remote", rec.remote, "staff", who.Name, "key", who.Fingerprint)
			msg := s.refusal(sess, func(l string) string { return i18n.T(l, "ssh.keyremoved") })
			if dashboard {
				s.sayThenClose(sess, conn, msg)
				return
			}
			endCommand(errors.New(msg))
			time.AfterFunc(2*time.Second, func() { _ = conn.Close() })
		})()
	}
	verb := "dashboard"
	if len(args) > 0 {
		verb = sanitize.Text(args[0])
	}
	s.log.Info("staff session", "remote", rec.remote, "staff", who.Name, "key", who.Fingerprint, "command", verb)
	if dashboard {
		s.dashboard(sess, who)
		rec.setOutcome("staff-dashboard")
		_ = sess.Exit(0)
		return
	}
	drainWindows(winch) // a command has no use for the window size
	code := s.staff(ctx, who, args, sess, sess, sess.Stderr())
	rec.setOutcome(fmt.Sprintf("staff-exit-%d", code))
	_ = sess.Exit(code)
}

func (s *Server) noExecMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if sess.RawCommand() != "" {
			recordOf(sess.Context()).setOutcome("exec-refused")
			fail(sess, s.refusal(sess, func(l string) string {
				return i18n.T(l, "ssh.noexec", i18n.Command("activate", s.cfg.PublicHost, s.cfg.PublicPort))
			}))
			return
		}
		next(sess)
	}
}

// plainMode tells whether a wizard session gets the line prompts, and the
// session's window changes when it has a PTY.
func plainMode(sess ssh.Session) (plain bool, winch <-chan ssh.Window) {
	pty, winch, ok := sess.Pty()
	if !ok {
		return true, nil
	}
	return pty.Term == "dumb" || parseUser(sess.User()).plain, winch
}
