//go:build pprof

package main

// Built with -tags pprof (as `activated-load -pprof` builds it), activated
// serves net/http/pprof on the loopback address in PPROF_LISTEN. Builds
// without the tag, production's, hold none of this.

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("PPROF_LISTEN")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "PPROF_LISTEN=%q: a loopback host:port is required\n", addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		os.Exit(2)
	}
	go http.Serve(ln, nil) //nolint:errcheck // debug only
}
