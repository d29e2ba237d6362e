package flow_test

import (
	"strings"
	"testing"
	"time"

	"activated/flow"
)

func TestDeadlines(t *testing.T) {
	at := func(y int, m time.Month, d, h, min, s int) time.Time { return time.Date(y, m, d, h, min, s, 0, paris) }
	last := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 23, 59, 59, 999999999, paris) }
	for _, c := range []struct {
		name             string
		issued           time.Time
		sameDay, nextDay time.Time
		sameUTC, nextUTC string // the deadlines in UTC, written out by hand
	}{
		{"midnight", at(2026, 11, 25, 0, 0, 0), last(2026, 11, 25), last(2026, 11, 26), "2026-11-25T22:59:59Z", "2026-11-26T22:59:59Z"},
		{"noon", at(2026, 11, 25, 12, 0, 0), last(2026, 11, 25), last(2026, 11, 26), "2026-11-25T22:59:59Z", "2026-11-26T22:59:59Z"},
		{"23:59:30", at(2026, 11, 25, 23, 59, 30), last(2026, 11, 25), last(2026, 11, 26), "2026-11-25T22:59:59Z", "2026-11-26T22:59:59Z"},
		{"end of month", at(2026, 11, 30, 23, 59, 30), last(2026, 11, 30), last(2026, 12, 1), "2026-11-30T22:59:59Z", "2026-12-01T22:59:59Z"},
		// 2026-03-29: 02:00 CET becomes 03:00 CEST (the day has 23 hours).
		{"eve of spring change, noon", at(2026, 3, 28, 12, 0, 0), last(2026, 3, 28), last(2026, 3, 29), "2026-03-28T22:59:59Z", "2026-03-29T21:59:59Z"},
		{"eve of spring change, 23:59:30", at(2026, 3, 28, 23, 59, 30), last(2026, 3, 28), last(2026, 3, 29), "2026-03-28T22:59:59Z", "2026-03-29T21:59:59Z"},
		{"spring change day, midnight", at(2026, 3, 29, 0, 0, 0), last(2026, 3, 29), last(2026, 3, 30), "2026-03-29T21:59:59Z", "2026-03-30T21:59:59Z"},
		{"spring change day, 03:30", at(2026, 3, 29, 3, 30, 0), last(2026, 3, 29), last(2026, 3, 30), "2026-03-29T21:59:59Z", "2026-03-30T21:59:59Z"},
		// 2026-10-25: 03:00 CEST becomes 02:00 CET (the day has 25 hours).
		{"eve of autumn change, 23:59:30", at(2026, 10, 24, 23, 59, 30), last(2026, 10, 24), last(2026, 10, 25), "2026-10-24T21:59:59Z", "2026-10-25T22:59:59Z"},
		{"autumn change day, midnight", at(2026, 10, 25, 0, 0, 0), last(2026, 10, 25), last(2026, 10, 26), "2026-10-25T22:59:59Z", "2026-10-26T22:59:59Z"},
		{"autumn change day, noon", at(2026, 10, 25, 12, 0, 0), last(2026, 10, 25), last(2026, 10, 26), "2026-10-25T22:59:59Z", "2026-10-26T22:59:59Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			same, next := flow.SameDayDeadline(c.issued, paris), flow.NextDayDeadline(c.issued, paris)
			if !same.Equal(c.sameDay) || !next.Equal(c.nextDay) {
				t.Fatalf("issued %s: same %s next %s, want %s %s", c.issued, same, next, c.sameDay, c.nextDay)
			}
			if got := same.UTC().Truncate(time.Second).Format(time.RFC3339); got != c.sameUTC {
				t.Errorf("same-day deadline in UTC %s, want %s", got, c.sameUTC)
			}
			if got := next.UTC().Truncate(time.Second).Format(time.RFC3339); got != c.nextUTC {
				t.Errorf("next-day deadline in UTC %s, want %s", got, c.nextUTC)
			}
			if l := same.In(paris); l.Hour() != 23 || l.Minute() != 59 || l.Second() != 59 {
				t.Errorf("same-day deadline %s is not 23:59:59 local", l)
			}
			// Issued from another zone, the institution's day still decides.
			if got := flow.SameDayDeadline(c.issued.In(time.UTC), paris); !got.Equal(same) {
				t.Errorf("deadline depends on the zone of the issuing time: %s vs %s", got, same)
			}
		})
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"ABCD-EFGH-JKMN-PQRS":      "ABCDEFGHJKMNPQRS",
		"abcd efgh jkmn pqrs":      "ABCDEFGHJKMNPQRS",
		"abcdefghjkmnpqrs":         "ABCDEFGHJKMNPQRS",
		" o0il-OIL1-2345-6789 ":    "0011011123456789",
		"abcd.efgh_jkmn\tpqrs":     "ABCDEFGHJKMNPQRS",
		"abcd\u2010efgh-jkmn-pqrs": "ABCDEFGHJKMNPQRS",
	} {
		got, ok := flow.NormalizeCode(in)
		if !ok || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "ABCD", "ABCD-EFGH-JKMN-PQRSX", "ABCD-EFGH-JKMN-PQRU", "ABCD-EFGH-JKMN-PQR!", "activate", strings.Repeat("A", 1<<20), "ÀBCD-EFGH-JKMN-PQRS"} {
		if got, ok := flow.NormalizeCode(in); ok {
			t.Errorf("NormalizeCode(%.30q) = %q, accepted", in, got)
		}
	}
}

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := flow.NewCode()
		if len(c) != 19 || strings.Count(c, "-") != 3 {
			t.Fatalf("code %q is not XXXX-XXXX-XXXX-XXXX", c)
		}
		n, ok := flow.NormalizeCode(c)
		if !ok || n != strings.ReplaceAll(c, "-", "") {
			t.Fatalf("code %q does not normalize to itself: %q %v", c, n, ok)
		}
		if seen[n] {
			t.Fatalf("code %q came twice", c)
		}
		seen[n] = true
	}
}

