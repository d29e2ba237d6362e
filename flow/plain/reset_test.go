package plain

import (
	"context"
	"strings"
	"testing"

	"activated/flow"
)

// A reset of an account activated here (its dossier has a password set
// already): a refused password is asked again, it does not count as
// "saved", and the reset ends on its own sentence.
func TestResetRefusedAskedAgain(t *testing.T) {
	e := newEnv(t)
	code := e.resetCode()
	opts := e.opts("en", true)
	opts.Code = code
	tm := e.start(opts)
	tm.expect("Choose your new password.")
	const refused = "please refuse this Purple giraffe 88"
	tm.answer("New password> ", refused+"\r")
	tm.answer("Confirm the password> ", refused+"\r")
	tm.expect("The directory refused this password: in history\r\n")
	const pw = "nine Silver kettles hum 42"
	tm.answer("New password> ", pw+"\r")
	tm.answer("Confirm the password> ", pw+"\r")
	tm.expect("Your new password is saved.")
	out := tm.end()
	if strings.Contains(out, "Your password is saved; the activation") {
		t.Errorf("the reset was taken for an unfinished activation:\n%s", out)
	}
	if e.dir.Password("carol") != pw {
		t.Error("the directory did not get the new password")
	}
}

// While the directory takes a reset's password, the user is told their new
// password is being saved, not that their (active) account is being
// activated.
func TestResetSaysSavingNotActivating(t *testing.T) {
	e := newEnv(t)
	code := e.resetCode()
	opts := e.opts("fr", false)
	opts.Code = code
	tm := e.start(opts)
	const pw = "nine Silver kettles hum 42"
	tm.answer("Nouveau mot de passe> ", pw+"\n")
	tm.answer("Confirmez le mot de passe> ", pw+"\n")
	tm.expect("Enregistrement de votre nouveau mot de passe…\n")
	tm.expect("Votre nouveau mot de passe est enregistré.")
	if out := tm.end(); strings.Contains(out, "Activation de votre compte en cours") {
		t.Errorf("a reset said the account is being activated:\n%s", out)
	}
}

// resetCode activates carol, then asks for a reset at step 1 as its owner
// would, and returns the code mailed.
func (e *env) resetCode() string {
	e.t.Helper()
	ctx := context.Background()
	c := flow.Client{Remote: "192.0.2.7:1"}
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	must(e.svc.Begin(ctx, "carol", c))
	x, err := e.svc.Open(ctx, e.code("carol", flow.MailRecovery), c)
	must(err)
	must(x.AcceptCharter(true))
	must(x.ChooseDirectory(false))
	must(x.ChooseMailbox("", false))
	must(x.Finish(ctx, "seven Orange lanterns float 19"))
	x.Close()
	must(e.svc.Begin(ctx, "carol", c))
	return e.code("carol", flow.MailReset)
}
