package main

// systemd's notify protocol without a library: one datagram per state on
// the unix socket named by NOTIFY_SOCKET ("@name" is an abstract socket).

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier sends states to systemd; its zero value (no NOTIFY_SOCKET)
// sends nothing.
type notifier struct {
	addr     string
	watchdog time.Duration // WATCHDOG_USEC, 0 when unset
}

// newNotifier reads NOTIFY_SOCKET and WATCHDOG_USEC (and WATCHDOG_PID,
// which must be this process when set) from getenv.
func newNotifier(getenv func(string) string, pid int) notifier {
	n := notifier{addr: getenv("NOTIFY_SOCKET")}
	if strings.HasPrefix(n.addr, "@") {
		n.addr = "\x00" + n.addr[1:]
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return n
	}
	if us, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// notify sends state ("READY=1", "STOPPING=1", "WATCHDOG=1").
func (n notifier) notify(state string) error {
	if n.addr == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// keepAlive sends WATCHDOG=1 at half the watchdog period until ctx ends;
// alive must report true for each ping (a stuck service stops pinging and
// systemd restarts it).
func (n notifier) keepAlive(ctx context.Context, alive func() bool) {
	if n.addr == "" || n.watchdog <= 0 {
		return
	}
	every(ctx, n.watchdog/2, func() {
		if alive() {
			_ = n.notify("WATCHDOG=1")
		}
	})
}

// systemdListener returns the listening socket systemd passed (socket
// activation: LISTEN_PID is this process and LISTEN_FDS is 1, the socket
// at fd), or nil when there is none. systemd then binds port 22, so the
// service itself needs no capability.
func systemdListener(getenv func(string) string, pid int, fd uintptr) (net.Listener, error) {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) || getenv("LISTEN_FDS") == "" {
		return nil, nil
	}
	if n := getenv("LISTEN_FDS"); n != "1" {
		return nil, fmt.Errorf("systemd passed %s sockets; activated.socket must listen on one", n)
	}
	f := os.NewFile(fd, "systemd-socket")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("the socket systemd passed: %w", err)
	}
	return ln, nil
}
