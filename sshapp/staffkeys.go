package sshapp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

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

// staffPoll is how often the file is checked while staff sessions are
// open, so that a removed key (or a file made unsafe) ends them.
const staffPoll = time.Second

// staffKeys is the staff authorized_keys file, checked again at every
// lookup and, while staff sessions are open, every staffPoll: any change to
// the file or its directories (contents, mode, owner, another file — the
// whole stat) makes it be read again. The comment of each line is the
// staff member's name.
type staffKeys struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	seen     string            // the state of the file and its directories as last read; "" when unusable
	keys     map[string]string // wire form of the key → name
	watchers map[*keyWatch]struct{}
	polling  bool
}

// keyWatch is an open staff session, ended when its key stops being
// listed.
type keyWatch struct {
	key   string
	ended func()
}

func newStaffKeys(path string, log *slog.Logger) *staffKeys {
	return &staffKeys{path: path, log: log, watchers: map[*keyWatch]struct{}{}}
}

// watch calls ended (once, on its own goroutine) when key stops being
// listed; stop ends the watch.
func (k *staffKeys) watch(key gossh.PublicKey, ended func()) (stop func()) {
	w := &keyWatch{key: string(key.Marshal()), ended: ended}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.watchers[w] = struct{}{}
	if !k.polling {
		k.polling = true
		go k.poll()
	}
	return func() {
		k.mu.Lock()
		delete(k.watchers, w)
		k.mu.Unlock()
	}
}

// poll checks the file every staffPoll while a session is watched.
func (k *staffKeys) poll() {
	t := time.NewTicker(staffPoll)
	defer t.Stop()
	for range t.C {
		k.mu.Lock()
		if len(k.watchers) == 0 {
			k.polling = false
			k.mu.Unlock()
			return
		}
		k.refresh()
		k.mu.Unlock()
	}
}

// endRemoved ends the watched sessions whose key is no longer listed
// (k.mu held).
func (k *staffKeys) endRemoved() {
	for w := range k.watchers {
		if _, ok := k.keys[w.key]; !ok {
			delete(k.watchers, w)
			go w.ended()
		}
	}
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

// refresh re-reads the file when it or a directory above it changed since
// the last read, and ends the sessions of keys no longer listed. On any
// error the set is empty: no staff access rather than stale access.
func (k *staffKeys) refresh() {
	state, err := safePath(k.path)
	if err == nil && state == k.seen {
		return
	}
	var keys map[string]string
	if err == nil {
		keys, err = k.read()
	}
	switch {
	case err != nil && (k.seen != "" || k.keys == nil):
		k.log.Warn("staff keys unusable: no staff access", "path", k.path, "err", err)
	case err == nil:
		k.log.Info("staff keys loaded", "path", k.path, "keys", len(keys))
	}
	if err != nil {
		keys, state = map[string]string{}, ""
	}
	k.keys, k.seen = keys, state
	k.endRemoved()
}

// safePath checks path like OpenSSH's StrictModes: the file and every
// directory above it must be owned by root or by this service's user, and
// writable by no one else — whoever can write the file, or replace it, is
// staff. A directory with the sticky bit owned by root (/tmp) is fine:
// others cannot rename what is in it. It returns the full stat of each,
// to tell any change (a chmod or chown included) from none.
func safePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	var state strings.Builder
	uid := uint32(os.Getuid())
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", fmt.Errorf("%s: no owner information", p)
		}
		mode := fi.Mode()
		switch {
		case st.Uid != 0 && st.Uid != uid:
			return "", fmt.Errorf("%s is owned by uid %d: it must belong to root or to this service's user (uid %d)", p, st.Uid, uid)
		case p == real && !mode.IsRegular():
			return "", fmt.Errorf("%s is not a regular file", p)
		case mode.Perm()&0o022 != 0 && !(mode.IsDir() && mode&os.ModeSticky != 0 && st.Uid == 0):
			return "", fmt.Errorf("%s has mode %04o: the group or others can write it; run: chmod go-w %s", p, mode.Perm(), p)
		}
		fmt.Fprintf(&state, "%s %d %d %o %d %d %d %d.%d %d.%d\n", p, st.Dev, st.Ino, st.Mode, st.Uid, st.Gid, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		if p == filepath.Dir(p) {
			return state.String(), nil
		}
	}
}

func (k *staffKeys) read() (map[string]string, error) {
	f, err := os.Open(k.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
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
