package mailer

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/smtptest"
)

const testCode = "K7M2-9XV4-QRST-WXYZ"

type kindCase struct {
	kind     flow.MailKind
	subject  map[string]string // per language
	body     map[string][]string
	withCode bool
}

func kindCases() []kindCase {
	fr := "jeudi 26 novembre 2026 à 23:59 (heure de Paris)"
	en := "Thursday 26 November 2026 at 23:59 (Paris time)"
	cmd := "ssh " + testCode + "@activate.example.org"
	again := "ssh activate@activate.example.org"
	return []kindCase{
		{flow.MailInvitation, map[string]string{
			"fr": "Activez votre compte informatique Université Exemple",
			"en": "Activate your Université Exemple IT account",
		}, map[string][]string{
			"fr": {"Bonjour François Hébert,", "Votre identifiant : fhebert", "    " + cmd + "\n", "Votre code d'activation : " + testCode, "valable jusqu'au " + fr + ".", "    " + again + "\n", "reçu", "créé"},
			"en": {"Hello François Hébert,", "Your login: fhebert", "    " + cmd + "\n", "Your activation code: " + testCode, "valid until " + en + ".", "    " + again + "\n"},
		}, true},
		{flow.MailRecovery, map[string]string{
			"fr": "Votre code pour poursuivre l'activation de votre compte",
			"en": "Your code to continue activating your account",
		}, map[string][]string{
			"fr": {"Bonjour François Hébert,", "compte fhebert", "Votre code : " + testCode, "    " + cmd + "\n", "valable jusqu'au " + fr + ".", "    " + again + "\n", "à l'origine"},
			"en": {"Hello François Hébert,", "account fhebert", "Your code: " + testCode, "    " + cmd + "\n", "valid until " + en + ".", "    " + again + "\n"},
		}, true},
		{flow.MailRedirect, map[string]string{
			"fr": "Confirmez votre adresse de redirection",
			"en": "Confirm your forwarding address",
		}, map[string][]string{
			"fr": {"Bonjour,", "vers cette adresse : fh@ailleurs.example", "    " + testCode + "\n", "    " + cmd + "\n", "valable jusqu'au " + fr + "."},
			"en": {"Hello,", "to this address: fh@ailleurs.example", "    " + testCode + "\n", "    " + cmd + "\n", "valid until " + en + "."},
		}, true},
		{flow.MailActivated, map[string]string{
			"fr": "Votre compte informatique Université Exemple est activé",
			"en": "Your Université Exemple IT account is active",
		}, map[string][]string{
			"fr": {"Bonjour François Hébert,", "Le compte fhebert est maintenant actif.", "  - ENT\n  - Messagerie\n  - Moodle\n", "Si vous n'êtes pas à l'origine de cette activation, contactez"},
			"en": {"Hello François Hébert,", "The account fhebert is now active.", "  - ENT\n  - Messagerie\n  - Moodle\n", "If it was not you who activated this account, contact the IT"},
		}, false},
		{flow.MailAlreadyActive, map[string]string{
			"fr": "Votre compte informatique Université Exemple est déjà actif",
			"en": "Your Université Exemple IT account is already active",
		}, map[string][]string{
			"fr": {"Bonjour François Hébert,", "compte fhebert, mais ce compte est\ndéjà actif : il n'y a rien à faire.", "ignorez ce message"},
			"en": {"Hello François Hébert,", "account fhebert, but this account is\nalready active: there is nothing to do.", "If it was not you, ignore this message"},
		}, false},
	}
}

