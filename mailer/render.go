package mailer

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"text/template"
	"time"

	"activated/flow"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates holds one template per kind and language, named
// "<kind>.<lang>.tmpl"; the first line of its output is the subject.
var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.tmpl"))

// Renderer turns outbox entries into complete messages.
type Renderer struct {
	cfg     Config
	from    *mail.Address // nil when cfg.From does not parse
	fromErr error
}

// NewRenderer prepares a renderer; a From that does not parse makes every
// Render fail with the reason.
func NewRenderer(cfg Config) *Renderer {
	r := &Renderer{cfg: cfg}
	r.from, r.fromErr = mail.ParseAddress(cfg.From)
	if r.fromErr != nil {
		r.fromErr = fmt.Errorf("mail sender %q: %w", cfg.From, r.fromErr)
		r.from = nil
	}
	if r.cfg.Location == nil {
		r.cfg.Location = time.UTC
	}
	if r.cfg.PublicPort == 0 {
		r.cfg.PublicPort = 22
	}
	if r.cfg.Institution == "" && r.from != nil {
		r.cfg.Institution = r.from.Name
		if r.cfg.Institution == "" {
			r.cfg.Institution = domainOf(r.from.Address)
		}
	}
	return r
}

// sender is the envelope sender (the bare From address).
func (r *Renderer) sender() (string, error) {
	if r.fromErr != nil {
		return "", r.fromErr
	}
	return r.from.Address, nil
}

// data is what the templates see.
type data struct {
	Name, Login, Code, Address string
	Command                    string // the ssh command that resumes with the code
	Plain                      string // Command in plain mode (screen readers), "" without a code
	StartOver                  string // the ssh command that starts from step 1
	Deadline                   string // written out in the template's language, "" if none
	Institution                string
	Helpdesk                   string // who to ask for help, "" none
	Mailbox                    string // the institutional address (activation notice)
	KeepCopy                   bool
	Services                   []string
}

// Render returns m as a complete RFC 5322 message: UTF-8 text/plain,
// quoted-printable, in m.Lang ("fr", "en"; anything else: French then
// English). Rendering the same mail twice gives the same bytes.
func (r *Renderer) Render(m flow.Mail) ([]byte, error) {
	if r.fromErr != nil {
		return nil, r.fromErr
	}
	if m.Created.IsZero() {
		return nil, fmt.Errorf("render mail %d: no creation time", m.ID)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Name != "" {
		return nil, fmt.Errorf("render mail %d: recipient %q is not a bare address", m.ID, clean(m.To))
	}
	langs := []string{m.Lang}
	if m.Lang != "fr" && m.Lang != "en" {
		langs = []string{"fr", "en"}
	}
	var subjects, bodies []string
	for _, lang := range langs {
		subject, body, err := r.renderLang(m, lang)
		if err != nil {
			return nil, err
		}
		subjects, bodies = append(subjects, subject), append(bodies, body)
	}
	body := bodies[0]
	if len(bodies) > 1 {
		body = "(English version below)\n\n" + bodies[0] + "\n\n----------------------------------------\n\n" + bodies[1]
	}

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("Date", m.Created.In(r.cfg.Location).Format(time.RFC1123Z))
	header("From", fold(r.from.String()))
	header("To", fold((&mail.Address{Name: clean(m.Name), Address: to.Address}).String()))
	header("Subject", fold(mime.QEncoding.Encode("utf-8", strings.Join(subjects, " / "))))
	header("Message-ID", r.messageID(m))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Content-Language", strings.Join(langs, ", "))
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(body + "\n")); err != nil {
		return nil, fmt.Errorf("render mail %d: %w", m.ID, err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("render mail %d: %w", m.ID, err)
	}
	return b.Bytes(), nil
}

// renderLang runs the template of m.Kind in lang and splits its subject
// (first line) from its body.
func (r *Renderer) renderLang(m flow.Mail, lang string) (subject, body string, err error) {
	name := string(m.Kind) + "." + lang + ".tmpl"
	if templates.Lookup(name) == nil {
		return "", "", fmt.Errorf("render mail %d: no template for kind %q", m.ID, clean(string(m.Kind)))
	}
	d := data{
		Name:        clean(m.Name),
		Login:       clean(m.Login),
		Code:        clean(m.Code),
		Address:     clean(m.Address),
		Command:     r.command(clean(m.Code)),
		StartOver:   r.command("activate"),
		Institution: r.cfg.Institution,
		Helpdesk:    clean(r.cfg.Helpdesk),
		Mailbox:     clean(m.Mailbox),
		KeepCopy:    m.KeepCopy,
		Services:    r.cfg.Services,
	}
	if !m.Deadline.IsZero() {
		d.Deadline = formatDeadline(m.Deadline, r.cfg.Location, lang)
	}
	if d.Code != "" {
		d.Plain = r.command(d.Code + "+plain")
	}
	var out strings.Builder
	if err := templates.ExecuteTemplate(&out, name, d); err != nil {
		return "", "", fmt.Errorf("render mail %d: %w", m.ID, err)
	}
	subject, body, _ = strings.Cut(out.String(), "\n")
	return strings.TrimSpace(subject), strings.Trim(body, "\n"), nil
}

// command is the ssh command a user pastes to log in as user.
func (r *Renderer) command(user string) string {
	if r.cfg.PublicPort == 22 {
		return "ssh " + user + "@" + r.cfg.PublicHost
	}
	return "ssh -p " + strconv.Itoa(r.cfg.PublicPort) + " " + user + "@" + r.cfg.PublicHost
}

// messageID depends only on the mail, so every retry of a mail carries
// the same Message-ID and a receiver can drop duplicates. The "account is
// active" notice is named after the activation it reports (login,
// address, activation time: its Created), not its outbox ID, so even a
// copy queued twice is recognisable; the login and address appear only
// hashed.
func (r *Renderer) messageID(m flow.Mail) string {
	if m.Kind == flow.MailActivated {
		h := sha256.Sum256([]byte(m.Login + "\x00" + strings.ToLower(m.To)))
		return fmt.Sprintf("<activated.notice.%x.%d@%s>", h[:12], m.Created.UnixNano(), domainOf(r.from.Address))
	}
	return fmt.Sprintf("<activated.%d.%d@%s>", m.ID, m.Created.UnixNano(), domainOf(r.from.Address))
}

func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// fold puts each RFC 2047 encoded word of a header value on its own line,
// keeping header lines short.
func fold(v string) string { return strings.ReplaceAll(v, "?= =?", "?=\r\n =?") }
