package sshapp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"activated/internal/sanitize"
)

// maxKeysFile bounds what staffKeys reads: a few hundred staff keys fit in
// well under 1 MiB.
const maxKeysFile = 1 << 20

// harmlessOptions are authorized_keys options that take nothing away here
// (this server never grants a PTY-less shell, forwarding or rc files). A
// line with any other option (from=, command=, expiry-time=…) is skipped:
// ignoring a restriction the operator wrote would widen access.
var harmlessOptions = map[string]bool{
	"restrict": true, "no-pty": true, "no-port-forwarding": true,
	"no-agent-forwarding": true, "no-x11-forwarding": true, "no-user-rc": true,
}

// staffKeys is the staff authorized_keys file, re-read when it changes
// (another file, size or modification time). The comment of each line is
// the staff member's name.
type staffKeys struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex
	seen os.FileInfo       // the file as last read; nil when missing
	keys map[string]string // wire form of the key → name
}

func newStaffKeys(path string, log *slog.Logger) *staffKeys {
	return &staffKeys{path: path, log: log}
}

// lookup returns the name of a listed key.
func (k *staffKeys) lookup(key gossh.PublicKey) (string, bool) {
	if k.path == "" || key == nil {
		return "", false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refresh()
	name, ok := k.keys[string(key.Marshal())]
	return name, ok
}

// refresh re-reads the file when it changed since the last read. On any
// error the set is empty: no staff access rather than stale access.
func (k *staffKeys) refresh() {
	st, err := os.Stat(k.path)
	if err == nil && k.seen != nil && os.SameFile(st, k.seen) && st.ModTime().Equal(k.seen.ModTime()) && st.Size() == k.seen.Size() {
		return
	}
	if err != nil {
		if k.seen != nil || k.keys == nil {
			k.log.Warn("staff keys unreadable: no staff access", "path", k.path, "err", err)
			k.keys = map[string]string{}
		}
		k.seen = nil
		return
	}
	keys, err := k.read()
	if err != nil {
		k.log.Warn("staff keys unreadable: no staff access", "path", k.path, "err", err)
		keys = map[string]string{}
	} else {
		k.log.Info("staff keys loaded", "path", k.path, "keys", len(keys))
	}
	k.keys, k.seen = keys, st
}

func (k *staffKeys) read() (map[string]string, error) {
	f, err := os.Open(k.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Whoever can write this file is staff: it must be writable by its
	// owner only (readable by others is fine: public keys).
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: the group or others can write it; run: chmod go-w %s", k.path, perm, k.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.path, err)
	}
	if len(data) > maxKeysFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", k.path, maxKeysFile)
	}
	keys := map[string]string{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		pk, comment, opts, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			k.log.Warn("staff keys: line skipped", "path", k.path, "line", i+1, "err", err)
			continue
		}
		if bad := unsupportedOption(opts); bad != "" {
			k.log.Warn("staff keys: line skipped, option not supported", "path", k.path, "line", i+1, "option", sanitize.Text(bad))
			continue
		}
		name := sanitize.Text(strings.TrimSpace(comment))
		if name == "" {
			name = gossh.FingerprintSHA256(pk)
		}
		keys[string(pk.Marshal())] = name
	}
	return keys, nil
}

func unsupportedOption(opts []string) string {
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if !harmlessOptions[strings.ToLower(name)] {
			return name
		}
	}
	return ""
}
