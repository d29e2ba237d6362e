// Command bare is the yardstick of cmd/activated-load: the smallest wish v2
// + bubbletea v2 "hello" server, built on the same module versions as
// activated (it imports only modules of activated's go.mod), with wish's
// defaults. It is not part of the product.
//
//	bare -listen 127.0.0.1:0 -hostkey FILE [-metrics 127.0.0.1:0]
//
// It prints "listening ADDR" (and "metrics ADDR") on stdout once it serves.
// -metrics serves go_goroutines in the Prometheus text format, like
// activated's go_* collector, so the load tool reads both the same way.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/activeterm"
	bm "charm.land/wish/v2/bubbletea"
)

type hello struct{}

func (hello) Init() tea.Cmd { return nil }

func (h hello) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && (k.String() == "q" || k.String() == "ctrl+c") {
		return h, tea.Quit
	}
	return h, nil
}

func (hello) View() tea.View {
	v := tea.NewView("hello, world\n\npress q to quit\n")
	v.AltScreen = true
	return v
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "SSH listen address")
	hostKey := flag.String("hostkey", "", "host key file (created when missing)")
	metrics := flag.String("metrics", "", "serve go_goroutines on this address (\"\" = off)")
	flag.Parse()
	srv, err := wish.NewServer(
		wish.WithHostKeyPath(*hostKey),
		wish.WithMiddleware(
			bm.Middleware(func(ssh.Session) (tea.Model, []tea.ProgramOption) { return hello{}, nil }),
			activeterm.Middleware(),
		),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	if *metrics != "" {
		mln, err := net.Listen("tcp", *metrics)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bare:", err)
			os.Exit(1)
		}
		go http.Serve(mln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { //nolint:errcheck
			fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
		}))
		fmt.Printf("metrics %s\n", mln.Addr())
	}
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}
