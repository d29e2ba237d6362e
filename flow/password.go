package flow

import (
	"strings"
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

// zxcvbnLimit bounds the work of the strength estimate: like zxcvbn.js,
// only the first 100 characters are scored (the rest only adds strength).
const zxcvbnLimit = 100

// Check evaluates pw. context holds what a guesser would try first: login,
// names, institution.
func (p PasswordPolicy) Check(pw, login string, context ...string) PasswordCheck {
	n := utf8.RuneCountInString(pw)
	hasLogin := login != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(login))
	score := 0
	if n > 0 {
		scored := pw
		if n > zxcvbnLimit {
			scored = string([]rune(pw)[:zxcvbnLimit])
		}
		inputs := []string{login}
		for _, c := range context {
			inputs = append(inputs, strings.Fields(c)...)
		}
		// What a guesser tries first counts for nothing: the score is that
		// of what is left once the names, login and institution are taken
		// out, accents and case aside ("Hélène Moreau Université").
		score = zxcvbn.PasswordStrength(without(fold(scored), inputs), inputs).Score
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
