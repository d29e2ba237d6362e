package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The name holds spaces and a ')': fields count from the last one.
	stat := "4242 (act ) ivated) S 1 4242 4242 0 -1 4194560 1203 0 0 0 250 37 0 0 20 0 9 0 123 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2870 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("a short stat line was accepted")
	}
}

func TestParseStatus(t *testing.T) {
	rss, thr, err := parseStatus(strings.NewReader("Name:\tactivated\nVmRSS:\t  12345 kB\nThreads:\t9\n"))
	if err != nil || rss != 12345*1024 || thr != 9 {
		t.Errorf("got %d, %d, %v; want %d, 9, nil", rss, thr, err, 12345*1024)
	}
	if _, _, err := parseStatus(strings.NewReader("Name:\tx\nThreads:\t9\n")); err == nil {
		t.Error("status without VmRSS was accepted")
	}
}

func TestParseGoroutines(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 1305\ngo_threads 9\n"
	if got := parseGoroutines(strings.NewReader(text)); got != 1305 {
		t.Errorf("got %d, want 1305", got)
	}
	if got := parseGoroutines(strings.NewReader("go_threads 9\n")); got != -1 {
		t.Errorf("got %d without the metric, want -1", got)
	}
}

func TestQuantile(t *testing.T) {
	xs := []time.Duration{5, 1, 4, 2, 3}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 3}, {1, 5}, {0, 1}, {0.8, 4}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if xs[0] != 5 {
		t.Error("quantile sorted its argument")
	}
	if quantile(nil, .5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

func TestRatioAndInts(t *testing.T) {
	if got := ratio(3, 4); got != "0.75×" {
		t.Errorf("ratio(3, 4) = %q", got)
	}
	for _, bad := range [][2]float64{{1, 0}, {-1, 2}, {2, -1}} {
		if got := ratio(bad[0], bad[1]); got != "n/a" {
			t.Errorf("ratio(%v) = %q, want n/a", bad, got)
		}
	}
	if got, err := parseInts("1, 16,64"); err != nil || len(got) != 3 || got[1] != 16 {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "x"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) accepted", bad)
		}
	}
}
