package flow

import (
	"crypto/sha256"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/unicode/norm"
)

// PasswordPolicy is the institution's password rule set. Defaults: 15 to
// 256 characters, no composition rules, zxcvbn score at least 3.
type PasswordPolicy struct {
	MinLength int
	MaxLength int
	MinScore  int
}

// DefaultPasswordPolicy is the policy when the config says nothing.
var DefaultPasswordPolicy = PasswordPolicy{MinLength: 15, MaxLength: 256, MinScore: 3}

// Rule names one line of the checklist a screen shows.
type Rule string

const (
	RuleMinLength Rule = "min-length" // at least MinLength characters
	RuleMaxLength Rule = "max-length" // at most MaxLength characters
	RuleNoLogin   Rule = "no-login"   // does not contain the login
	RuleStrength  Rule = "strength"   // hard to guess (zxcvbn score)
)

// RuleResult is the state of one rule for the password being typed.
type RuleResult struct {
	Rule Rule
	OK   bool
}

// PasswordCheck is a policy verdict: each rule separately, for a live
// checklist, and the zxcvbn score. It never holds the password.
type PasswordCheck struct {
	Rules  []RuleResult
	Length int
	Score  int
}

// OK tells whether every rule passes.
func (c PasswordCheck) OK() bool {
	for _, r := range c.Rules {
		if !r.OK {
			return false
		}
	}
	return len(c.Rules) > 0
}

// zxcvbnWindow bounds the work of the strength estimate. zxcvbn's cost
// grows much faster than the length (go test -bench PasswordCheck ./flow/;
// zxcvbn alone on the 2-core reference machine, typical passphrases: 16
// runes 0.5–5 ms, 32 runes 9–24 ms, 64 runes 125–145 ms, 100 runes 370
// ms; the check below stays under about 10 ms whatever the length). A longer password, stripped of the login and names, is scored
// on its first and its last zxcvbnWindow runes, and gets the lower of the
// two scores: never more than the weaker end earns (a window cut inside a repeated word would
// look random and score too high on its own), at a cost bounded by two
// windows whatever the length. The other rules (length, login) read the
// whole password, and cost next to nothing.
const zxcvbnWindow = 16

// Check evaluates pw. context holds what a guesser would try first: login,
// names, institution.
func (p PasswordPolicy) Check(pw, login string, context ...string) PasswordCheck {
	n := utf8.RuneCountInString(pw)
	hasLogin := login != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(login))
	score := 0
	if n > 0 {
		inputs := []string{login}
		for _, c := range context {
			inputs = append(inputs, strings.Fields(c)...)
		}
		// What a guesser tries first counts for nothing: the score is that
		// of what is left once the names, login and institution are taken
		// out, accents and case aside ("Hélène Moreau Université").
		score = strength(without(fold(pw), inputs), inputs)
	}
	return PasswordCheck{
		Length: n,
		Score:  score,
		Rules: []RuleResult{
			{RuleMinLength, n >= p.MinLength},
			{RuleMaxLength, n <= p.MaxLength},
			{RuleNoLogin, n > 0 && !hasLogin},
			{RuleStrength, n > 0 && score >= p.MinScore},
		},
	}
}

// fold lowers s and drops its accents.
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// without is folded pw with every word of words (3 letters or more,
// folded) taken out.
func without(pw string, words []string) string {
	for _, w := range words {
		if w = fold(w); utf8.RuneCountInString(w) >= 3 {
			pw = strings.ReplaceAll(pw, w, "")
		}
	}
	return pw
}

// strength is zxcvbn's score of pw within the window bound: at most
// zxcvbnWindow runes are scored in one piece; a longer pw gets the lower
// score of its first and its last zxcvbnWindow runes.
func strength(pw string, inputs []string) int {
	r := []rune(pw)
	if len(r) <= zxcvbnWindow {
		return zxcvbn.PasswordStrength(pw, inputs).Score
	}
	return min(zxcvbn.PasswordStrength(string(r[:zxcvbnWindow]), inputs).Score,
		zxcvbn.PasswordStrength(string(r[len(r)-zxcvbnWindow:]), inputs).Score)
}

// PasswordPause is how long a password field must stay unchanged before
// its live check runs: a check per keystroke of a fast typist (or per
// change of a script) would be wasted work.
const PasswordPause = 150 * time.Millisecond

// PasswordWatch runs the live checks of one session's password field: at
// most one check in flight, run once the typing has paused for the pause,
// always on the latest value. Changes made while a check runs are not
// queued: when it ends, the latest value is checked if it changed.
type PasswordWatch struct {
	check func(string) PasswordCheck
	pause time.Duration
	sleep func(time.Duration)
	now   func() time.Time

	mu      sync.Mutex
	value   string
	seq     int
	changed time.Time
	running bool
}

// PasswordResult is the check of the value a PasswordWatch numbered Seq.
type PasswordResult struct {
	Seq   int
	Check PasswordCheck
}

func newPasswordWatch(check func(string) PasswordCheck, pause time.Duration, sleep func(time.Duration), now func() time.Time) *PasswordWatch {
	return &PasswordWatch{check: check, pause: pause, sleep: sleep, now: now}
}

// Set records the field's new value and returns its number. run is nil
// while a check is under way (it will judge the latest value); otherwise
// the caller runs it, off its UI goroutine: it waits for the pause, checks
// the latest value, and returns that value's number with its check.
func (w *PasswordWatch) Set(pw string) (seq int, run func() PasswordResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.value, w.changed = pw, w.now()
	w.seq++
	if w.running {
		return w.seq, nil
	}
	w.running = true
	return w.seq, w.run
}

func (w *PasswordWatch) run() PasswordResult {
	for {
		w.mu.Lock()
		if wait := w.pause - w.now().Sub(w.changed); wait > 0 {
			w.mu.Unlock()
			w.sleep(wait)
			continue
		}
		pw, seq := w.value, w.seq
		w.mu.Unlock()
		c := w.check(pw)
		w.mu.Lock()
		if seq == w.seq {
			w.running = false
			w.mu.Unlock()
			return PasswordResult{Seq: seq, Check: c}
		}
		w.mu.Unlock()
	}
}

// passwordChecks bounds the strength checks running at once, server-wide:
// a slot per two cores (at least one), so that checks, whoever asks for
// them, always leave CPU for everything else.
func passwordChecks() chan struct{} {
	return make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
}

// checkCache remembers a session's last verdict, by the password's hash:
// the check at the last step of a password just checked on screen is free.
type checkCache struct {
	mu    sync.Mutex
	key   [sha256.Size]byte
	check PasswordCheck
	ok    bool
}

func (c *checkCache) get(key [sha256.Size]byte) (PasswordCheck, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check, c.ok && c.key == key
}

func (c *checkCache) put(key [sha256.Size]byte, check PasswordCheck) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.check, c.ok = key, check, true
}
