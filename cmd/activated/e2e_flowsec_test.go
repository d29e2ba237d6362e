package main

import (
	"strings"
	"testing"
	"time"

	"activated/flow"
	"activated/flow/i18n"
)

// A code typed at the login prompt of the real server is refused as a
// code before any directory search: with slapd down, a search would fail
// and be logged with what was typed; nothing of it reaches the log.
func TestE2ECodeAtLoginPrompt(t *testing.T) {
	h := newHarness(t)
	p := h.openPlain("activate+plain", "en_US.UTF-8")
	p.waitPrompt("Login")
	p.answer("jdupont")
	code := h.code("jeanne@perso.example.net", 0)
	norm, _ := flow.NormalizeCode(code)
	p.client.Close()

	must(t, h.ldap.Stop())
	q := h.openPlain("activate+plain", "en_US.UTF-8")
	q.waitPrompt("Login")
	refusal := i18n.T("en", "err.login.code")
	for i, typed := range []string{code, strings.ToLower(norm), "fsfw-fk8x-zsm2-frkt"} {
		q.answer(typed)
		waitCount(t, q, refusal, i+1)
		q.waitPrompt("Login")
	}
	logs := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(h.logs.String()))
	for _, s := range []string{norm, "FSFWFK8XZSM2FRKT"} {
		if strings.Contains(logs, s) {
			t.Errorf("the server log holds the code %s:\n%s", s, h.logs.String())
		}
	}
	if strings.Contains(h.logs.String(), "directory lookup") {
		t.Errorf("a code reached the directory:\n%s", h.logs.String())
	}
	// A login does reach it, and its failure is logged: the check above
	// would have seen a code there.
	q.answer("jdupont")
	waitCount(t, q, i18n.T("en", "err.unavailable"), 1)
	if !strings.Contains(h.logs.String(), "directory lookup") {
		t.Errorf("a login during the outage left no log line:\n%s", h.logs.String())
	}
}

// waitCount waits until text stands n times in the session's output.
func waitCount(t *testing.T, p *plainSession, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for strings.Count(p.out.String(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not shown %d times; output ends:\n%s", text, n, tail(p.out.String(), 1500))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
