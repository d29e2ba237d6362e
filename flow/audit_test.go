package flow_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"activated/flow"
)

// TestStatusAndEventsOfOneLogin: Status and Events(…, login, …) give the
// events of that login only (not of a login it prefixes), oldest first,
// with the after and since filters still applied.
func TestStatusAndEventsOfOneLogin(t *testing.T) {
	e := newEnv(t)
	staff := flow.Client{Actor: "staff:Alice SHA256:abc", Remote: "127.0.0.1:1"}
	if got, err := e.svc.Invite(ctx, "jdupont", false, staff); err != nil || got != flow.Invited {
		t.Fatalf("Invite: %s, %v", got, err)
	}
	t1 := e.clock.Now().Add(time.Hour)
	must(t, e.db.Update(func(tx flow.Tx) error {
		for i, l := range []string{"jdupont2", "jdupont", "", "jdupont2", "jdupont", "amartin", "jdupont"} {
			if err := tx.Audit(flow.Event{Time: t1.Add(time.Duration(i) * time.Minute), Actor: "system", Action: "test", Login: l}); err != nil {
				return err
			}
		}
		return nil
	}))
	var all []flow.Event
	must(t, e.svc.Events(0, "", time.Time{}, func(ev flow.Event) error { all = append(all, ev); return nil }))
	filter := func(keep func(flow.Event) bool) (out []uint64) {
		for _, ev := range all {
			if keep(ev) {
				out = append(out, ev.Seq)
			}
		}
		return out
	}
	seqs := func(after uint64, login string, since time.Time) (out []uint64) {
		must(t, e.svc.Events(after, login, since, func(ev flow.Event) error { out = append(out, ev.Seq); return nil }))
		return out
	}

	st, err := e.svc.Status("JDupont")
	must(t, err)
	var got []uint64
	for _, ev := range st.Events {
		got = append(got, ev.Seq)
	}
	want := filter(func(ev flow.Event) bool { return ev.Login == "jdupont" })
	if len(want) < 4 || !reflect.DeepEqual(got, want) {
		t.Errorf("Status events %v, want %v", got, want)
	}
	if got := seqs(0, "jdupont", time.Time{}); !reflect.DeepEqual(got, want) {
		t.Errorf("Events(jdupont) = %v, want %v", got, want)
	}
	after := want[1]
	if got, want := seqs(after, "jdupont", time.Time{}), filter(func(ev flow.Event) bool { return ev.Login == "jdupont" && ev.Seq > after }); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("Events(after %d, jdupont) = %v, want %v", after, got, want)
	}
	since := t1.Add(2 * time.Minute)
	if got, want := seqs(0, "jdupont", since), filter(func(ev flow.Event) bool { return ev.Login == "jdupont" && !ev.Time.Before(since) }); !reflect.DeepEqual(got, want) || len(want) != 2 {
		t.Errorf("Events(jdupont, since) = %v, want %v", got, want)
	}
	if got, want := seqs(0, "jdupont2", time.Time{}), filter(func(ev flow.Event) bool { return ev.Login == "jdupont2" }); !reflect.DeepEqual(got, want) || len(want) != 2 {
		t.Errorf("Events(jdupont2) = %v, want %v", got, want)
	}
	if got, want := seqs(after, "", since), filter(func(ev flow.Event) bool { return ev.Seq > after && !ev.Time.Before(since) }); !reflect.DeepEqual(got, want) || len(want) != 5 {
		t.Errorf("Events(after %d, all, since) = %v, want %v", after, got, want)
	}
}

// The audit says which redirect address was chosen, so that the helpdesk
// sees a mistyped one corrected ("redirect=true" twice told nothing).
func TestMailboxEventNamesTheRedirect(t *testing.T) {
	e := newEnv(t)
	x := openAt(t, e, "amartin", flow.StepMailbox)
	defer x.Close()
	must(t, x.ChooseMailbox("alex@elsewhre.example.com", true))
	must(t, x.ChooseMailbox("alex@elsewhere.example.com", true))
	st, err := e.svc.Status("amartin")
	must(t, err)
	var got []string
	for _, ev := range st.Events {
		if ev.Action == "mailbox" {
			got = append(got, ev.Detail)
		}
	}
	want := []string{"redirect=true keep_copy=true to=alex@elsewhre.example.com", "redirect=true keep_copy=true to=alex@elsewhere.example.com"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mailbox events %q, want %q", got, want)
	}
}

// "My code does not work": a code typed after it stopped working is in
// its login's audit trail with the reason and the address it came from,
// once a minute at most; a wrong code names no login and writes nothing.
func TestRefusedCodeIsAudited(t *testing.T) {
	e := newEnv(t)
	staff := flow.Client{Actor: "staff:Alice SHA256:abc", Remote: "127.0.0.1:1"}
	refused := func() (out []string) {
		st, err := e.svc.Status("jdupont")
		must(t, err)
		for _, ev := range st.Events {
			if ev.Action == "code-refused" {
				out = append(out, ev.Detail+" from "+ev.Remote)
			}
		}
		return out
	}
	if got, err := e.svc.Invite(ctx, "jdupont", false, staff); err != nil || got != flow.Invited {
		t.Fatalf("Invite: %s, %v", got, err)
	}
	first := e.lastCode("jdupont", flow.MailInvitation)
	if got, err := e.svc.Resend(ctx, "jdupont", staff); err != nil || got != flow.Invited {
		t.Fatalf("Resend: %s, %v", got, err)
	}
	for range 3 {
		if _, err := e.svc.Open(ctx, first, user); !errors.Is(err, flow.ErrCodeSuperseded) {
			t.Fatalf("old code: %v", err)
		}
	}
	if _, err := e.svc.Open(ctx, flow.NewCode(), user); !errors.Is(err, flow.ErrCodeWrong) {
		t.Fatalf("wrong code: %v", err)
	}
	want := []string{"invite code: replaced by a newer one from " + user.Remote}
	if got := refused(); !reflect.DeepEqual(got, want) {
		t.Errorf("after the old code thrice: %q, want %q", got, want)
	}
	e.clock.Set(e.clock.Now().Add(2 * time.Minute))
	second := e.lastCode("jdupont", flow.MailInvitation)
	must(t, e.svc.Revoke("jdupont", staff))
	if _, err := e.svc.Open(ctx, second, user); !errors.Is(err, flow.ErrCodeRevoked) {
		t.Fatalf("revoked code: %v", err)
	}
	want = append(want, "invite code: revoked from "+user.Remote)
	if got := refused(); !reflect.DeepEqual(got, want) {
		t.Errorf("after the revoked code: %q, want %q", got, want)
	}
}