// TestEveryKindArrives sends every kind in French, English and both through
// the SMTP transport to a real SMTP server and reads what arrived as a
// mail client would.
func TestEveryKindArrives(t *testing.T) {
	srv := smtptest.StartT(t)
	cfg := testConfig(t, srv.Addr)
	loc := cfg.Location
	r := NewRenderer(cfg)
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 26, 9, 30, 0, 0, loc)

	type sent struct {
		kc   kindCase
		lang string
		mail flow.Mail
	}
	byID := map[string]sent{}
	var id uint64
	for _, kc := range kindCases() {
		for _, lang := range []string{"fr", "en", ""} {
			id++
			m := flow.Mail{ID: id, Kind: kc.kind, To: fmt.Sprintf("francois.%d@perso.example", id), Lang: lang,
				Login: "fhebert", Name: "François Hébert", Created: created}
			if kc.withCode {
				m.Code = testCode
				m.Deadline = flow.SameDayDeadline(created, loc)
			}
			if kc.kind == flow.MailRedirect {
				m.Address = "fh@ailleurs.example"
			}
			raw, err := r.Render(m)
			if err != nil {
				t.Fatalf("render %s/%q: %v", kc.kind, lang, err)
			}
			again, _ := r.Render(m)
			if !bytes.Equal(raw, again) {
				t.Fatalf("render %s/%q twice gave different bytes", kc.kind, lang)
			}
			if err := tr.Send(context.Background(), "it@example.org", m.To, raw); err != nil {
				t.Fatalf("send %s/%q: %v", kc.kind, lang, err)
			}
			want := fmt.Sprintf("<activated.%d.%d@example.org>", id, created.UnixNano())
			if kc.kind == flow.MailActivated { // named after the activation: TestNoticeMessageIDFollowsTheActivation
				want = parseMessage(t, raw).Header.Get("Message-ID")
			}
			byID[want] = sent{kc, lang, m}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, err := srv.WaitFor(ctx, len(byID))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(byID) {
		t.Fatalf("%d messages arrived, want %d", len(msgs), len(byID))
	}
	for _, got := range msgs {
		p := parseMessage(t, got.Data)
		s, ok := byID[p.Header.Get("Message-ID")]
		if !ok {
			t.Fatalf("unexpected Message-ID %q", p.Header.Get("Message-ID"))
		}
		delete(byID, p.Header.Get("Message-ID"))
		name := fmt.Sprintf("%s/%q", s.kc.kind, s.lang)

		if got.From != "it@example.org" || len(got.To) != 1 || got.To[0] != s.mail.To {
			t.Errorf("%s: envelope %s → %v", name, got.From, got.To)
		}
		from, err := mail.ParseAddress(p.Header.Get("From"))
		if err != nil || from.Name != "Université Exemple" || from.Address != "it@example.org" {
			t.Errorf("%s: From %q → %+v, %v", name, p.Header.Get("From"), from, err)
		}
		to, err := mail.ParseAddress(p.Header.Get("To"))
		if err != nil || to.Name != "François Hébert" || to.Address != s.mail.To {
			t.Errorf("%s: To %q → %+v, %v", name, p.Header.Get("To"), to, err)
		}
		if d, err := p.Header.Date(); err != nil || !d.Equal(created) {
			t.Errorf("%s: Date %q → %v, %v", name, p.Header.Get("Date"), d, err)
		}
		if v := p.Header.Get("MIME-Version"); v != "1.0" {
			t.Errorf("%s: MIME-Version %q", name, v)
		}
		mt, params, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("%s: Content-Type %q", name, p.Header.Get("Content-Type"))
		}

		langs := []string{s.lang}
		if s.lang == "" {
			langs = []string{"fr", "en"}
		}
		var subjects []string
		for _, l := range langs {
			subjects = append(subjects, s.kc.subject[l])
		}
		if want := strings.Join(subjects, " / "); p.Subject != want {
			t.Errorf("%s: subject %q, want %q", name, p.Subject, want)
		}
		if strings.Contains(p.Subject, testCode) {
			t.Errorf("%s: the code is in the subject", name)
		}
		if strings.Contains(p.Body, testCode) != s.kc.withCode {
			t.Errorf("%s: code in body = %v, want %v", name, !s.kc.withCode, s.kc.withCode)
		}
		for _, l := range langs {
			for _, want := range s.kc.body[l] {
				if !strings.Contains(p.Body, want) {
					t.Errorf("%s: body lacks %q:\n%s", name, want, p.Body)
				}
			}
		}
		for _, other := range []string{"fr", "en"} {
			if len(langs) == 1 && other != langs[0] && strings.Contains(p.Body, s.kc.body[other][0]) {
				t.Errorf("%s: body also has the %s greeting", name, other)
			}
		}
		if s.lang == "" && strings.Index(p.Body, "Bonjour") > strings.Index(p.Body, "Hello") {
			t.Errorf("%s: English comes before French", name)
		}
		if s.lang != "en" {
			for _, accent := range []string{"é", "à", "ç"} {
				if !strings.Contains(p.Body, accent) {
					t.Errorf("%s: body lacks %q", name, accent)
				}
			}
		}
	}
	if subject := "Activez votre compte informatique Université Exemple"; !strings.Contains(subject, "é") {
		t.Fatal("the accent check above needs an accented subject")
	}
}

