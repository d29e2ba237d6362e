package tui

// One table, two front ends: the same dossier driven through the TUI and
// through plain mode with the same inputs must show the same steps, the
// same pre-filled choices and errors, end the same way and leave the same
// dossier. Each front end draws flow's StepView; this test catches a rule
// that one of them grew on its own.

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"activated/flow"
	"activated/flow/i18n"
	"activated/flow/plain"
)

// act is one thing the user (or staff, or time) does.
type act struct {
	kind     string // login, code, wrongcode, accept, dir, mailbox, verify, password, back, revoke, expire, finished
	arg      string
	yes, two bool
}

// seen is what a front end shows after an act.
type seen struct {
	step  flow.Step
	err   string // the error sentence, "" none
	ended bool
	def   string // the pre-filled choice of the step, when it has one
}

const sameHost, samePort = "activate.example.org", 2222

func errSentence(err error) string {
	return i18n.Error("en", err, i18n.Command("activate", sameHost, samePort))
}

var sameTable = []struct {
	name string
	acts []act
	want []seen
}{
	{"walk with a redirect, back, and a wrong code at step 6",
		[]act{{kind: "login"}, {kind: "code"}, {kind: "accept"}, {kind: "dir", yes: true},
			{kind: "mailbox", arg: "jean@other.example.org", two: true}, {kind: "wrongcode"}, {kind: "back"}, {kind: "back"},
			{kind: "dir", yes: false}, {kind: "mailbox", arg: "jean@other.example.org", two: false}, {kind: "verify"}, {kind: "password"}},
		[]seen{{step: 2}, {step: 3}, {step: 4}, {step: 5, def: "no-redirect"},
			{step: 6}, {step: 6, err: errSentence(flow.ErrRedirectCodeWrong)}, {step: 5, def: "redirect"}, {step: 4, def: "yes"},
			{step: 5, def: "redirect"}, {step: 6}, {step: 7}, {step: 8, ended: true}}},
	{"the code of another login at step 2",
		[]act{{kind: "login"}, {kind: "code", arg: "other"}},
		[]seen{{step: 2}, {step: 2, err: errSentence(flow.ErrCodeWrong)}}},
	{"a redirect into the institution",
		[]act{{kind: "login"}, {kind: "code"}, {kind: "accept"}, {kind: "dir"}, {kind: "mailbox", arg: "jdupont@univ.example.org", two: true}},
		[]seen{{step: 2}, {step: 3}, {step: 4}, {step: 5, def: "no-redirect"}, {step: 5, err: errSentence(flow.ErrRedirectLoop), def: "redirect"}}},
	{"revoked by staff", // ends the session
		[]act{{kind: "login"}, {kind: "code"}, {kind: "revoke"}},
		[]seen{{step: 2}, {step: 3}, {step: 3, err: i18n.T("en", "err.closed"), ended: true}}},
	{"the deadline passes", // ends the session
		[]act{{kind: "login"}, {kind: "code"}, {kind: "expire"}, {kind: "accept"}},
		[]seen{{step: 2}, {step: 3}, {step: 3}, {step: 3, err: errSentence(flow.ErrCodeExpired), ended: true}}},
	{"the code of an account already active", // ends the session
		[]act{{kind: "finished"}},
		[]seen{{step: 2, err: errSentence(flow.ErrCodeFinished), ended: true}}},
	{"the code of a revoked dossier", // ends the session
		[]act{{kind: "revokedcode"}},
		[]seen{{step: 2, err: errSentence(flow.ErrCodeRevoked), ended: true}}},
}

// sameAccounts: jdupont has a mailbox at univ.example.org; other is
// another pending account.
func sameEnv(t *testing.T) *env {
	return newEnv(t, flow.Account{
		DN: "uid=jdupont,ou=people,dc=example,dc=org", Login: "jdupont", GivenName: "Jean", Surname: "Dupont",
		DisplayName: "Jean Dupont", Mail: "jdupont@univ.example.org", RecoveryMails: []string{"jean@example.net"},
	}, flow.Account{
		DN: "uid=other,ou=people,dc=example,dc=org", Login: "other", GivenName: "O", Surname: "Ther",
		DisplayName: "O Ther", RecoveryMails: []string{"other@example.net"},
	})
}

// driver is one front end under test.
type driver interface {
	do(a act) seen
}

func TestSameStepsBothFrontEnds(t *testing.T) {
	for _, c := range sameTable {
		t.Run(c.name, func(t *testing.T) {
			var got [2][]seen
			var ends [2]flow.Dossier
			for i, name := range []string{"tui", "plain"} {
				e := sameEnv(t)
				code := ""
				switch c.acts[0].kind {
				case "finished":
					code = activate(t, e)
				case "revokedcode":
					code = revoked(t, e)
				}
				var d driver
				if i == 0 {
					d = newTUIDriver(t, e, code)
				} else {
					d = newPlainDriver(t, e, code)
				}
				for j, a := range c.acts {
					s := d.do(a)
					got[i] = append(got[i], s)
					if j < len(c.want) && s != c.want[j] {
						t.Errorf("%s, act %d (%s %s): saw %+v, want %+v", name, j, a.kind, a.arg, s, c.want[j])
					}
				}
				ends[i] = e.dossier(t, "jdupont")
			}
			a, b := ends[0], ends[1]
			if a.Next() != b.Next() || a.PublicDirectory != b.PublicDirectory || a.Redirect != b.Redirect || a.KeepCopy != b.KeepCopy || a.Activated.IsZero() != b.Activated.IsZero() {
				t.Errorf("end state differs:\ntui   %+v\nplain %+v", a, b)
			}
		})
	}
}

