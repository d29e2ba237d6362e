package tui

import (
	"strings"

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

// goStep shows the screen of step s, pre-filled from the dossier.
func (m *model) goStep(s flow.Step) tea.Cmd {
	m.step, m.err, m.note, m.focus = s, nil, "", 0
	d := &m.d
	var cmd tea.Cmd
	switch s {
	case flow.StepLogin:
		m.code.SetValue("")
		m.focusInputs(&m.login)
	case flow.StepRecoveryCode:
		m.focusInputs(&m.code)
	case flow.StepCharter:
		m.accepted = !d.CharterAcceptedAt.IsZero()
		m.charterWidth = 0 // render at the next fit
	case flow.StepDirectory:
		m.choice, m.confirmed = -1, false
		if d.DirectoryChosen {
			m.choice, m.confirmed = 1, true
			if d.PublicDirectory {
				m.choice = 0
			}
		}
	case flow.StepMailbox:
		m.redirect, m.keepCopy = d.Redirect != "", true
		addr := d.Redirect
		if d.MailboxChosen && d.Redirect != "" {
			m.keepCopy = d.KeepCopy
		}
		if addr == "" && len(d.RecoveryMails) > 0 {
			addr = d.RecoveryMails[0]
		}
		m.addr.SetValue(sanitize.Text(addr))
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
			m.fromLogin = false
			return m.goStep(flow.StepLogin)
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
			return m.goStep(flow.StepCharter)
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
			return m.goStep(flow.StepMailbox)
		}
	case flow.StepPassword:
		return m.passwordKey(k)
	case flow.StepDone:
		if ks == "enter" {
			return m.quit(m.doneText())
		}
		return nil
	}
	return m.input(k)
}

// mailboxStops are the focus stops of the mailbox screen: the redirect box,
// then, when it is ticked, the address and the keep-copy box.
func (m *model) mailboxStops() int {
	if m.redirect {
		return 3
	}
	return 1
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
		return m.goStep(flow.StepDirectory)
	case "enter":
		addr := ""
		if m.redirect {
			if addr = strings.TrimSpace(m.addr.Value()); addr == "" {
				m.err = flow.ErrInvalidAddress
				return nil
			}
		}
		keepCopy := m.keepCopy
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
	retry := !m.d.PasswordSet.IsZero()
	switch k.String() {
	case "esc":
		return m.goStep(flow.StepMailbox)
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

func (m *model) body(b *builder) {
	t := func(key string, args ...any) string { return i18n.T(m.lang, key, args...) }
	switch m.step {
	case flow.StepLogin:
		b.para(t("login.intro"), styleText)
		b.gap()
		b.input(t("login.prompt"), &m.login)
	case flow.StepRecoveryCode:
		if m.fromLogin {
			b.para(t("code.sent"), styleText)
			b.gap()
			b.para(t("code.later", keep(i18n.Command(t("code.user"), m.opts.PublicHost, m.opts.PublicPort))), styleText)
			b.gap()
		}
		b.input(t("code.prompt"), &m.code)
	case flow.StepCharter:
		if !m.charterBrief {
			b.para(t("charter.intro"), styleText)
			b.gap()
		}
		b.viewport(m.charter.View(), m.charter.Height())
		b.gap()
		b.item(true, box(m.accepted), t("charter.accept"))
	case flow.StepDirectory:
		b.para(t("directory.question"), styleText)
		b.gap()
		b.item(m.focus == 0, radio(m.choice == 0), t("directory.yes"))
		b.item(m.focus == 1, radio(m.choice == 1), t("directory.no"))
		b.gap()
		b.item(m.focus == 2, box(m.confirmed), t("directory.confirm"))
	case flow.StepMailbox:
		if m.d.IsStaff(m.svc.Config().StaffAffiliations) {
			b.para(t("mailbox.staff"), styleText)
			b.gap()
		}
		b.item(m.focus == 0, box(m.redirect), t("mailbox.redirect"))
		if m.redirect {
			b.input(t("mailbox.address"), &m.addr)
			b.item(m.focus == 2, box(m.keepCopy), t("mailbox.keep"))
			if m.needsVerify() {
				b.gap()
				b.para(t("mailbox.verify"), styleText)
			}
		}
	case flow.StepVerifyRedirect:
		b.para(t("verify.sent", sanitize.Text(m.d.Redirect)), styleText)
		b.gap()
		b.input(t("verify.prompt"), &m.verify)
	case flow.StepPassword:
		if !m.d.PasswordSet.IsZero() {
			b.para(t("pw.retry"), styleText)
			return
		}
		b.para(t("pw.intro"), styleText)
		b.gap()
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
	case flow.StepDone:
		b.para(t("done.title"), styleTitle)
		b.gap()
		b.para(t("done.login", sanitize.Text(m.d.Login)), styleText)
		if name := sanitize.Text(m.d.DisplayName); name != "" {
			b.para(t("done.name", name), styleText)
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
	}
}

// needsVerify tells whether the typed redirect differs from every recovery
// address (the same rule as flow's, on the address being typed).
func (m *model) needsVerify() bool {
	d := flow.Dossier{Redirect: strings.TrimSpace(m.addr.Value()), RecoveryMails: m.d.RecoveryMails}
	return d.NeedsRedirectVerification()
}

// rules is the checklist: the last verdict, or every rule unmet before the
// first one arrives.
func (m *model) rules() []flow.RuleResult {
	if len(m.check.Rules) > 0 {
		return m.check.Rules
	}
	return []flow.RuleResult{{Rule: flow.RuleMinLength}, {Rule: flow.RuleMaxLength}, {Rule: flow.RuleNoLogin}, {Rule: flow.RuleStrength}}
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
		if m.d.PasswordSet.IsZero() {
			h = []string{t("help.tab")}
		}
		h = append(h, t("help.next"), t("help.back"))
	case flow.StepDone:
		h = []string{t("help.leave")}
	}
	return append(h, t("help.lang"), t("help.quit"))
}

// status is the one-line area under the body: busy, error or note.
func (m *model) status() (string, lipgloss.Style) {
	switch {
	case m.busy && m.finishing:
		return i18n.T(m.lang, "pw.finishing"), styleBusy
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
	return sanitize.Text(i18n.Error(m.lang, err, m.restart()))
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