func TestInvitationCommandAndPort(t *testing.T) {
	loc := paris(t)
	created := time.Date(2026, 11, 25, 14, 0, 0, 0, loc)
	m := flow.Mail{ID: 1, Kind: flow.MailInvitation, To: "x@perso.example", Lang: "en", Login: "x", Code: testCode,
		Deadline: flow.NextDayDeadline(created, loc), Created: created}
	for _, tc := range []struct {
		port     int
		cmd, new string
	}{
		{22, "ssh " + testCode + "@activate.example.org", "ssh activate@activate.example.org"},
		{0, "ssh " + testCode + "@activate.example.org", "ssh activate@activate.example.org"},
		{2222, "ssh -p 2222 " + testCode + "@activate.example.org", "ssh -p 2222 activate@activate.example.org"},
	} {
		cfg := testConfig(t, "127.0.0.1:25")
		cfg.PublicPort = tc.port
		raw, err := NewRenderer(cfg).Render(m)
		if err != nil {
			t.Fatal(err)
		}
		body := parseMessage(t, raw).Body
		for _, want := range []string{"\n    " + tc.cmd + "\n", "\n    " + tc.new + "\n", "Thursday 26 November 2026 at 23:59 (Paris time)"} {
			if !strings.Contains(body, want) {
				t.Errorf("port %d: body lacks %q:\n%s", tc.port, want, body)
			}
		}
		if tc.port != 2222 && strings.Contains(body, "-p") {
			t.Errorf("port %d: body has -p:\n%s", tc.port, body)
		}
	}
}

