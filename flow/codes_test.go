package flow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"activated/flow"
)

// A queued mail whose code stops working (superseded, revoked) is
// cancelled in the same transaction, its code dropped, with an audit event
// at flow's clock; mails of other logins and sent ones are untouched.
func TestStaleCodeCancelsItsQueuedMail(t *testing.T) {
	e := newEnv(t)
	must(t, e.svc.Begin(ctx, "amartin", user))
	must(t, e.svc.Begin(ctx, "jdupont", user))
	e.clock.Add(time.Minute)
	must(t, e.svc.Begin(ctx, "amartin", user)) // supersedes the first code while its mail waits
	byState := func(login string) map[flow.MailState]int {
		n := map[flow.MailState]int{}
		for _, m := range e.mails() {
			if m.Login == login {
				n[m.State]++
				if m.State == flow.MailCancelled && (m.Code != "" || !strings.Contains(m.LastError, "superseded") && !strings.Contains(m.LastError, "revoked")) {
					t.Errorf("cancelled mail keeps its code or has no reason: %+v", m)
				}
			}
		}
		return n
	}
	if got := byState("amartin"); got[flow.MailCancelled] != 1 || got[flow.MailQueued] != 1 {
		t.Errorf("amartin after supersede: %v", got)
	}
	if got := byState("jdupont"); got[flow.MailQueued] != 1 || got[flow.MailCancelled] != 0 {
		t.Errorf("jdupont: %v", got)
	}
	_, err := e.svc.Invite(ctx, "jdupont", true, staffClient)
	must(t, err)
	must(t, e.svc.Revoke("jdupont", staffClient))
	if got := byState("jdupont"); got[flow.MailQueued] != 0 || got[flow.MailCancelled] != 2 {
		t.Errorf("jdupont after revoke: %v", got)
	}
	var cancelled []flow.Event
	must(t, e.svc.Events(0, "", time.Time{}, func(ev flow.Event) error {
		if ev.Action == "mail-cancelled" {
			cancelled = append(cancelled, ev)
		}
		return nil
	}))
	if len(cancelled) != 3 {
		t.Fatalf("%d mail-cancelled events: %+v", len(cancelled), cancelled)
	}
	if !cancelled[0].Time.Equal(e.clock.Now()) || cancelled[0].Login != "amartin" || cancelled[0].Actor != "system" {
		t.Errorf("event %+v: want flow's clock %s", cancelled[0], e.clock.Now())
	}
}

// A code revoked with its dossier, once staff started the activation
// again, is one a newer mail replaced: its holder is told to use that
// mail's code, not that only staff can start the activation again.
func TestRevokedCodeOfAReinvitedDossier(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Invite(ctx, "jdupont", false, staffClient)
	must(t, err)
	old := e.lastCode("jdupont", flow.MailInvitation)
	must(t, e.svc.Revoke("jdupont", staffClient))
	if _, err := e.svc.Open(ctx, old, user); !errors.Is(err, flow.ErrCodeRevoked) {
		t.Errorf("code of a revoked dossier: %v, want ErrCodeRevoked", err)
	}
	_, err = e.svc.Resend(ctx, "jdupont", staffClient)
	must(t, err)
	if _, err := e.svc.Open(ctx, old, user); !errors.Is(err, flow.ErrCodeSuperseded) {
		t.Errorf("revoked code after a new invitation: %v, want ErrCodeSuperseded", err)
	}
	x, err := e.svc.Open(ctx, e.lastCode("jdupont", flow.MailInvitation), user)
	must(t, err)
	x.Close()
}
