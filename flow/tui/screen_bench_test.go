package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"activated/flow"
)

// BenchmarkFirstFrame is the wizard's share of a new session's CPU: the
// model, its first screen at 80×24 and the messages bubbletea sends at the
// start (the figures behind Screen's pooled cells and skipped redraws).
//
//	go test -run XXX -bench FirstFrame ./flow/tui/
func BenchmarkFirstFrame(b *testing.B) {
	e := newEnv(b)
	env := []string{"TERM=xterm-256color", "LANG=en_US.UTF-8"}
	var out writes
	for b.Loop() {
		m, cleanup := New(e.svc, Options{Client: flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: "en"}, PublicHost: "a.example.org", PublicPort: 22})
		s := NewScreen(m, &out, env, 80, 24)
		s.Init()
		s.Update(tea.ColorProfileMsg{Profile: colorprofile.Env(env)})
		s.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		s.Update(tea.EnvMsg(env))
		s.Close()
		cleanup()
	}
	b.ReportMetric(float64(out.n)/float64(b.N), "writes/op")
}

type writes struct{ n int }

func (w *writes) Write(p []byte) (int, error) { w.n++; return len(p), nil }

// BenchmarkKeyIntoFullField is a key typed into the password field once
// it holds its 1,024 characters: a paste from a terminal without
// bracketed paste keeps sending them.
//
//	go test -run XXX -bench KeyIntoFullField ./flow/tui/
func BenchmarkKeyIntoFullField(b *testing.B) {
	e := newEnv(b)
	m, cleanup := New(e.svc, Options{Client: flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: "en"}})
	defer cleanup()
	w := m.(*model)
	w.focusInputs(&w.pw)
	w.pw.SetValue(strings.Repeat("a", w.pw.CharLimit))
	w.fit() // the field at the width of an 80-column window
	key := tea.KeyPressMsg{Code: 'a', Text: "a"}
	for b.Loop() {
		w.input(key)
	}
}

// BenchmarkTypedKey is a key typed at the login step, a person's pace:
// the model's update, its view and the cells drawn (what a lecture hall
// typing costs the server, key by key).
//
//	go test -run XXX -bench TypedKey ./flow/tui/
func BenchmarkTypedKey(b *testing.B) {
	e := newEnv(b)
	env := []string{"TERM=xterm-256color", "LANG=en_US.UTF-8"}
	m, cleanup := New(e.svc, Options{Client: flow.Client{Remote: "192.0.2.1:1234", Actor: "user", Lang: "en"}, PublicHost: "a.example.org", PublicPort: 22})
	defer cleanup()
	var out writes
	s := NewScreen(m, &out, env, 80, 24)
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	s.Init()
	keys := []tea.KeyPressMsg{{Code: 'a', Text: "a"}, {Code: tea.KeyBackspace}}
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Second) // a person's pace: each key drawn at once
		s.Update(keys[i%2])
	}
	b.ReportMetric(float64(out.n)/float64(b.N), "writes/op")
}
