package sshapp

import (
	"errors"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	bm "charm.land/wish/v2/bubbletea"

	"activated/flow/plain"
	"activated/flow/tui"
)

// plainMiddleware runs the line prompts for "+plain", TERM=dumb or a
// session without PTY, and hands every other session on to the TUI.
func (s *Server) plainMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		isPlain, winch := plainMode(sess)
		if !isPlain {
			next(sess)
			return
		}
		rec := recordOf(sess.Context())
		rec.setOutcome("plain")
		drainWindows(winch) // plain mode has no use for the window size
		err := plain.Run(sess.Context(), s.svc, sess, plain.Options{
			Code: parseUser(sess.User()).code, Client: s.client(sess),
			PublicHost: s.cfg.PublicHost, PublicPort: s.cfg.PublicPort, Services: s.cfg.Services,
			PTY: winch != nil,
		})
		if err != nil && !errors.Is(err, sess.Context().Err()) {
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
		var cleanup func()
		defer func() {
			if cleanup != nil {
				cleanup()
			}
		}()
		recordOf(sess.Context()).setOutcome("tui")
		program := func(sess ssh.Session) *tea.Program {
			m, done := tui.New(s.svc, tui.Options{
				Code: parseUser(sess.User()).code, Client: s.client(sess),
				PublicHost: s.cfg.PublicHost, PublicPort: s.cfg.PublicPort, Services: s.cfg.Services,
			})
			cleanup = done
			return tea.NewProgram(m, append(bm.MakeOptions(sess), tea.WithContext(sess.Context()))...)
		}
		bm.MiddlewareWithProgramHandler(program)(next)(sess)
	}
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
