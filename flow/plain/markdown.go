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

// Texts keeps the Markdown documents rendered as text: the charter is
// the one document shown, to every user, and rendering it again at each
// showing was a tenth of a plain walk's CPU. One Texts serves a server's
// sessions (Options.Texts); it keeps a few documents at most.
type Texts struct {
	mu   sync.Mutex
	done map[string][]string
}

// text renders md (see mdText), kept when t is not nil. Callers do not
// change what it returns.
func (t *Texts) text(md []byte) []string {
	if t == nil {
		return mdText(md)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if out, ok := t.done[string(md)]; ok {
		return out
	}
	if t.done == nil || len(t.done) >= 8 {
		t.done = map[string][]string{}
	}
	out := mdText(md)
	t.done[string(md)] = out
	return out
}

// mdText renders Markdown as lines of clean, sanitized text.
func mdText(md []byte) []string {
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
