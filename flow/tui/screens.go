package tui

import (
	"slices"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"activated/flow"
	"activated/flow/i18n"
	"activated/internal/sanitize"
)

func newBinding(keys ...string) key.Binding { return key.NewBinding(key.WithKeys(keys...)) }

// newInput is a one-line field drawing the terminal's own cursor (screen
// readers follow it), with no prompt: the screen draws the "> " marker.
func newInput(password bool, limit int) textinput.Model {
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = limit
	// Ctrl+V would read the server's clipboard: terminals paste with
	// bracketed paste (tea.PasteMsg) instead.
	in.KeyMap.Paste.SetEnabled(false)
	if password {
		in.EchoMode = textinput.EchoPassword
	}
	plain := lipgloss.NewStyle()
	st := textinput.Styles{
		Focused: textinput.StyleState{Text: plain, Placeholder: plain.Faint(true), Suggestion: plain, Prompt: plain},
		Blurred: textinput.StyleState{Text: plain, Placeholder: plain.Faint(true), Suggestion: plain, Prompt: plain},
		Cursor:  textinput.CursorStyle{Shape: tea.CursorBlock, Blink: true},
	}
	in.SetStyles(st)
	in.SetVirtualCursor(false)
	return in
}

// goStep shows the screen of step s, pre-filled from the view flow gives.
func (m *model) goStep(s flow.Step) tea.Cmd {
	m.step, m.err, m.note, m.focus, m.scroll = s, nil, "", 0, 0
	d := m.d
	if m.box.get() == nil { // steps 1 and 2: no dossier yet, only the typed login
		d = flow.Dossier{Login: m.typed}
	}
	m.view = m.svc.View(d, s)
	v := &m.view
	var cmd tea.Cmd
	switch s {
	case flow.StepLogin:
		m.code.SetValue("")
		m.typed = ""
		m.focusInputs(&m.login)
	case flow.StepRecoveryCode:
		m.focusInputs(&m.code)
	case flow.StepCharter:
		m.accepted = v.Accepted
		m.charterWidth = 0 // render at the next fit
	case flow.StepDirectory:
		m.choice, m.confirmed = -1, false
		if v.Chosen {
			m.choice, m.confirmed = 1, true
			if v.Public {
				m.choice = 0
			}
		}
	case flow.StepMailbox:
		m.redirect, m.keepCopy = v.Redirect, v.KeepCopy
		m.addr.SetValue(sanitize.Text(v.Address))
		m.addr.CursorEnd()
		m.focusInputs()
	case flow.StepVerifyRedirect:
		m.verify.SetValue("")
		m.focusInputs(&m.verify)
	case flow.StepPassword:
		m.pw.SetValue("")
		m.pw2.SetValue("")
		m.check = flow.PasswordCheck{}
		m.focusInputs(&m.pw)
		cmd = m.checkCmd()
	default:
		m.focusInputs()
	}
	return cmd
}

// focusInputs gives the keyboard to in (none when nil) and blurs the rest.
func (m *model) focusInputs(in ...*textinput.Model) {
	for _, x := range []*textinput.Model{&m.login, &m.code, &m.addr, &m.verify, &m.pw, &m.pw2} {
		x.Blur()
	}
	for _, x := range in {
		x.Focus()
	}
}

// focused is the text field that has the keyboard, if any.
func (m *model) focused() *textinput.Model {
	for _, x := range []*textinput.Model{&m.login, &m.code, &m.addr, &m.verify, &m.pw, &m.pw2} {
		if x.Focused() {
			return x
		}
	}
	return nil
}

// input passes a key or a paste to the focused field.
func (m *model) input(msg tea.Msg) tea.Cmd {
	in := m.focused()
	if in == nil {
		return nil
	}
	before := in.Value()
	if k, ok := msg.(tea.KeyPressMsg); ok && k.Text != "" && utf8.RuneCountInString(before) >= in.CharLimit {
		// A full field takes no more: skip its update, which walks the
		// whole value (110 µs a key for a full password field, under a
		// paste from a terminal without bracketed paste).
		return nil
	}
	var cmd tea.Cmd
	*in, cmd = in.Update(msg)
	if in.Value() != before {
		m.err, m.note = nil, ""
		if in == &m.pw {
			return tea.Batch(cmd, m.checkCmd())
		}
	}
	return cmd
}

