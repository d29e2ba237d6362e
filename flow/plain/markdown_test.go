package plain

import (
	"strings"
	"testing"
)

// Plain mode prints the charter as text a screen reader reads well: no
// "#", "**", "---" or "> " left (a "> " would also look like a prompt).
func TestMarkdownAsText(t *testing.T) {
	md := "# Charte informatique\n\n*IT charter (example).*\n\n## 1. Objet\n\nLes règles **strictes** d'_usage_, voir [le site](https://univ.example/charte).\n\n" +
		"- Votre compte est **personnel** : ne le prêtez jamais.\n* Second item\n  1. numbered stays\n\n---\n\n> Une citation `code`\n\nsnake_case_name stays; 2 * 3 * 4 too.\n"
	got := strings.Join(mdText([]byte(md)), "\n")
	want := "Charte informatique\n\nIT charter (example).\n\n1. Objet\n\nLes règles strictes d'usage, voir le site (https://univ.example/charte).\n\n" +
		"- Votre compte est personnel : ne le prêtez jamais.\n- Second item\n  1. numbered stays\n\nUne citation code\n\nsnake_case_name stays; 2 * 3 * 4 too."
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A server's Texts renders the charter once for all its sessions; without
// one, each showing renders it.
func TestTextsKeepsTheCharter(t *testing.T) {
	md := []byte("# Charte\n\n- **un** point\n")
	var tx Texts
	a, b := tx.text(md), tx.text(md)
	if strings.Join(a, "\n") != "Charte\n\n- un point" || &a[0] != &b[0] {
		t.Errorf("kept text %q, then %q (same: %v)", a, b, &a[0] == &b[0])
	}
	if n := (*Texts)(nil).text(md); strings.Join(n, "\n") != strings.Join(a, "\n") || &n[0] == &a[0] {
		t.Errorf("without Texts: %q", n)
	}
}
