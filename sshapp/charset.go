package sshapp

import (
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// localeCharset is the charset the client's locale names (LC_ALL, else
// LC_CTYPE, else LANG: the first one set), lower-cased, without its
// dashes: "utf8", "iso88591"…; "iso885915" for a "@euro" locale without
// one (fr_FR@euro); "" when none is named.
func localeCharset(environ []string) string {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		v := env[k]
		if v == "" {
			continue
		}
		v, mod, _ := strings.Cut(v, "@")
		_, cs, _ := strings.Cut(v, ".")
		if cs == "" && mod == "euro" {
			return "iso885915"
		}
		return strings.ToLower(strings.ReplaceAll(cs, "-", ""))
	}
	return ""
}

// utf8Charset tells whether the client's terminal takes UTF-8: its locale
// says so, or names no charset.
func utf8Charset(environ []string) bool {
	cs := localeCharset(environ)
	return cs == "" || cs == "utf8"
}

// latinCharset is the charset the client's locale names when it is one of
// the Latin ones a terminal of Western Europe may still use (luit, an old
// PuTTY setting): ISO-8859-1, ISO-8859-15 or Windows-1252; nil for UTF-8
// and for every other charset, which is left alone.
func latinCharset(environ []string) *charmap.Charmap {
	switch localeCharset(environ) {
	case "iso88591", "latin1":
		return charmap.ISO8859_1
	case "iso885915", "latin9":
		return charmap.ISO8859_15
	case "cp1252", "windows1252":
		return charmap.Windows1252
	}
	return nil
}

// typedInput is what the wizard reads of what the client types: on a
// terminal whose locale names a Latin charset, a byte that is not part of
// UTF-8 is decoded with that charset, so an "é" typed there reaches the
// wizard as "é" (it was dropped, or turned into U+FFFD: in a password,
// the one set would not be the one typed). UTF-8 passes as it is, so a
// terminal that sends UTF-8 whatever its LANG says is read right too.
func typedInput(r io.Reader, environ []string) io.Reader {
	if cm := latinCharset(environ); cm != nil {
		return &latinReader{r: r, cm: cm}
	}
	return r
}

type latinReader struct {
	r    io.Reader
	cm   *charmap.Charmap
	buf  [4096]byte
	pend []byte // the start of a UTF-8 sequence the last full read ended in
	out  []byte // decoded, not yet read: at most 2×(len(buf)+3)
}

func (l *latinReader) Read(b []byte) (int, error) {
	for len(l.out) == 0 {
		n, err := l.r.Read(l.buf[:])
		in := append(l.pend, l.buf[:n]...)
		l.pend = nil
		// A read that filled the buffer may have cut a UTF-8 sequence;
		// one that did not ended where the client's write ended (a key,
		// a paste), so an unfinished sequence there is not UTF-8.
		more := n == len(l.buf) && err == nil
		for len(in) > 0 {
			c, size := utf8.DecodeRune(in)
			if c == utf8.RuneError && size <= 1 {
				if more && !utf8.FullRune(in) {
					l.pend = append([]byte(nil), in...)
					break
				}
				l.out = utf8.AppendRune(l.out, l.cm.DecodeByte(in[0]))
				in = in[1:]
				continue
			}
			l.out = append(l.out, in[:size]...)
			in = in[size:]
		}
		if len(l.out) == 0 && (err != nil || n == 0) {
			return 0, err
		}
	}
	k := copy(b, l.out)
	l.out = l.out[k:]
	return k, nil
}
