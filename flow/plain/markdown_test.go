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