// key handles a key press on the current screen.
func (m *model) key(k tea.KeyPressMsg) tea.Cmd {
	ks := k.String()
	switch m.step {
	case flow.StepLogin:
		if ks == "enter" {
			if v := strings.TrimSpace(m.login.Value()); v != "" {
				return m.beginCmd(v)
			}
			return nil
		}
	case flow.StepRecoveryCode:
		switch ks {
		case "enter":
			if v := strings.TrimSpace(m.code.Value()); v != "" {
				return m.openCmd(v)
			}
			return nil
		case "esc":
			return m.back()
		}
	case flow.StepCharter:
		switch ks {
		case "space":
			m.accepted, m.err = !m.accepted, nil
		case "enter":
			if !m.accepted {
				m.err = localErr("charter.must")
				return nil
			}
			return m.sessionCmd(true, func(s *flow.Session) error { return s.AcceptCharter(true) }, nil)
		case "home":
			m.charter.GotoTop()
		case "end":
			m.charter.GotoBottom()
		default:
			m.charter, _ = m.charter.Update(k)
		}
		return nil
	case flow.StepDirectory:
		switch ks {
		case "up", "shift+tab":
			m.focus = (m.focus + 2) % 3
		case "down", "tab":
			m.focus = (m.focus + 1) % 3
		case "space":
			m.err = nil
			if m.focus < 2 {
				m.choice = m.focus
			} else {
				m.confirmed = !m.confirmed
			}
		case "enter":
			switch {
			case m.choice < 0:
				m.err = localErr("directory.choose")
			case !m.confirmed:
				m.err = localErr("directory.must")
			default:
				public := m.choice == 0
				return m.sessionCmd(true, func(s *flow.Session) error { return s.ChooseDirectory(public) }, nil)
			}
		case "esc":
			return m.back()
		}
		return nil
	case flow.StepMailbox:
		return m.mailboxKey(k)
	case flow.StepVerifyRedirect:
		switch ks {
		case "enter":
			if v := strings.TrimSpace(m.verify.Value()); v != "" {
				return m.sessionCmd(true, func(s *flow.Session) error { return s.VerifyRedirect(v) }, nil)
			}
			return nil
		case "ctrl+r":
			return m.sessionCmd(true, (*flow.Session).ResendRedirect, func(d *doneMsg) { d.stay, d.note = true, "verify.resent" })
		case "esc":
			return m.back()
		}
	case flow.StepPassword:
		return m.passwordKey(k)
	case flow.StepDone:
		switch ks {
		case "enter":
			return m.quit(m.doneText())
		case "down", "tab", "pgdown":
			m.scroll = m.shown + 1
		case "up", "shift+tab", "pgup":
			m.scroll = max(m.shown-1, 0)
		}
		return nil
	}
	return m.input(k)
}

// back shows the step Esc leads to, if any.
func (m *model) back() tea.Cmd {
	to := m.view.Back
	if to == 0 {
		return nil
	}
	if m.box.get() != nil {
		to = m.d.Show(to)
	}
	return m.goStep(to)
}

// mailboxStops are the focus stops of the mailbox screen: the redirect box,
// then, when it is ticked, the address and the keep-copy box if offered.
func (m *model) mailboxStops() int {
	switch {
	case !m.redirect:
		return 1
	case m.view.KeepOffered:
		return 3
	}
	return 2
}