func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-JKMN-PQRS", "abcd efgh jkmn pqrs", "o0il", "", "----", "ÀÉ", "\x00\xff"} {
		f.Add(s)
	}
	f.Add(flow.NewCode())
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := flow.NormalizeCode(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if len(n) != flow.CodeLen {
			t.Fatalf("%q → %q: length %d", s, n, len(n))
		}
		for _, r := range n {
			if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r) {
				t.Fatalf("%q → %q: symbol %q outside Crockford base32", s, n, r)
			}
		}
		if again, ok := flow.NormalizeCode(n); !ok || again != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, again)
		}
		if lower, ok := flow.NormalizeCode(strings.ToLower(s)); !ok || lower != n {
			t.Fatalf("case matters: %q → %q, lower → %q", s, n, lower)
		}
	})
}

func TestValidMail(t *testing.T) {
	for _, ok := range []string{"a@b.fr", " jeanne.dupont+x@perso.example.net ", "élève@exemple.fr"} {
		if _, good := flow.ValidMail(ok); !good {
			t.Errorf("ValidMail(%q) refused", ok)
		}
	}
	for _, bad := range []string{"", "a", "a@b", "@b.fr", "a@.fr", "a@b.", "a@b..fr", "Jean <a@b.fr>", "a@b.fr, c@d.fr", "a b@c.fr", "a@b.fr\r\nBcc: x@y.z", strings.Repeat("a", 250) + "@b.fr"} {
		if m, good := flow.ValidMail(bad); good {
			t.Errorf("ValidMail(%q) accepted as %q", bad, m)
		}
	}
}

