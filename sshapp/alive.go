package sshapp

import (
	"sync/atomic"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"activated/flow/i18n"
)

// activeSession is a session that records when it last read or wrote: the
// session's own activity, which keepalive traffic on the connection is not.
type activeSession struct {
	ssh.Session
	last  atomic.Int64 // UnixNano of the last Read or Write
	plain bool         // the line prompts run on it (see plainMode)

	// Set once the server has a place for it (sessionTable).
	source    string        // the client's source, as the door counts it
	evictable bool          // a wizard session: may give its place up
	evicted   chan struct{} // closed when it gave its place to a newcomer
}

func (a *activeSession) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activeSession) idle() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

func (a *activeSession) Read(p []byte) (int, error) {
	n, err := a.Session.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}

func (a *activeSession) Write(p []byte) (int, error) {
	a.touch()
	return a.Session.Write(p)
}

// aliveMiddleware passes the session on as an activeSession and watches it
// until it ends: a client that stops answering keepalives is gone (its
// Wi-Fi dropped, its lid closed) and its connection is closed, so the
// dossier it holds is released within seconds; a session idle for
// IdleTimeout is told so and closed. charm's own idle timeout cannot tell
// the two apart (keepalive replies reset it), so it only limits
// connections that never open a session.
func (s *Server) aliveMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		isPlain, _ := plainMode(sess) // now: the window changes later
		a := &activeSession{Session: sess, plain: isPlain, evicted: make(chan struct{})}
		a.touch()
		conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
		if ok {
			done := make(chan struct{})
			defer close(done)
			go s.watch(a, conn, done)
		}
		next(a)
	}
}

// watch sends a keepalive every Config.KeepAlive and closes conn when one
// gets no reply within two periods, or when sess has been idle for
// Config.IdleTimeout. It returns when done is closed or conn closes.
func (s *Server) watch(sess *activeSession, conn gossh.Conn, done <-chan struct{}) {
	rec := recordOf(sess.Context())
	ctxDone := sess.Context().Done()
	idle := time.NewTimer(s.cfg.IdleTimeout)
	defer idle.Stop()
	var ping <-chan time.Time
	if s.cfg.KeepAlive > 0 {
		t := time.NewTicker(s.cfg.KeepAlive)
		defer t.Stop()
		ping = t.C
	}
	var reply chan struct{} // non-nil while a keepalive waits for its reply
	var replyBy <-chan time.Time
	for {
		select {
		case <-done:
			return
		case <-ctxDone:
			return
		case <-ping:
			if reply != nil {
				continue // the last one is still waiting
			}
			reply = make(chan struct{})
			replyBy = time.After(2 * s.cfg.KeepAlive)
			go func(reply chan struct{}) {
				// Any answer counts, failure included (OpenSSH replies
				// failure). An error means conn is closed: watch ends.
				_, _, _ = conn.SendRequest("keepalive@openssh.com", true, nil)
				close(reply)
			}(reply)
		case <-reply:
			reply, replyBy = nil, nil
		case <-replyBy:
			s.log.Info("ssh client gone", "remote", rec.remote, "after", 2*s.cfg.KeepAlive)
			rec.setOutcome("client-gone")
			_ = conn.Close()
			return
		case <-idle.C:
			if left := s.cfg.IdleTimeout - sess.idle(); left > 0 {
				idle.Reset(left)
				continue
			}
			s.log.Info("ssh session idle", "remote", rec.remote, "after", s.cfg.IdleTimeout)
			rec.setOutcome("idle")
			s.end(sess, conn, done, "ssh.idle")
			return
		case <-sess.evicted:
			s.log.Info("ssh session idle, closed for a newcomer: max sessions reached", "remote", rec.remote,
				"idle", sess.idle().Round(time.Second))
			rec.setOutcome("evicted")
			s.end(sess, conn, done, "ssh.evicted")
			return
		}
	}
}

// end tells the user why the session closes (the message key, which takes
// the command to come back with), then closes its connection.
func (s *Server) end(sess *activeSession, conn gossh.Conn, done <-chan struct{}, key string) {
	lang := s.lang(sess)
	msg := i18n.T(lang, key, s.comeBack(lang, sess.plain))
	if quit := recordOf(sess.Context()).quitter(); quit != nil {
		// The wizard restores the terminal, then leaves msg on it.
		quit(msg)
		select {
		case <-sess.Context().Done():
		case <-done:
		case <-time.After(time.Second):
		}
		_ = conn.Close()
		return
	}
	s.sayThenClose(sess, conn, msg)
}

// sayThenClose tells the user msg, then closes the connection — after at
// most a second, should the client not read.
func (s *Server) sayThenClose(sess ssh.Session, conn gossh.Conn, msg string) {
	said := make(chan struct{})
	go func() {
		defer close(said)
		say(sess, "\n"+msg)
	}()
	select {
	case <-said:
	case <-time.After(time.Second):
	}
	_ = conn.Close()
}
