package mailer

import (
	"strings"
	"testing"
	"time"

	"activated/flow"
)

// A new member who uses a screen reader learns from the invitation itself
// the command of plain mode (SPEC: the <code>+plain user name): the mail
// is all they know about the service. So do the other mails with a code
// to paste: the recovery code, the reset code the helpdesk mails on the
// phone, the charter campaign's.
func TestInvitationOffersPlainMode(t *testing.T) {
	loc := paris(t)
	created := time.Date(2026, 11, 25, 14, 0, 0, 0, loc)
	for _, c := range []struct {
		lang string
		kind flow.MailKind
	}{{"fr", flow.MailInvitation}, {"en", flow.MailInvitation}, {"fr", flow.MailRecovery}, {"en", flow.MailRecovery},
		{"fr", flow.MailReset}, {"en", flow.MailReset}, {"fr", flow.MailCharter}, {"en", flow.MailCharter}} {
		lang := c.lang
		m := flow.Mail{ID: 1, Kind: c.kind, To: "x@perso.example", Lang: lang, Login: "x", Code: testCode,
			Deadline: flow.NextDayDeadline(created, loc), Created: created}
		cfg := testConfig(t, "127.0.0.1:25")
		cfg.PublicPort = 2222
		raw, err := NewRenderer(cfg).Render(m)
		if err != nil {
			t.Fatal(err)
		}
		body := parseMessage(t, raw).Body
		for _, want := range []string{
			map[string]string{"fr": "lecteur d'écran", "en": "screen reader"}[lang],
			"\n    ssh -p 2222 " + testCode + "+plain@activate.example.org\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s %s: the mail lacks %q:\n%s", lang, c.kind, want, body)
			}
		}
	}
}