func (m *model) mailboxKey(k tea.KeyPressMsg) tea.Cmd {
	n := m.mailboxStops()
	switch k.String() {
	case "up", "shift+tab":
		m.setMailboxFocus((m.focus + n - 1) % n)
		return nil
	case "down", "tab":
		m.setMailboxFocus((m.focus + 1) % n)
		return nil
	case "esc":
		return m.back()
	case "enter":
		addr := ""
		if m.redirect {
			if addr = strings.TrimSpace(m.addr.Value()); addr == "" {
				m.err = flow.ErrInvalidAddress
				return nil
			}
		}
		keepCopy := m.keepCopy && m.view.KeepOffered
		return m.sessionCmd(true, func(s *flow.Session) error { return s.ChooseMailbox(addr, keepCopy) }, nil)
	case "space":
		switch m.focus {
		case 0:
			m.redirect, m.err = !m.redirect, nil
			return nil
		case 2:
			m.keepCopy, m.err = !m.keepCopy, nil
			return nil
		}
	}
	return m.input(k)
}

func (m *model) setMailboxFocus(f int) {
	m.focus = f
	if f == 1 {
		m.focusInputs(&m.addr)
	} else {
		m.focusInputs()
	}
}

func (m *model) passwordKey(k tea.KeyPressMsg) tea.Cmd {
	retry := m.view.Saved
	switch k.String() {
	case "esc":
		return m.back()
	case "enter":
		if retry {
			return m.finishCmd("")
		}
		if m.focus == 0 {
			m.focus = 1
			m.focusInputs(&m.pw2)
			return nil
		}
		if m.pw.Value() != m.pw2.Value() {
			m.err = localErr("pw.mismatch")
			return nil
		}
		return m.finishCmd(m.pw.Value())
	case "up", "down", "tab", "shift+tab":
		if !retry {
			m.focus = 1 - m.focus
			m.focusInputs([]*textinput.Model{&m.pw, &m.pw2}[m.focus])
		}
		return nil
	}
	if retry {
		return nil
	}
	return m.input(k)
}

func (m *model) finishCmd(pw string) tea.Cmd {
	ctx := m.ctx
	cmd := m.sessionCmd(true, func(s *flow.Session) error { return s.Finish(ctx, pw) }, nil)
	m.finishing = true
	return cmd
}

// Screen bodies.

// intro draws the step's sentences from the view.
func (m *model) intro(b *builder, st lipgloss.Style) {
	for _, x := range m.view.Intro {
		b.para(i18n.Say(m.lang, "", x, keep(i18n.CodeCommand(m.lang, m.opts.PublicHost, m.opts.PublicPort))), st)
		b.gap()
	}
}

func (m *model) body(b *builder) {
	t := func(key string, args ...any) string { return i18n.T(m.lang, key, args...) }
	v := &m.view
	switch m.step {
	case flow.StepCharter:
		if !m.charterBrief {
			m.intro(b, styleText)
		}
		b.viewport(m.charter.View(), m.charter.Height())
		if m.charter.TotalLineCount() > m.charter.Height() {
			b.para(t("charter.position", int(m.charter.ScrollPercent()*100)), styleHelp)
		}
		b.gap()
		b.item(true, box(m.accepted), t("charter.accept"))
		return
	case flow.StepDone:
		b.para(i18n.Say(m.lang, "", v.Intro[0], ""), styleTitle)
		b.gap()
		b.para(t("done.login", sanitize.Text(v.Login)), styleText)
		if name := sanitize.Text(v.Name); name != "" {
			b.para(t("done.name", name), styleText)
		}
		for _, x := range v.Intro[1:] {
			b.para(i18n.Say(m.lang, "", x, ""), styleText)
		}
		if len(m.opts.Services) > 0 {
			b.gap()
			b.para(t("done.services"), styleText)
			for _, s := range m.opts.Services {
				b.para("- "+sanitize.Text(s), styleText)
			}
		}
		b.gap()
		b.para(t("done.notice"), styleText)
		b.para(t("done.bye"), styleText)
		return
	}
	m.intro(b, styleText)
	switch m.step {
	case flow.StepLogin:
		b.input(t("login.prompt"), &m.login)
	case flow.StepRecoveryCode:
		b.input(t("code.prompt"), &m.code)
	case flow.StepDirectory:
		b.item(m.focus == 0, radio(m.choice == 0), t("directory.yes"))
		b.item(m.focus == 1, radio(m.choice == 1), t("directory.no"))
		b.gap()
		b.item(m.focus == 2, box(m.confirmed), t("directory.confirm"))
	case flow.StepMailbox:
		b.item(m.focus == 0, box(m.redirect), t("mailbox.redirect"))
		if m.redirect {
			b.input(t("mailbox.address"), &m.addr)
			if v.KeepOffered {
				b.item(m.focus == 2, box(m.keepCopy), t("mailbox.keep"))
			}
			if v.NeedsVerification(m.addr.Value()) {
				b.gap()
				b.para(t("mailbox.verify"), styleText)
			}
		}
	case flow.StepVerifyRedirect:
		b.input(t("verify.prompt"), &m.verify)
	case flow.StepPassword:
		if v.Saved {
			return
		}
		b.input(t("pw.prompt"), &m.pw)
		b.input(t("pw.confirm"), &m.pw2)
		b.gap()
		for _, r := range m.rules() {
			mark := t("pw.ko")
			if r.OK {
				mark = t("pw.ok")
			}
			b.item(false, mark, i18n.RuleText(m.lang, r.Rule, m.svc.Config().Password))
		}
		b.keepVisible()
	}
}

