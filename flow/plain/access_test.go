package plain

import (
	"strings"
	"testing"

	"activated/flow"
)

// Screen readers at their default punctuation level say no brackets: "[x]"
// is heard "x" and "[ ]" nothing, so which rule a refused password breaks
// could not be told. Plain mode says it in words, in both languages.
func TestPasswordRulesSaidInWords(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "carol\n")
	tm.answerFn("Code from the mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.answer("I have read and accept the IT charter (y/n)> ", "y\n")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "n\n")
	tm.answer("Redirect my mail to an external address (y/n)> ", "n\n")
	tm.answer("New password> ", "short\n")
	tm.expect("Not met: At least 15 characters\n")
	tm.expect("Met: At most 256 characters\n")
	tm.expect("This password does not meet every rule above.")
	tm.answer("New password> ", "!fr\n")
	tm.answer("Nouveau mot de passe> ", "court\n")
	tm.expect("Non respectée : Au moins 15 caractères\n")
	tm.expect("Respectée : Au plus 256 caractères\n")
	tm.answer("Nouveau mot de passe> ", "\x04")
	if out := tm.end(); strings.Contains(out, "[x]") || strings.Contains(out, "[ ]") {
		t.Errorf("a rule is marked by a bracketed box:\n%s", out)
	}
}

// The first lines name "?", the only way to learn the other commands; "?"
// at a code prompt says again how to get a new code.
func TestHelpAnnouncedAndSaysResend(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en")
	out := tm.output()
	if first := out[:strings.Index(out, "Step 1 of 7")]; !strings.Contains(first, "? for help") {
		t.Errorf("the opening lines do not say how to get help:\n%s", first)
	}
	tm.answer("Redirect address [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.answer("Code sent to the redirect address> ", "?\n")
	tm.expect("? for help")
	tm.expect("Type !back to go back to the previous step.\n")
	tm.expect("(type !resend to get a new code)\n")
	tm.answer("Code sent to the redirect address> ", "\x04")
	tm.end()

	tm = e.start(e.opts("fr", false))
	tm.answer("Identifiant> ", "carol\n")
	tm.answer("Code reçu par mail> ", "?\n")
	tm.expect("? pour l'aide")
	tm.expect("(tapez !renvoyer pour recevoir un nouveau code)\n")
	tm.answer("Code reçu par mail> ", "\x04")
	tm.end()
}

// A redirect code used to reconnect confirms the address, then the code
// prompt is right there: the sentence says to type the other code, not to
// reconnect.
func TestRedirectConfirmedSaysTypeTheCode(t *testing.T) {
	e := newEnv(t)
	tm := e.redirecting("en")
	tm.answer("Redirect address [alice.perso@example.net]> ", "alice@elsewhere.example\n")
	tm.answer("Keep a copy in my university mailbox (strongly advised) (y/n) [y]> ", "\n")
	tm.answer("Code sent to the redirect address> ", "\x04")
	tm.end()

	opts := e.opts("en", false)
	opts.Code = e.code("alice", flow.MailRedirect)
	tm = e.start(opts)
	tm.expect("Your redirect address is confirmed.")
	tm.answerFn("Code from the mail> ", func() string { return e.code("alice", flow.MailRecovery) + "\n" })
	tm.expect("Step 7 of 7 — Password")
	tm.answer("New password> ", "\x04")
	out := tm.end()
	if said := out[strings.Index(out, "Your redirect address is confirmed."):strings.Index(out, "Code from the mail> ")]; strings.Contains(said, "reconnect") || !strings.Contains(said, "type the code sent to your recovery address") {
		t.Errorf("confirmation sentence: %q", said)
	}
	if d := e.dossier("alice"); !d.RedirectVerified {
		t.Errorf("dossier %+v", d)
	}
}

// Every command plain mode tells the user to type keeps plain mode: told
// "ssh CODE@host", a screen reader user coming back would land in the
// full-screen wizard.
func TestComeBackCommandsKeepPlainMode(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "carol\n")
	tm.expect("come back later with: ssh -p 2222 CODE+plain@activate.example.org\n")
	tm.answer("Code from the mail> ", "0000-0000-0000-0000\n")
	tm.expect("To get a new one: ssh -p 2222 activate+plain@activate.example.org\n")
	tm.answer("Code from the mail> ", "\x04")
	tm.expect("Come back with: ssh -p 2222 CODE+plain@activate.example.org\n")
	if out := tm.end(); strings.Contains(out, "CODE@") || strings.Contains(out, " activate@") {
		t.Errorf("a command without +plain:\n%s", out)
	}
}