func TestFormatDeadline(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	ba, err := time.LoadLocation("America/Argentina/Buenos_Aires")
	if err != nil {
		t.Fatal(err)
	}
	d := time.Date(2026, 12, 1, 22, 59, 59, 0, time.UTC) // 23:59 in Paris, a Tuesday
	for _, tc := range []struct {
		loc      *time.Location
		lang     string
		want     string
		deadline time.Time
	}{
		{paris(t), "fr", "mardi 1er décembre 2026 à 23:59 (heure de Paris)", d},
		{paris(t), "en", "Tuesday 1 December 2026 at 23:59 (Paris time)", d},
		{ams, "fr", "mardi 1er décembre 2026 à 23:59 (heure d'Amsterdam)", d},
		{ba, "en", "Tuesday 1 December 2026 at 19:59 (Buenos Aires time)", d},
		{time.UTC, "fr", "mardi 1er décembre 2026 à 22:59 (UTC)", d},
		{time.UTC, "en", "Saturday 15 August 2026 at 23:59 (UTC)", flow.SameDayDeadline(time.Date(2026, 8, 15, 8, 0, 0, 0, time.UTC), time.UTC)},
		{paris(t), "fr", "samedi 15 août 2026 à 23:59 (heure de Paris)", flow.SameDayDeadline(time.Date(2026, 8, 15, 8, 0, 0, 0, time.UTC), paris(t))},
	} {
		if got := formatDeadline(tc.deadline, tc.loc, tc.lang); got != tc.want {
			t.Errorf("formatDeadline(%v, %s, %s) = %q, want %q", tc.deadline, tc.loc, tc.lang, got, tc.want)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	created := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	good := flow.Mail{ID: 3, Kind: flow.MailActivated, To: "x@perso.example", Login: "x", Created: created}
	r := NewRenderer(testConfig(t, "127.0.0.1:25"))
	if _, err := r.Render(good); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]flow.Mail{
		"unknown kind": {ID: 3, Kind: "party", To: "x@perso.example", Created: created},
		"no created":   {ID: 3, Kind: flow.MailActivated, To: "x@perso.example"},
		"named to":     {ID: 3, Kind: flow.MailActivated, To: "X <x@perso.example>", Created: created},
		"header in to": {ID: 3, Kind: flow.MailActivated, To: "x@perso.example\r\nBcc: y@z.example", Created: created},
	} {
		if _, err := r.Render(m); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	bad := testConfig(t, "127.0.0.1:25")
	bad.From = "not an address"
	if _, err := NewRenderer(bad).Render(good); err == nil || !strings.Contains(err.Error(), "sender") {
		t.Errorf("bad From: %v", err)
	}
}

func TestRenderDefaultsAndCleaning(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:25")
	cfg.Institution, cfg.Location, cfg.Services = "", nil, nil
	m := flow.Mail{ID: 9, Kind: flow.MailActivated, To: "x@perso.example", Lang: "de", Login: "x",
		Name: "Eve\x1b[31m\u202eRed\r\nBcc: y@z.example", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	raw, err := NewRenderer(cfg).Render(m)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, raw)
	if p.Header.Get("Bcc") != "" || strings.ContainsAny(p.Body, "\x1b\u202e") || !strings.Contains(p.Body, "Bonjour EveRedBcc: y@z.example,") {
		t.Errorf("untrusted name not cleaned:\n%s", raw)
	}
	if want := "Votre compte informatique Université Exemple est activé / Your Université Exemple IT account is active"; p.Subject != want {
		t.Errorf("unknown language: subject %q, want both languages", p.Subject)
	}
	if strings.Contains(p.Body, "  - ") {
		t.Errorf("empty services listed:\n%s", p.Body)
	}
	if d := p.Header.Get("Date"); d != "Fri, 02 Jan 2026 03:04:05 +0000" {
		t.Errorf("Date %q (default location UTC)", d)
	}

	cfg.From = "it@example.org" // no display name: the institution is the domain
	raw, err = NewRenderer(cfg).Render(flow.Mail{ID: 9, Kind: flow.MailAlreadyActive, To: "x@perso.example", Lang: "en", Login: "x", Created: m.Created})
	if err != nil {
		t.Fatal(err)
	}
	if p := parseMessage(t, raw); p.Subject != "Your example.org IT account is already active" || !strings.Contains(p.Body, "Hello,\n") {
		t.Errorf("subject %q body:\n%s", p.Subject, p.Body)
	}
}

// The "account is active" notice is identified by the activation it
// reports, not by its place in the outbox: were it queued twice (a crash),
// both copies carry one Message-ID and a receiver can drop the second.
func TestNoticeMessageIDFollowsTheActivation(t *testing.T) {
	r := NewRenderer(testConfig(t, "127.0.0.1:25"))
	at := time.Date(2026, 11, 25, 14, 0, 0, 123, time.UTC)
	id := func(m flow.Mail) string {
		t.Helper()
		raw, err := r.Render(m)
		if err != nil {
			t.Fatal(err)
		}
		return parseMessage(t, raw).Header.Get("Message-ID")
	}
	first := id(flow.Mail{ID: 7, Kind: flow.MailActivated, To: "x@perso.example", Login: "x", Created: at})
	if again := id(flow.Mail{ID: 8, Kind: flow.MailActivated, To: "x@perso.example", Login: "x", Created: at}); again != first {
		t.Errorf("the same notice queued twice: %s and %s", first, again)
	}
	for name, m := range map[string]flow.Mail{
		"another login":     {ID: 7, Kind: flow.MailActivated, To: "x@perso.example", Login: "y", Created: at},
		"another address":   {ID: 7, Kind: flow.MailActivated, To: "z@perso.example", Login: "x", Created: at},
		"another time":      {ID: 7, Kind: flow.MailActivated, To: "x@perso.example", Login: "x", Created: at.Add(time.Second)},
		"another kind, too": {ID: 7, Kind: flow.MailAlreadyActive, To: "x@perso.example", Login: "x", Created: at},
	} {
		if got := id(m); got == first || !strings.HasPrefix(got, "<") || !strings.HasSuffix(got, ">") {
			t.Errorf("%s: %s (notice: %s)", name, got, first)
		}
	}
	if strings.Contains(first, "x@") || strings.Contains(first, ".x.") {
		t.Errorf("the Message-ID shows the login or the address: %s", first)
	}
}

// Invisible and format characters in a name from the directory never reach
// a mail header or body: a name cannot pass for another's.
func TestRenderDropsFormatCharacters(t *testing.T) {
	invisible := "\u200b\u200c\u200d\u2060\ufeff\u00ad\u2028\u2029\u202e\U000E0041\u3164"
	m := flow.Mail{ID: 4, Kind: flow.MailActivated, To: "x@perso.example", Lang: "en", Login: "x",
		Name: "Jeanne" + invisible + " Dupont", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	raw, err := NewRenderer(testConfig(t, "127.0.0.1:25")).Render(m)
	if err != nil {
		t.Fatal(err)
	}
	p := parseMessage(t, raw)
	to, err := mail.ParseAddress(p.Header.Get("To"))
	if err != nil || to.Name != "Jeanne Dupont" {
		t.Errorf("To %q → %+v, %v", p.Header.Get("To"), to, err)
	}
	if strings.ContainsAny(p.Body, invisible) || !strings.Contains(p.Body, "Jeanne Dupont") {
		t.Errorf("body holds an invisible character:\n%q", p.Body)
	}
}
