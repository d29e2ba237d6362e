package mailer

import (
	"strings"
	"testing"
	"time"

	"activated/flow"
)

// Every mail ends with the helpdesk; the redirect-verification mail tells a
// possible stranger nothing about the account; the activation notice names
// the university address and the redirect; the "already active" mail says
// what to do next; the reset mail carries its code, the reset notice says
// whom to call.
func TestMailContents(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:25")
	cfg.Helpdesk = "Assistance 04 67 00 00 00 · help@univ.example"
	r := NewRenderer(cfg)
	created := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	base := flow.Mail{ID: 1, To: "x@perso.example", Login: "fhebert", Name: "François Hébert", Code: testCode,
		Deadline: created.Add(time.Hour), Created: created}
	for _, lang := range []string{"fr", "en"} {
		for _, kind := range []flow.MailKind{flow.MailInvitation, flow.MailRecovery, flow.MailRedirect, flow.MailActivated, flow.MailAlreadyActive, flow.MailReset, flow.MailPasswordReset, flow.MailCharter} {
			m := base
			m.Kind, m.Lang = kind, lang
			switch kind {
			case flow.MailRedirect:
				m.Address = "fh@ailleurs.example"
			case flow.MailActivated:
				m.Code, m.Deadline = "", time.Time{}
				m.Address, m.Mailbox, m.KeepCopy = "fh@ailleurs.example", "francois.hebert@univ.example", true
			case flow.MailAlreadyActive, flow.MailPasswordReset:
				m.Code, m.Deadline = "", time.Time{}
			}
			raw, err := r.Render(m)
			if err != nil {
				t.Fatal(err)
			}
			body := parseMessage(t, raw).Body
			want := []string{"04 67 00 00 00 · help@univ.example"}
			switch kind {
			case flow.MailRedirect:
				for _, secret := range []string{"fhebert", "François", "Hébert"} {
					if strings.Contains(body, secret) {
						t.Errorf("%s/%s: the redirect mail names the account (%q):\n%s", kind, lang, secret, body)
					}
				}
			case flow.MailActivated:
				want = append(want, "francois.hebert@univ.example", "fh@ailleurs.example")
			case flow.MailAlreadyActive:
				want = append(want, map[string]string{"fr": "Mot de passe oublié", "en": "Forgot your password?"}[lang])
			case flow.MailReset: // the code, the command, the deadline
				want = append(want, testCode, "ssh ", map[string]string{"fr": "nouveau mot de passe", "en": "new password"}[lang],
					map[string]string{"fr": "valable jusqu'au", "en": "valid until"}[lang])
			case flow.MailCharter:
				want = append(want, testCode, "ssh ", map[string]string{"fr": "rien\nd'autre n'est demandé", "en": "nothing else is\nasked"}[lang])
			case flow.MailPasswordReset:
				want = append(want, "fhebert", map[string]string{"fr": "contactez sans délai", "en": "contact the IT department at once"}[lang])
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("%s/%s: body lacks %q:\n%s", kind, lang, w, body)
				}
			}
		}
	}
}

// The helpdesk ends every mail as written: SPEC's example carries its own
// label, which no template repeats.
func TestMailHelpdeskAsWritten(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:25")
	cfg.Helpdesk = "Assistance : 04 67 00 00 00 · assistance@univ.fr"
	r := NewRenderer(cfg)
	created := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	for _, lang := range []string{"fr", "en"} {
		m := flow.Mail{ID: 1, To: "x@perso.example", Login: "fhebert", Name: "François Hébert", Code: testCode,
			Deadline: created.Add(time.Hour), Created: created, Kind: flow.MailInvitation, Lang: lang}
		raw, err := r.Render(m)
		if err != nil {
			t.Fatal(err)
		}
		body := parseMessage(t, raw).Body
		if !strings.Contains(body, cfg.Helpdesk) || strings.Contains(body, "Assistance : Assistance") || strings.Contains(body, "Help: Assistance") {
			t.Errorf("%s: helpdesk not as written in:\n%s", lang, body)
		}
	}
}