// A session that came with a code and ends at the code prompt (the code
// was mistyped, or its dossier open elsewhere) says to come back with the
// code, as the TUI does: "ssh activate@" would mail a new one and end the
// code the user has.
func TestEndAfterCodeSaysComeBackWithCode(t *testing.T) {
	e := newEnv(t)
	opts := e.opts("en", false)
	opts.Code = "0000-0000-0000-0000"
	tm := e.start(opts)
	tm.expect("This code is not right.")
	tm.answer("Code from the mail> ", "\x04")
	tm.expect("Come back with: ssh -p 2222 CODE+plain@activate.example.org\n")
	tm.end()
}

// A screen reader at its default punctuation level does not say "!" or
// "?": "Type !fr for French" is heard as "Type fr". The commands are taken
// without their "!" too, at every prompt but a secret one.
func TestCommandsTakenWithoutTheirSign(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "help\n") // not a login: the help
	tm.expect("? for help")
	tm.answer("Login> ", "fr\n")
	tm.answer("Identifiant> ", "carol\n")
	tm.answer("Code reçu par mail> ", "renvoyer\n")
	tm.expect("un code vient d'être envoyé")
	tm.answerFn("Code reçu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "en\n")
	tm.answer("I have read and accept the IT charter (y/n)> ", "y\n")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "back\n")
	tm.answer("I have read and accept the IT charter (y/n) [y]> ", "y\n")
	tm.answer("Do you want to appear in the institution's public directory? (y/n)> ", "n\n")
	tm.answer("Redirect my mail to an external address (y/n)> ", "n\n")
	tm.answer("New password> ", "fr\n") // a secret: taken as typed, a password too short
	tm.expect("Not met: At least 15 characters")
	tm.answer("New password> ", "\x04")
	tm.end()
}

// "resend" (heard in "type !resend to get a new code") typed where no
// code can be sent again says so: it was taken as the answer, so the
// login prompt said "letters, digits, dot, dash or underscore only" and
// the redirect address prompt "This mail address is not valid".
func TestResendWhereNoCodeIsSent(t *testing.T) {
	e := newEnv(t)
	tm := e.start(e.opts("en", false))
	tm.answer("Login> ", "resend\n")
	tm.expect("There is no code to send again here.")
	tm.answer("Login> ", "fr\n")
	tm.answer("Identifiant> ", "renvoyer\n")
	tm.expect("Il n'y a pas de code à renvoyer ici.")
	tm.answer("Identifiant> ", "carol\n")
	tm.answerFn("Code reçu par mail> ", func() string { return e.code("carol", flow.MailRecovery) + "\n" })
	tm.answer("J'ai lu et j'accepte la charte informatique (o/n)> ", "o\n")
	tm.answer("Souhaitez-vous apparaître dans l'annuaire public de l'établissement ? (o/n)> ", "n\n")
	tm.answer("Rediriger mes mails vers une adresse externe (o/n)> ", "o\n")
	tm.answer("Adresse de redirection [carol@example.net]> ", "!renvoyer\n")
	tm.expect("Il n'y a pas de code à renvoyer ici.")
	tm.answer("Adresse de redirection [carol@example.net]> ", "\x04")
	out := tm.end()
	if strings.Contains(out, "pas valide") {
		t.Errorf("resend taken as an answer:\n%s", out)
	}
}
