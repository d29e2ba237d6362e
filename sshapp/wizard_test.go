package sshapp

import "testing"

func TestUTF8Charset(t *testing.T) {
	for _, c := range []struct {
		env  []string
		utf8 bool
	}{
		{nil, true},
		{[]string{"LANG=fr_FR.UTF-8"}, true},
		{[]string{"LANG=en_US.utf8"}, true},
		{[]string{"LANG=fr_FR"}, true}, // no charset named
		{[]string{"LANG=fr_FR.ISO-8859-1"}, false},
		{[]string{"LANG=fr_FR.ISO-8859-15@euro"}, false},
		{[]string{"LANG=fr_FR@euro"}, false}, // ISO-8859-15
		{[]string{"LANG=fr_FR.UTF-8", "LC_ALL=fr_FR.ISO-8859-1"}, false},
		{[]string{"LANG=fr_FR.ISO-8859-1", "LC_CTYPE=fr_FR.UTF-8"}, true},
	} {
		if got := utf8Charset(c.env); got != c.utf8 {
			t.Errorf("%q: utf8 %t, want %t", c.env, got, c.utf8)
		}
	}
}
