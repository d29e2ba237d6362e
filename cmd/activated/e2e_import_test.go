package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The start-of-year file through a real SSH client with a staff key: 1,000
// new accounts created in slapd and invited, every outcome right; the same
// file again sends no mail.
func TestE2EStaffImport1000(t *testing.T) {
	h := newHarness(t)
	csv := importCSV(1000)
	sc := staffDial(h)
	var first staffOutcomes
	sc.json(&first, 0, csv, "import --create --json")
	if len(first.Results) != 1000 || first.Counts["created"] != 1000 {
		t.Fatalf("first import: %d results, counts %v", len(first.Results), first.Counts)
	}
	for i, r := range first.Results {
		if want := fmt.Sprintf("e%04d", i+1); r.Line != i+2 || r.Login != want || r.Outcome != "created" {
			t.Fatalf("result %d: %+v, want line %d %s created", i, r, i+2, want)
		}
	}
	// Every invitation reaches the SMTP server, once.
	deadline := time.Now().Add(3 * time.Minute) // a safety net for a slow machine, not a timing assertion
	for len(h.smtp.Messages()) < 1000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	staffOutboxIdle(h)
	if n := len(h.smtp.Messages()); n != 1000 {
		t.Fatalf("%d mails delivered, want 1000", n)
	}
	if m := h.waitMail("e0500@perso.example.net", 0); !strings.Contains(m.Body, "e0500") || codeRE.FindString(m.Body) == "" {
		t.Errorf("invitation of e0500:\n%s", m.Body)
	}

	var second staffOutcomes
	sc.json(&second, 0, csv, "import --create --json")
	if second.Counts["already-invited"] != 1000 {
		t.Errorf("second import: counts %v", second.Counts)
	}
	staffOutboxIdle(h)
	if n := len(h.smtp.Messages()); n != 1000 {
		t.Errorf("the second import sent %d more mails", n-1000)
	}
}

// importCSV is a start-of-year file of n new students.
func importCSV(n int) string {
	var csv strings.Builder
	csv.WriteString("login,recovery_mail,given_name,surname,affiliation\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&csv, "e%04d,e%04d@perso.example.net,Élève,Numéro %d,student\n", i, i, i)
	}
	return csv.String()
}

// BenchmarkE2EImport1000 measures, through a real SSH client, importing a
// file of 1,000 new accounts with --create (each created in slapd and
// invited) until the SMTP peer holds the 1,000 invitations:
//
//	go test -run XXX -bench E2EImport1000 -benchtime 3x ./cmd/activated/
func BenchmarkE2EImport1000(b *testing.B) {
	csv := importCSV(1000)
	for range b.N {
		b.StopTimer()
		h := newHarness(b)
		sc := staffDial(h)
		b.StartTimer()
		var r staffOutcomes
		sc.json(&r, 0, csv, "import --create --json")
		for len(h.smtp.Messages()) < 1000 {
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		if r.Counts["created"] != 1000 {
			b.Fatalf("counts %v", r.Counts)
		}
		h.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/1000, "ms/account")
}