// activate runs a whole activation of jdupont on the service and returns
// its invitation code, now spent as "finished".
func activate(t *testing.T, e *env) string {
	ctx := context.Background()
	if _, err := e.svc.Invite(ctx, "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	x, err := e.svc.Open(ctx, code, flow.Client{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, err := range []error{x.AcceptCharter(true), x.ChooseDirectory(false), x.ChooseMailbox("", false), x.Finish(ctx, goodPassword)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return code
}

// revoked invites jdupont, then revokes the dossier; it returns the code.
func revoked(t *testing.T, e *env) string {
	if _, err := e.svc.Invite(context.Background(), "jdupont", false, flow.Client{}); err != nil {
		t.Fatal(err)
	}
	code := e.code(t, "jdupont", flow.MailInvitation)
	if err := e.svc.Revoke("jdupont", flow.Client{Actor: "staff:test"}); err != nil {
		t.Fatal(err)
	}
	return code
}

// sameCode is the code an act types.
func sameCode(t *testing.T, e *env, a act) string {
	switch a.kind {
	case "wrongcode":
		return "AAAA-BBBB-CCCC-DDDD"
	case "verify":
		return e.code(t, "jdupont", flow.MailRedirect)
	case "finished":
		return e.code(t, "jdupont", flow.MailInvitation)
	}
	login := "jdupont"
	if a.arg != "" {
		if err := e.svc.Begin(context.Background(), a.arg, flow.Client{Remote: "192.0.2.1:1"}); err != nil {
			t.Fatal(err)
		}
		login = a.arg
	}
	return e.code(t, login, flow.MailRecovery)
}

// The TUI, driven with keys.

type tuiDriver struct {
	t *testing.T
	e *env
	h *harness
}

func newTUIDriver(t *testing.T, e *env, code string) *tuiDriver {
	opts := Options{PublicHost: sameHost, PublicPort: samePort, Code: code}
	return &tuiDriver{t: t, e: e, h: e.start(t, opts, 80, 24)}
}

func (d *tuiDriver) do(a act) seen {
	h := d.h
	before := h.p.get()
	switch a.kind {
	case "finished", "revokedcode":
		// the code came as the SSH user name
	case "login":
		h.tm.Type("jdupont")
		h.send(enter)
	case "code", "wrongcode", "verify":
		h.tm.Type(sameCode(d.t, d.e, a))
		h.send(enter)
	case "accept":
		if !before.accepted {
			h.send(space)
		}
		h.send(enter)
	case "dir":
		keys := []tea.Msg{space, down, down} // focus on the confirmation box
		if !a.yes {
			keys = []tea.Msg{down, space, down}
		}
		if !before.confirmed {
			keys = append(keys, space)
		}
		h.send(append(keys, enter)...)
	case "mailbox":
		s := before
		if s.redirect != (a.arg != "") {
			h.send(space)
		}
		if a.arg != "" {
			h.send(tab, ctrlU)
			h.tm.Type(a.arg)
			if s.offer {
				h.send(tab)
				if s.keep != a.two {
					h.send(space)
				}
			}
		}
		h.send(enter)
	case "password":
		h.tm.Type(goodPassword)
		h.send(tab)
		h.tm.Type(goodPassword)
		h.send(enter)
	case "back":
		h.send(esc)
	case "revoke":
		if err := d.e.svc.Revoke("jdupont", flow.Client{Actor: "staff:test"}); err != nil {
			d.t.Fatal(err)
		}
	case "expire":
		d.e.clock.Add(48 * time.Hour)
		return seen{step: before.step}
	}
	s := h.wait(a.kind+" handled", func(s snapshot) bool {
		return s.quitting || (!s.busy && (s.ops > before.ops || s.step != before.step))
	})
	if s.step == flow.StepDone && !s.quitting {
		h.send(enter)
		s = h.wait("leave", func(s snapshot) bool { return s.quitting })
	}
	out := seen{step: s.step, err: s.errText, ended: s.quitting, def: s.def}
	if s.quitting && s.step != flow.StepDone {
		out.err = s.final
	}
	out.err = strings.ReplaceAll(out.err, "\u00a0", " ") // the TUI keeps commands on one line
	return out
}

// The plain prompts, driven with lines.

type plainDriver struct {
	t    *testing.T
	e    *env
	in   *io.PipeWriter
	mu   sync.Mutex
	out  strings.Builder
	more chan struct{}
	res  chan error
	step flow.Step
}

func newPlainDriver(t *testing.T, e *env, code string) *plainDriver {
	opts := plain.Options{Client: flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: "en"},
		PublicHost: sameHost, PublicPort: samePort, Code: code}
	inR, inW := io.Pipe()
	d := &plainDriver{t: t, e: e, in: inW, more: make(chan struct{}, 1), res: make(chan error, 1), step: flow.StepLogin}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		d.res <- plain.Run(ctx, e.svc, struct {
			io.Reader
			io.Writer
		}{inR, d}, opts)
	}()
	t.Cleanup(func() { cancel(); inW.Close() })
	if code == "" {
		d.wait(0)
	} else {
		d.step = flow.StepRecoveryCode // the code came as the SSH user name
	}
	return d
}

