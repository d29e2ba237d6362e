// Package tui owns the full-screen activation wizard users reach over SSH:
// one screen per step of the procedure, driven by flow.Service and
// flow.Session, every sentence from flow/i18n, every untrusted string
// sanitized before it reaches the terminal. Operations that touch the store
// or the directory run as tea.Cmd, never inside Update.
package tui

import (
	"context"
	"sync"

	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"activated/flow"
	"activated/flow/i18n"
)

// Options describe one SSH session.
type Options struct {
	Code       string      // from the SSH username; "" = start at the login screen
	Client     flow.Client // Remote, Actor "user", Lang (from the client's LANG via i18n.Pick)
	PublicHost string      // for the "ssh CODE@host" hints
	PublicPort int
	Services   []string // listed on the last screen
	// ASCII draws only ASCII: the client's charset is not UTF-8 (LANG
	// fr_FR.ISO-8859-1 through luit), so any other byte would break the
	// width arithmetic of its terminal.
	ASCII bool
}

// New returns the wizard and a cleanup that closes the flow session; call
// it when the program ends, whatever the reason.
func New(svc *flow.Service, opts Options) (tea.Model, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	lang := opts.Client.Lang
	if lang == "" {
		lang = i18n.Pick("", svc.Config().DefaultLang)
	}
	m := &model{
		svc: svc, opts: opts, ctx: ctx, box: &sessionBox{}, lang: lang, chosen: opts.Client.Lang,
		width: 80, height: 24, step: flow.StepLogin, choice: -1,
		login:  newInput(false, 64),
		code:   newInput(false, 64),
		addr:   newInput(false, 254),
		verify: newInput(false, 64),
		pw:     newInput(true, 1024),
		pw2:    newInput(true, 1024),
	}
	m.charter = viewport.New()
	m.charter.SoftWrap = true
	m.charter.KeyMap = viewport.KeyMap{
		PageDown: newBinding("pgdown"), PageUp: newBinding("pgup"),
		Down: newBinding("down"), Up: newBinding("up"),
	}
	m.login.Focus()
	m.view = svc.View(flow.Dossier{}, flow.StepLogin)
	if opts.Code != "" {
		m.step = flow.StepRecoveryCode
		m.view = svc.View(flow.Dossier{}, flow.StepRecoveryCode)
		m.code.SetValue(opts.Code)
		m.focusInputs(&m.code) // the login field is not on this screen
		m.busy = true
	}
	return m, func() {
		cancel()
		m.box.close()
	}
}

// sessionBox holds the flow session. Open runs in a command goroutine and
// may finish after the program ended: the box then closes it at once.
type sessionBox struct {
	mu     sync.Mutex
	s      *flow.Session
	closed bool
}

// set stores s; it reports false (and closes s) when the box was closed.
func (b *sessionBox) set(s *flow.Session) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.Close()
		return false
	}
	b.s = s
	return true
}

func (b *sessionBox) get() *flow.Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

func (b *sessionBox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.s != nil {
		b.s.Close()
	}
}

// localErr is a mistake caught on screen; its value is a catalogue key.
type localErr string

func (e localErr) Error() string { return string(e) }

// Messages from commands.
type (
	beganMsg  struct{ err error }
	openedMsg struct {
		d    flow.Dossier
		lang string // the language the session shows
		err  error
	}
	// doneMsg ends a session operation; d is the dossier read after it.
	doneMsg struct {
		d     flow.Dossier
		dOK   bool
		err   error
		ends  bool   // err ends the session
		stay  bool   // keep the current screen
		note  string // catalogue key shown on success
		quiet bool   // a background operation: errors other than the end of the session are dropped
	}
	checkMsg struct {
		seq   int
		check flow.PasswordCheck
	}
	closedMsg struct{}
	quitMsg   struct{ text string }
)

// Quit is a message that ends the wizard with text left on the terminal,
// once it is restored (the server closing an idle session).
func Quit(text string) tea.Msg { return quitMsg{text} }

// model is the wizard. It is used through a pointer: Update mutates it.
type model struct {
	svc  *flow.Service
	opts Options
	ctx  context.Context
	box  *sessionBox
	lang string
	// chosen is the language the user asked for: the client's LANG or F2;
	// "" lets the dossier's saved language win once it is open.
	chosen string

	width, height int
	step          flow.Step
	view          flow.StepView
	d             flow.Dossier
	busy          bool
	finishing     bool   // the busy operation is Finish
	err           error  // shown in the error area
	note          string // catalogue key of a non-error status
	quitting      bool
	final         string // what stays on the terminal after the end

	login, code, addr, verify, pw, pw2 textinput.Model
	focus                              int
	typed                              string // the login typed at step 1

	charter      viewport.Model
	charterWidth int  // width the charter text was rendered at
	charterBrief bool // the window is too short for the charter's introduction
	accepted     bool
	choice       int // directory: -1 none, 0 appear, 1 do not appear
	confirmed    bool
	redirect     bool
	keepCopy     bool
	check        flow.PasswordCheck
	checkSeq     int
	pwWatch      *flow.PasswordWatch
	// A body with nothing to focus (the last screen) taller than the
	// window scrolls: scroll is the first line asked for, shown the first
	// line the last frame drew.
	scroll, shown int
}

func (m *model) Init() tea.Cmd {
	if m.opts.Code != "" {
		return m.openCmd(m.opts.Code)
	}
	return nil
}

