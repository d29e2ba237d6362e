package sshapp

import (
	"context"
	"errors"
	"io"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	bm "charm.land/wish/v2/bubbletea"

	"activated/flow/i18n"
	"activated/flow/plain"
	"activated/flow/tui"
)

// plainMiddleware runs the line prompts for "+plain", TERM=dumb or a
// session without PTY, and hands every other session on to the TUI.
// A plain session's exit status, for scripts: 0 the procedure went to its
// end, 1 the service failed (unavailable: come back later), exitLeft the
// user left before the end (their progress is kept), exitDeadEnd nothing
// more can be done with this code (expired, revoked, already active…).
const (
	exitLeft    = 2
	exitDeadEnd = 3
)

func (s *Server) plainMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		isPlain, winch := plainMode(sess)
		if !isPlain {
			next(sess)
			return
		}
		rec := recordOf(sess.Context())
		rec.setOutcome("plain")
		defer s.wizardStarted(sess, "plain")()
		drainWindows(winch) // plain mode has no use for the window size
		ctx, cancel := s.untilStopping(sess.Context())
		defer cancel()
		rw := struct {
			io.Reader
			io.Writer
		}{typedInput(sess, sess.Environ()), sess}
		err := plain.Run(ctx, s.svc, rw, plain.Options{
			Code: parseUser(sess.User()).code, Client: s.client(sess),
			PublicHost: s.cfg.PublicHost, PublicPort: s.cfg.PublicPort, Services: s.cfg.Services,
			PTY: winch != nil, ASCII: !utf8Charset(sess.Environ()), Texts: &s.texts,
		})
		if s.stopped(sess, true) {
			return
		}
		switch {
		case err == nil: // exit status 0: the procedure went to its end
		case errors.Is(err, plain.ErrLeft):
			_ = sess.Exit(exitLeft)
		case errors.Is(err, plain.ErrDeadEnd):
			_ = sess.Exit(exitDeadEnd)
		case !errors.Is(err, sess.Context().Err()):
			rec.setOutcome("plain-error")
			s.log.Warn("plain session failed", "remote", rec.remote, "err", err)
			_ = sess.Exit(1)
		}
	}
}

// tuiMiddleware runs the wizard through wish's bubbletea middleware: one
// program per session, killed when the session's context ends, and the
// wizard's cleanup (which closes its flow session) called when the program
// is over, whatever the reason.
func (s *Server) tuiMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		var (
			cleanup func()
			screen  *tui.Screen
			input   *metered
			unhook  = func() bool { return false }
		)
		defer func() {
			if cleanup != nil {
				cleanup()
			}
		}()
		recordOf(sess.Context()).setOutcome("tui")
		defer s.wizardStarted(sess, "tui")()
		program := func(sess ssh.Session) *tea.Program {
			m, done := tui.New(s.svc, tui.Options{
				Code: parseUser(sess.User()).code, Client: s.client(sess),
				PublicHost: s.cfg.PublicHost, PublicPort: s.cfg.PublicPort, Services: s.cfg.Services,
				ASCII: !utf8Charset(sess.Environ()),
			})
			cleanup = done
			// The wizard draws itself as soon as it changes, and an idle
			// session costs no frame ticks (see tui.Screen).
			pty, winch, _ := sess.Pty()
			// charm.land/ssh queues the PTY's own window on the window
			// changes, which wish would pass on as a window size once the
			// program runs: bubbletea reports that size already, and the
			// Screen would take a second report for a change and draw the
			// first screen again. A real change is queued after it.
			select {
			case <-winch:
			default:
			}
			screen = tui.NewScreen(m, sess, append(sess.Environ(), "TERM="+pty.Term), pty.Window.Width, pty.Window.Height)
			// No signal handler: the server's SIGTERM is the server's, not
			// every session's (and it costs a goroutine per session).
			// The input last: a paste is cut to maxPaste (see pasteCap),
			// keys past a burst beyond inputRate are dropped (see metered).
			input = newMetered(newPasteCap(typedInput(sess, sess.Environ())))
			opts := append(bm.MakeOptions(sess), append(screen.Options(), tea.WithoutSignalHandler(), tea.WithInput(input))...)
			p := tea.NewProgram(screen, append(opts, tea.WithContext(sess.Context()))...)
			// Idle: the wizard restores the terminal, then leaves the sentence.
			recordOf(sess.Context()).setQuit(func(msg string) { p.Send(tui.Quit(msg)) })
			// A stop quits the program, which restores the terminal.
			unhook = context.AfterFunc(s.stopCtx, p.Quit)
			return p
		}
		bm.MiddlewareWithProgramHandler(program)(next)(sess)
		unhook()
		if screen != nil {
			screen.Close()
		}
		if input != nil {
			if n := input.dropped.Load(); n > 0 {
				s.log.Warn("ssh session keys dropped: more than anyone types", "remote", recordOf(sess.Context()).remote, "bytes", n)
			}
		}
		s.stopped(sess, false)
	}
}

// wizardStarted counts a wizard session of kind (tui or plain) as open,
// and its user at step 1 when it starts without a code; the function it
// returns counts the session closed.
func (s *Server) wizardStarted(sess ssh.Session, kind string) func() {
	if parseUser(sess.User()).code == "" {
		s.svc.EnterLogin()
	}
	return s.track(kind)
}

// track counts a session of kind as open until the returned function runs.
func (s *Server) track(kind string) func() {
	s.cfg.Metrics.SessionOpened(kind)
	return func() { s.cfg.Metrics.SessionClosed(kind) }
}

// untilStopping is ctx, also cancelled when the server starts to stop.
func (s *Server) untilStopping(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.stopCtx, cancel)
	return ctx, func() { unhook(); cancel() }
}

// comeBack is the command that resumes with the code from the mail, in
// the same front end: plain mode keeps its suffix.
func (s *Server) comeBack(lang string, isPlain bool) string {
	user := i18n.T(lang, "code.user")
	if isPlain {
		user += plain.Suffix
	}
	return i18n.Command(user, s.cfg.PublicHost, s.cfg.PublicPort)
}

// stopped tells a wizard user whose session the server is ending that
// nothing is lost and how to come back (or, Ephemeral, that the data is
// gone), in the front end it runs (isPlain), and reports whether it did.
func (s *Server) stopped(sess ssh.Session, isPlain bool) bool {
	select {
	case <-s.stopping:
	default:
		return false
	}
	lang := s.lang(sess)
	recordOf(sess.Context()).setOutcome("stopped")
	msg := i18n.T(lang, "ssh.stopping", s.comeBack(lang, isPlain))
	if s.cfg.Ephemeral {
		msg = i18n.T(lang, "ssh.demostop")
	}
	say(sess, msg)
	_ = sess.Exit(0)
	return true
}

// dashboard runs the staff dashboard as a bubbletea program tied to the
// session, like the wizard.
func (s *Server) dashboard(sess ssh.Session, who Staff) {
	program := func(sess ssh.Session) *tea.Program {
		m := s.cfg.Dashboard(sess.Context(), who)
		return tea.NewProgram(m, append(bm.MakeOptions(sess), tea.WithContext(sess.Context()))...)
	}
	bm.MiddlewareWithProgramHandler(program)(func(ssh.Session) {})(sess)
}