// rules is the checklist: the last verdict, or the view's rules (all unmet)
// before the first one arrives.
func (m *model) rules() []flow.RuleResult {
	if len(m.check.Rules) > 0 {
		return m.check.Rules
	}
	return m.view.Rules
}

// help lists the keys of the current screen.
func (m *model) help() []string {
	t := func(key string) string { return i18n.T(m.lang, key) }
	var h []string
	switch m.step {
	case flow.StepLogin:
		h = []string{t("help.next")}
	case flow.StepRecoveryCode:
		h = []string{t("help.next"), t("help.newcode")}
	case flow.StepCharter:
		h = []string{t("help.scroll"), t("help.tick"), t("help.next")}
	case flow.StepDirectory:
		h = []string{t("help.focus"), t("help.tick"), t("help.next"), t("help.back")}
	case flow.StepMailbox:
		h = []string{t("help.focus"), t("help.tick"), t("help.next"), t("help.back")}
	case flow.StepVerifyRedirect:
		h = []string{t("help.next"), t("help.resend"), t("help.back")}
	case flow.StepPassword:
		if !m.view.Saved {
			h = []string{t("help.tab")}
		}
		h = append(h, t("help.next"), t("help.back"))
	case flow.StepDone:
		h = []string{t("help.leave")}
	}
	if m.view.Back == 0 { // a password reset: no way back
		h = slices.DeleteFunc(h, func(s string) bool { return s == t("help.back") })
	}
	return append(h, t("help.lang"), t("help.quit"))
}

// status is the one-line area under the body: busy, error or note.
func (m *model) status() (string, lipgloss.Style) {
	switch {
	case m.busy && m.finishing:
		return i18n.Finishing(m.lang, m.view.Reset), styleBusy
	case m.busy:
		return i18n.T(m.lang, "busy"), styleBusy
	case m.err != nil:
		return m.errText(m.err), styleErr
	case m.note != "":
		return i18n.T(m.lang, m.note), styleNote
	}
	return "", styleText
}

func (m *model) errText(err error) string {
	if le, ok := err.(localErr); ok {
		return i18n.T(m.lang, string(le))
	}
	return i18n.Explain(m.lang, err, m.restart(), m.svc.Config().Helpdesk)
}

func (m *model) doneText() string {
	t := func(key string, args ...any) string { return i18n.T(m.lang, key, args...) }
	lines := []string{t("done.title"), t("done.login", sanitize.Text(m.d.Login))}
	if len(m.opts.Services) > 0 {
		lines = append(lines, t("done.services"))
		for _, s := range m.opts.Services {
			lines = append(lines, "- "+sanitize.Text(s))
		}
	}
	return strings.Join(lines, "\n")
}

func box(on bool) string {
	if on {
		return "[x]"
	}
	return "[ ]"
}

func radio(on bool) string {
	if on {
		return "(*)"
	}
	return "( )"
}