func (d *plainDriver) Write(p []byte) (int, error) {
	d.mu.Lock()
	d.out.Write(p)
	d.mu.Unlock()
	select {
	case d.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

// wait returns the output after from once a prompt waits for input or Run
// has returned (ended).
func (d *plainDriver) wait(from int) (string, bool) {
	deadline := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		out := d.out.String()
		d.mu.Unlock()
		select {
		case err := <-d.res:
			d.res <- err
			return out[from:], true
		default:
		}
		if len(out) > from && strings.HasSuffix(out, "> ") {
			return out[from:], false
		}
		select {
		case <-d.more:
		case err := <-d.res:
			d.res <- err
		case <-deadline:
			d.t.Fatalf("plain mode stalled; output:\n%s", out)
		}
	}
}

var header = regexp.MustCompile(`Step (\d) of 7 — |Done — `)

func (d *plainDriver) send(lines ...string) (string, bool) {
	var all string
	var ended bool
	for _, l := range lines {
		d.mu.Lock()
		from := d.out.Len()
		d.mu.Unlock()
		if _, err := io.WriteString(d.in, l+"\n"); err != nil {
			d.t.Fatal(err)
		}
		var out string
		out, ended = d.wait(from)
		all += out
		if ended {
			break
		}
	}
	return all, ended
}

func (d *plainDriver) do(a act) seen {
	var out string
	var ended bool
	switch a.kind {
	case "finished", "revokedcode":
		out, ended = d.wait(0)
	case "login":
		out, ended = d.send("jdupont")
	case "code", "wrongcode", "verify":
		out, ended = d.send(sameCode(d.t, d.e, a))
	case "accept":
		out, ended = d.send("y")
	case "dir":
		out, ended = d.send(map[bool]string{true: "y", false: "n"}[a.yes])
	case "mailbox":
		if a.arg == "" {
			out, ended = d.send("n")
			break
		}
		lines := []string{"y", a.arg}
		d.mu.Lock()
		offered := d.e.dossier(d.t, "jdupont").Mail != ""
		d.mu.Unlock()
		if offered {
			lines = append(lines, map[bool]string{true: "y", false: "n"}[a.two])
		}
		out, ended = d.send(lines...)
	case "password":
		out, ended = d.send(goodPassword, goodPassword)
	case "back":
		out, ended = d.send("!back")
	case "revoke":
		d.mu.Lock()
		from := d.out.Len()
		d.mu.Unlock()
		if err := d.e.svc.Revoke("jdupont", flow.Client{Actor: "staff:test"}); err != nil {
			d.t.Fatal(err)
		}
		out, ended = d.wait(from)
	case "expire":
		d.e.clock.Add(48 * time.Hour)
		return seen{step: d.step}
	}
	out = strings.ReplaceAll(out, "+plain@", "@") // plain mode's commands keep plain mode
	if m := header.FindAllStringSubmatch(out, -1); len(m) > 0 {
		last := m[len(m)-1]
		d.step = flow.StepDone
		if last[1] != "" {
			n, _ := strconv.Atoi(last[1])
			d.step = flow.Step(n)
		}
	}
	s := seen{step: d.step, ended: ended || d.step == flow.StepDone}
	for _, key := range []error{flow.ErrCodeWrong, flow.ErrRedirectCodeWrong, flow.ErrRedirectLoop, flow.ErrCodeExpired, flow.ErrCodeFinished, flow.ErrCodeRevoked} {
		if strings.Contains(out, errSentence(key)) {
			s.err = errSentence(key)
		}
	}
	if strings.Contains(out, i18n.T("en", "err.closed")) {
		s.err = i18n.T("en", "err.closed")
	}
	s.def = plainDefault(out, d.step)
	return s
}

// plainDefault reads the pre-filled choice from the last prompt, in the
// TUI's words (see snapshot.def).
func plainDefault(out string, step flow.Step) string {
	i := strings.LastIndex(out, "\n")
	prompt := out[i+1:]
	switch step {
	case flow.StepDirectory:
		if strings.HasSuffix(prompt, "[y]> ") {
			return "yes"
		}
		if strings.HasSuffix(prompt, "[n]> ") {
			return "no"
		}
	case flow.StepMailbox:
		if strings.HasSuffix(prompt, "[y]> ") || strings.HasPrefix(prompt, i18n.T("en", "mailbox.address")) {
			return "redirect" // the address and keep-copy defaults show at the next prompts
		}
		return "no-redirect"
	}
	return ""
}

var _ = fmt.Sprint
