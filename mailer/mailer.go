// Package mailer owns the mails activated sends: the message templates per
// kind and language (rendered into complete RFC 5322 messages), the
// transports that carry them (SMTP, a Maildir, or a log for the demo) and
// the outbox worker that delivers queued mails with retries and backoff.
// It never logs a code: log lines carry the mail id, kind, recipient and
// error only.
package mailer

import (
	"io"
	"time"

	"activated/internal/sanitize"
)

// Config is the [mail] and [activation] settings the mailer needs.
type Config struct {
	// Transport is "smtp", "maildir" or "log".
	Transport string
	// SMTPURL is smtp://host:port (STARTTLS when the server offers it),
	// smtp+starttls://host:port (STARTTLS required) or smtps://host:port
	// (TLS from the start). Default ports: 25, 587, 465.
	SMTPURL      string
	SMTPUsername string
	SMTPPassword string
	// CAFile adds a PEM CA to the system roots; certificates are always
	// verified.
	CAFile string

	// From is the sender, e.g. "Université Exemple <it@example.org>"; its
	// address is also the envelope sender and names the Message-ID domain.
	From string
	// Maildir is the directory of the "maildir" transport.
	Maildir string

	// PublicHost and PublicPort make the command printed in the mails.
	PublicHost string
	PublicPort int
	// Location is the institution's time zone for deadlines (default UTC).
	Location *time.Location
	// Institution names the institution in the mails (default: the From
	// display name, else its domain).
	Institution string
	// Helpdesk ([activation] helpdesk) ends every mail: who to ask.
	Helpdesk string
	// Services are listed in the activation notice (ENT, mail, Moodle…).
	Services []string
	// LogWriter receives the messages of the "log" transport (default
	// os.Stdout). Those messages include codes: the "log" transport is for
	// the demo only.
	LogWriter io.Writer
}

// clean is the shared sanitizer (escape sequences removed whole, then
// control runes, CR and LF included, and bidi overrides dropped): names and
// logins come from the directory, addresses from users, and a mail must
// read like the screen.
func clean(s string) string { return sanitize.Text(s) }