func (m *model) restart() string {
	return keep(i18n.Command("activate", m.opts.PublicHost, m.opts.PublicPort))
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.fit()
	return m, cmd
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c":
			return m.quit(i18n.Ended(m.lang, m.typed != "" || m.box.get() != nil || m.opts.Code != "", "", m.opts.PublicHost, m.opts.PublicPort))
		case "f2", "ctrl+t":
			return m.switchLang()
		}
		if m.busy || m.quitting || m.tooSmall() {
			return nil
		}
		return m.key(msg)
	case tea.PasteMsg:
		if m.busy || m.quitting {
			return nil
		}
		return m.input(msg)
	case beganMsg:
		m.busy = false
		if msg.err != nil {
			m.err = msg.err
			return nil
		}
		m.code.SetValue("")
		return m.goStep(flow.StepRecoveryCode)
	case openedMsg:
		m.busy = false
		if flow.OpenEnds(msg.err) {
			return m.quit(m.errText(msg.err))
		}
		if msg.err != nil {
			m.err = msg.err
			return nil
		}
		m.d, m.lang = msg.d, msg.lang
		return tea.Batch(m.watch(), m.goStep(m.d.Next()))
	case doneMsg:
		return m.done(msg)
	case checkMsg:
		if msg.seq == m.checkSeq {
			m.check = msg.check
		}
	case quitMsg:
		return m.quit(msg.text)
	case closedMsg:
		return m.quit(m.errText(flow.ErrClosed))
	}
	return nil
}

// done handles the end of a session operation.
func (m *model) done(msg doneMsg) tea.Cmd {
	if !msg.quiet {
		m.busy, m.finishing = false, false
	}
	if msg.dOK {
		m.d = msg.d
		m.view = m.svc.View(m.d, m.step) // e.g. the password was taken, the rest failed
	}
	if msg.err != nil {
		if msg.ends {
			return m.quit(m.errText(msg.err))
		}
		if !msg.quiet {
			m.err = msg.err
		}
		return nil
	}
	if msg.quiet {
		return nil
	}
	if msg.stay {
		m.err, m.note = nil, msg.note
		return nil
	}
	return m.goStep(m.d.After(m.step))
}

func (m *model) quit(text string) tea.Cmd {
	if m.quitting {
		return nil
	}
	m.quitting, m.final = true, text
	return tea.Quit
}

func (m *model) switchLang() tea.Cmd {
	m.lang = i18n.Other(m.lang)
	m.chosen = m.lang
	s := m.box.get()
	if s == nil || m.quitting {
		return nil
	}
	lang := m.lang
	return m.sessionCmd(false, func(s *flow.Session) error { return s.SetLang(lang) }, func(d *doneMsg) { d.quiet = true })
}

// Commands. Each runs off the Update goroutine.

func (m *model) beginCmd(login string) tea.Cmd {
	m.busy, m.err, m.note, m.typed = true, nil, "", login
	svc, ctx, c := m.svc, m.ctx, m.opts.Client
	c.Lang = m.lang
	return func() tea.Msg { return beganMsg{svc.Begin(ctx, login, c)} }
}

func (m *model) openCmd(code string) tea.Cmd {
	m.busy, m.err, m.note = true, nil, ""
	svc, ctx, c, box, login := m.svc, m.ctx, m.opts.Client, m.box, m.typed
	c.Lang = m.chosen
	return func() tea.Msg {
		s, err := svc.OpenFor(ctx, login, code, c)
		if err != nil {
			return openedMsg{err: err}
		}
		d, err := s.Dossier()
		if err != nil {
			s.Close()
			return openedMsg{err: err}
		}
		if !box.set(s) {
			return openedMsg{err: flow.ErrClosed}
		}
		return openedMsg{d: d, lang: s.Lang()}
	}
}

// watch reports a session that ends under us (staff revoked the dossier).
func (m *model) watch() tea.Cmd {
	s, ctx := m.box.get(), m.ctx
	return func() tea.Msg {
		select {
		case <-s.Done():
			if ctx.Err() == nil {
				return closedMsg{}
			}
		case <-ctx.Done():
		}
		return nil
	}
}

// sessionCmd runs op on the session, then reads the dossier back. busy
// shows the "please wait" line meanwhile.
func (m *model) sessionCmd(busy bool, op func(*flow.Session) error, tweak func(*doneMsg)) tea.Cmd {
	s := m.box.get()
	if s == nil {
		return nil
	}
	if busy {
		m.busy, m.err, m.note = true, nil, ""
	}
	return func() tea.Msg {
		var msg doneMsg
		msg.err = op(s)
		msg.ends = s.Ends(msg.err)
		var err error
		msg.d, err = s.Dossier()
		msg.dOK = err == nil
		if msg.err == nil {
			msg.err = err
		}
		if tweak != nil {
			tweak(&msg)
		}
		return msg
	}
}

func (m *model) checkCmd() tea.Cmd {
	s := m.box.get()
	if s == nil {
		return nil
	}
	// One check at a time per session, once the typing pauses, on the
	// latest value (flow.PasswordWatch).
	if m.pwWatch == nil {
		m.pwWatch = s.WatchPassword()
	}
	seq, run := m.pwWatch.Set(m.pw.Value())
	m.checkSeq = seq
	if run == nil {
		return nil
	}
	return func() tea.Msg { r := run(); return checkMsg{r.Seq, r.Check} }
}

func (m *model) tooSmall() bool { return m.width < minWidth || m.height < minHeight }