func TestValidLogin(t *testing.T) {
	for _, ok := range []string{"jdupont", "j.dupont-2", "a_b", "x"} {
		if !flow.ValidLogin(ok) {
			t.Errorf("ValidLogin(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "*)(uid=*", "jdupont)(|(uid=*", ".x", "-x", "a b", "é", strings.Repeat("a", 65), "a\x00"} {
		if flow.ValidLogin(bad) {
			t.Errorf("ValidLogin(%q) = true", bad)
		}
	}
	if got := flow.NormalizeLogin("  JDupont \n"); got != "jdupont" {
		t.Errorf("NormalizeLogin = %q", got)
	}
}

func TestPasswordPolicy(t *testing.T) {
	p := flow.DefaultPasswordPolicy
	rules := func(c flow.PasswordCheck) map[flow.Rule]bool {
		m := map[flow.Rule]bool{}
		for _, r := range c.Rules {
			m[r.Rule] = r.OK
		}
		return m
	}
	for _, c := range []struct {
		pw   string
		want map[flow.Rule]bool
	}{
		{"", map[flow.Rule]bool{flow.RuleMinLength: false, flow.RuleMaxLength: true, flow.RuleNoLogin: false, flow.RuleStrength: false}},
		{"short", map[flow.Rule]bool{flow.RuleMinLength: false, flow.RuleMaxLength: true, flow.RuleNoLogin: true, flow.RuleStrength: false}},
		{"aaaaaaaaaaaaaaaaaaaa", map[flow.Rule]bool{flow.RuleMinLength: true, flow.RuleMaxLength: true, flow.RuleNoLogin: true, flow.RuleStrength: false}},
		{"JDupont-violet-staple-horse", map[flow.Rule]bool{flow.RuleMinLength: true, flow.RuleMaxLength: true, flow.RuleNoLogin: false, flow.RuleStrength: true}},
		{goodPassword, map[flow.Rule]bool{flow.RuleMinLength: true, flow.RuleMaxLength: true, flow.RuleNoLogin: true, flow.RuleStrength: true}},
		{strings.Repeat("Zq8!", 65), map[flow.Rule]bool{flow.RuleMinLength: true, flow.RuleMaxLength: false, flow.RuleNoLogin: true, flow.RuleStrength: false}},
	} {
		got := p.Check(c.pw, "jdupont", "Jeanne", "Dupont", "Université Exemple")
		for r, want := range c.want {
			if rules(got)[r] != want {
				t.Errorf("%q: rule %s = %v, want %v", c.pw, r, rules(got)[r], want)
			}
		}
		allOK := true
		for _, v := range c.want {
			allOK = allOK && v
		}
		if got.OK() != allOK {
			t.Errorf("%q: OK() = %v", c.pw, got.OK())
		}
	}
	// Names are context: a password made of the user's names is weak.
	if c := p.Check("JeanneDupontJeanneDupont", "jdupont", "Jeanne", "Dupont"); c.Score >= 3 {
		t.Errorf("names as password scored %d", c.Score)
	}
	if (flow.PasswordCheck{}).OK() {
		t.Error("an empty check passes")
	}
}

func BenchmarkPasswordCheck256(b *testing.B) {
	pw := strings.Repeat("correct horse battery staple ", 9)[:256]
	for b.Loop() {
		flow.DefaultPasswordPolicy.Check(pw, "jdupont", "Jeanne", "Dupont")
	}
}

// A password made of the user's names and the institution is easy to
// guess, whatever its length, accents or case.
func TestPasswordOfNamesIsWeak(t *testing.T) {
	ctx := []string{"Hélène", "Moreau", "Hélène Moreau", "Université Exemple"}
	for _, pw := range []string{"Hélène Moreau Université", "helene moreau universite", "MoreauHélèneExemple2025"} {
		if c := flow.DefaultPasswordPolicy.Check(pw, "hmoreau", ctx...); c.OK() {
			t.Errorf("%q passes: %+v", pw, c)
		}
	}
	if c := flow.DefaultPasswordPolicy.Check("Hélène rides seven purple giraffes", "hmoreau", ctx...); !c.OK() {
		t.Errorf("a passphrase with a name in it fails: %+v", c)
	}
}
