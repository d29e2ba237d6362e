package flow

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// 1,000 changes while a check runs: one check at a time, and the value
// judged last is the latest one.
func TestPasswordWatchOneCheckInFlightOnTheLatestValue(t *testing.T) {
	var inFlight, most, calls atomic.Int32
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	check := func(pw string) PasswordCheck {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-release // every change below comes while this check runs
		}
		return PasswordCheck{Length: utf8.RuneCountInString(pw)}
	}
	w := newPasswordWatch(check, 0, func(time.Duration) {}, time.Now)
	results := make(chan PasswordResult, 1000)
	var wg sync.WaitGroup
	runs, last := 0, 0
	for i := 1; i <= 1000; i++ {
		seq, run := w.Set(strings.Repeat("x", i))
		last = seq
		if run != nil {
			runs++
			wg.Add(1)
			go func() { defer wg.Done(); results <- run() }()
		}
		if i == 1 {
			<-started
		}
	}
	close(release)
	wg.Wait()
	close(results)
	if runs != 1 {
		t.Errorf("%d checks started for 1,000 changes during one check, want 1", runs)
	}
	if most.Load() != 1 {
		t.Errorf("%d checks in flight at once, want 1", most.Load())
	}
	if calls.Load() != 2 {
		t.Errorf("%d checks ran, want 2: the first value, then the latest", calls.Load())
	}
	var got []PasswordResult
	for r := range results {
		got = append(got, r)
	}
	if len(got) != 1 || got[0].Seq != last || got[0].Check.Length != 1000 {
		t.Errorf("results %+v, want one for change %d (1,000 characters)", got, last)
	}

	// Once idle, the next change starts a check of its own.
	if _, run := w.Set("y"); run == nil || run().Check.Length != 1 {
		t.Error("a change after the last check started none, or judged another value")
	}
}

// The check waits for the pause after the last change.
func TestPasswordWatchWaitsForThePause(t *testing.T) {
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	var slept []time.Duration
	var checkedAt time.Time
	w := newPasswordWatch(func(string) PasswordCheck { checkedAt = now; return PasswordCheck{} },
		PasswordPause, func(d time.Duration) { slept = append(slept, d); now = now.Add(d) }, func() time.Time { return now })
	_, run := w.Set("a")
	now = now.Add(PasswordPause / 3)
	run()
	if len(slept) != 1 || slept[0] != PasswordPause*2/3 {
		t.Errorf("slept %v, want one pause of %v", slept, PasswordPause*2/3)
	}
	if checkedAt.Sub(now) != 0 || len(slept) == 0 {
		t.Error("the check ran before the pause")
	}
}

// A long password costs two bounded windows, and is never judged
// stronger than its weaker end.
func TestPasswordCheckWindows(t *testing.T) {
	p := DefaultPasswordPolicy
	strong := "kT9#vQ2m!xR7pL4z"
	weak := strings.Repeat("a", zxcvbnWindow)
	for _, c := range []struct {
		pw   string
		want bool
	}{
		{strong + strong[:4], true},
		{strong + weak, false},
		{weak + strong, false},
		{strings.Repeat("jdupont", 4), false},
	} {
		if got := p.Check(c.pw, "").Rules[3].OK; got != c.want {
			t.Errorf("strength of %q = %v, want %v", c.pw, got, c.want)
		}
	}
	if got := p.Check(strings.Repeat("b", 300), "").Rules; got[1].OK || got[3].OK {
		t.Errorf("300 characters: %+v", got)
	}
}
