package plain

import (
	"regexp"
	"strings"
	"sync"

	"activated/internal/sanitize"
)

// Markdown to clean text, for a screen reader or a log: headings become
// lines of their own, list items "- ", emphasis, code marks, quote marks
// and rules go, a link keeps its text and its address.
var (
	mdHeading  = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	mdRule     = regexp.MustCompile(`^\s{0,3}([-*_])(\s*[-*_]){2,}\s*$`)
	mdBullet   = regexp.MustCompile(`^(\s*)[-*+]\s+`)
	mdQuote    = regexp.MustCompile(`^\s{0,3}>\s?`)
	mdLink     = regexp.MustCompile(`!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)`)
	mdStrong   = regexp.MustCompile(`(\*\*|__)(\S(?:.*?\S)?)(\*\*|__)`)
	mdEmphasis = regexp.MustCompile(`(^|[\s(«"'])[*_](\S(?:.*?\S)?)[*_]($|[\s).,;:!?»"'])`)
	mdCode     = regexp.MustCompile("`+([^`]*)`+")
)

// mdText renders Markdown as lines of clean, sanitized text. The charter
// is the one document shown, to every user: its lines are kept (a few
// versions at most) rather than rendered again each time, a tenth of a
// plain walk's CPU. Callers do not change what it returns.
func mdText(md []byte) []string {
	mdMu.Lock()
	defer mdMu.Unlock()
	if out, ok := mdDone[string(md)]; ok {
		return out
	}
	if len(mdDone) >= 8 { // charters changed at run time: keep the latest
		clear(mdDone)
	}
	out := renderMD(md)
	mdDone[string(md)] = out
	return out
}

var (
	mdMu   sync.Mutex
	mdDone = map[string][]string{}
)

func renderMD(md []byte) []string {
	s := strings.TrimRight(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n \t")
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.ReplaceAll(l, "\t", "    ")
		switch {
		case mdRule.MatchString(l):
			l = ""
		case mdHeading.MatchString(l):
			l = mdHeading.ReplaceAllString(l, "$1")
		default:
			l = mdQuote.ReplaceAllString(l, "")
			l = mdBullet.ReplaceAllString(l, "$1- ")
		}
		l = mdLink.ReplaceAllStringFunc(l, func(m string) string {
			p := mdLink.FindStringSubmatch(m)
			if p[1] == "" || p[1] == p[2] {
				return p[2]
			}
			return p[1] + " (" + p[2] + ")"
		})
		l = mdCode.ReplaceAllString(l, "$1")
		l = mdStrong.ReplaceAllString(l, "$2")
		l = mdEmphasis.ReplaceAllString(l, "$1$2$3")
		l = sanitize.Text(l)
		if l == "" && len(out) > 0 && out[len(out)-1] == "" {
			continue // one blank line between blocks
		}
		out = append(out, l)
	}
	return out
}
