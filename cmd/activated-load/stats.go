package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux this tool runs on.
const clockTick = 100

// procSample is what /proc says about a server at one moment.
type procSample struct {
	CPU     time.Duration // utime + stime
	RSS     int64         // bytes
	Threads int
	FDs     int
}

// parseStatCPU reads utime + stime from the text of /proc/PID/stat.
// The command name, in parentheses, may hold spaces: fields count from
// the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// parseStatus reads VmRSS and Threads from the text of /proc/PID/status.
func parseStatus(r io.Reader) (rss int64, threads int, err error) {
	sc := bufio.NewScanner(r)
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch {
		case k == "VmRSS" && len(f) == 2 && f[1] == "kB":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("status: VmRSS %q", v)
			}
			rss, seen = n*1024, seen+1
		case k == "Threads" && len(f) == 1:
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return 0, 0, fmt.Errorf("status: Threads %q", v)
			}
			threads, seen = n, seen+1
		}
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("status: VmRSS or Threads missing")
	}
	return rss, threads, sc.Err()
}

// parseGoroutines finds go_goroutines in a Prometheus text exposition; -1
// when it is not there.
func parseGoroutines(r io.Reader) int {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "go_goroutines" {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				return int(v)
			}
		}
	}
	return -1
}

// quantile is the q-quantile (0..1) of xs by the nearest-rank rule; 0 for
// none. xs is not changed.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ratio formats a/b as "1.23×"; "n/a" when b is zero or either is
// negative (a figure the server does not expose).
func ratio(a, b float64) string {
	if b == 0 || a < 0 || b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// row is one line of the report: a figure, activated's value, the bare
// server's, their ratio and the target.
type row struct {
	Figure, Activated, Bare, Ratio, Target string
}

// table writes rows as a Markdown table, the form the README keeps.
func table(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| figure | activated | bare | ratio | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.Figure, r.Activated, r.Bare, r.Ratio, r.Target)
	}
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// parseInts reads a comma-separated list of positive integers ("1,16,64").
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
