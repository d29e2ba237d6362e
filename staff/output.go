package staff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"activated/flow"
	"activated/internal/sanitize"
)

// table writes aligned columns; every cell is sanitized, an empty cell
// shows as "-".
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		c = sanitize.Text(c)
		if c == "" {
			c = "-"
		}
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = w.Write(append(terminalSafe(b), '\n'))
	return err
}

// writeJSONLine writes v as one line of a JSON lines stream.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = w.Write(append(terminalSafe(b), '\n'))
	return err
}

// terminalSafe drops from encoded JSON the runes encoding/json leaves raw
// but a terminal acts on: DEL, C1 controls (8-bit CSI, OSC…) and bidi
// controls. C0 controls (ESC, BEL…) are already escaped as \u00XX. JSON's
// own syntax is ASCII, so only string contents change.
func terminalSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, unsafeRune) {
		return b
	}
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if !unsafeRune(r) {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// unsafeRune is what sanitize drops, but C0 controls, which JSON escapes.
func unsafeRune(r rune) bool { return r >= 0x7f && sanitize.Drop(r) }

// TimeLayout is how tables write a time, in the institution's zone.
const TimeLayout = "2006-01-02 15:04"

// When writes t in loc for a table; the zero time is "".
func When(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(TimeLayout)
}

func (e *env) when(t time.Time) string { return When(t, e.svc.Config().Location) }

// Name is the name to show for a dossier.
func Name(d flow.Dossier) string {
	if d.DisplayName != "" {
		return d.DisplayName
	}
	return strings.TrimSpace(d.GivenName + " " + d.Surname)
}

// StepText is "4 of 7 directory", or "done".
func StepText(s flow.Step) string {
	if s >= flow.StepDone {
		return "done"
	}
	return fmt.Sprintf("%d of %d %s", int(s), flow.TotalSteps, s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// counts is a tally of outcomes, in order of first appearance.
type counts struct {
	order []string
	n     map[string]int
}

func (c *counts) add(k string) {
	if c.n == nil {
		c.n = map[string]int{}
	}
	if c.n[k] == 0 {
		c.order = append(c.order, k)
	}
	c.n[k]++
}

func (c *counts) String() string {
	parts := make([]string, len(c.order))
	for i, k := range c.order {
		parts[i] = fmt.Sprintf("%d %s", c.n[k], k)
	}
	return strings.Join(parts, ", ")
}

// plural is "1 login", "0 logins", "2 logins".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
