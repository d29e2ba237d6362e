// Command activated serves the account-activation wizard over SSH.
//
//	activated serve -config FILE    run the server
//	activated demo                  everything local: slapd, mail to the console, SSH on 127.0.0.1:2222
//	activated check -config FILE    report each dependency: config, LDAP bind, SMTP
//	activated hostkey -config FILE  print the host key fingerprint and SSHFP records
//	activated backup -config FILE -o OUT  copy the database (and its code secret) while the service runs
//	activated migrate -config FILE -from PATH  copy a bbolt database into etcd
//	activated version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"activated/directory"
	"activated/hostkeys"
	"activated/mailer"
	"activated/storage"

	berrors "go.etcd.io/bbolt/errors"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: activated COMMAND [flags]

commands:
  serve -config FILE    run the SSH activation server
  demo [-listen ADDR]   run everything locally (slapd, mail printed here, SSH on 127.0.0.1:2222)
  check -config FILE    check the config, the LDAP bind and the SMTP server
  hostkey -config FILE  print the host key's SHA256 fingerprint and SSHFP records
  backup -config FILE -o OUT
                        write a consistent copy of the database to OUT and its code
                        secret to OUT.secret, while the service runs
  migrate -config FILE -from PATH
                        copy the bbolt database at PATH into the etcd of the config
                        (storage.backend = "etcd"); safe to run twice
  version               print the version, the commit and the Go version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Each subcommand defines only the flags it takes, so its -h lists
	// them and a flag of another one is refused, not ignored.
	var configPath, listen, out, from string
	if cmd != "demo" {
		fs.StringVar(&configPath, "config", "", "the TOML config file")
	}
	switch cmd {
	case "demo":
		fs.StringVar(&listen, "listen", "127.0.0.1:2222", "SSH listen address")
	case "backup":
		fs.StringVar(&out, "o", "", "the file to write (its code secret goes to FILE.secret)")
	case "migrate":
		fs.StringVar(&from, "from", "", "the bbolt database to copy")
	}
	var err error
	switch cmd {
	case "version", "-version", "--version":
		printVersion(stdout)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve", "check", "hostkey", "demo", "backup", "migrate":
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return 0
		} else if err != nil {
			return 2
		}
		if cmd != "demo" && configPath == "" {
			fmt.Fprintf(stderr, "activated %s: -config FILE is required\n", cmd)
			return 2
		}
		if cmd == "migrate" && from == "" {
			fmt.Fprintln(stderr, "activated migrate: -from PATH (the bbolt database) is required")
			return 2
		}
	default:
		fmt.Fprintf(stderr, "activated: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	stopOn := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if cmd == "demo" {
		stopOn = append(stopOn, syscall.SIGHUP) // its terminal closed
		// `make demo | tee log`, then Ctrl+C: tee is gone first, and a
		// write to its pipe must fail, not kill the demo before it has
		// removed its data.
		signal.Ignore(syscall.SIGPIPE)
	} else {
		// Nothing to reload (the staff keys file is re-read when it
		// changes): a HUP must not stop a service systemd would not restart.
		signal.Ignore(syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopOn...)
	defer stop()
	switch cmd {
	case "serve":
		err = serve(ctx, configPath, stderr)
	case "check":
		return check(ctx, configPath, stdout)
	case "hostkey":
		err = hostkey(configPath, stdout)
	case "backup":
		err = backup(ctx, configPath, out, stdout)
	case "demo":
		err = demo(ctx, listen, stdout, stderr)
	case "migrate":
		err = migrate(configPath, from, stdout)
	}
	if err != nil {
		if !errors.Is(err, errLogged) {
			fmt.Fprintf(stderr, "activated %s: %v\n", cmd, err)
		}
		return 1
	}
	return 0
}

// logLevels are the values of log.level.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// newLogger writes logfmt (slog's text handler) or one JSON object per
// line, per log.format, from log.level up.
func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[c.Level]}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := LoadConfig(path, os.Environ())
	if err != nil {
		return err
	}
	if cfg.Mail.Transport == "log" {
		return errors.New(`mail.transport = "log" prints every code in the service log: it is for the demo only; use "smtp" (or "maildir")`)
	}
	log := newLogger(stderr, cfg.Log)
	a, err := newApp(cfg, options{}, log, os.Stdout)
	if err == nil {
		err = a.run(ctx, nil)
	}
	if err != nil {
		// In the configured format: with log.format = "json" every line
		// of the service's log is JSON, its last words included.
		log.Error("activated serve stopped", "err", err)
		return errLogged
	}
	return nil
}

// errLogged is an error already written to the log.
var errLogged = errors.New("logged")

func hostkey(path string, stdout io.Writer) error {
	cfg, err := LoadConfig(path, os.Environ())
	if err != nil {
		return err
	}
	key, err := hostkeys.LoadOrCreate(cfg.SSH.HostKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", key.PublicKey().Type(), hostkeys.Fingerprint(key.PublicKey()))
	for _, r := range hostkeys.SSHFP(cfg.Activation.PublicHost, key.PublicKey()) {
		fmt.Fprintln(stdout, r)
	}
	return nil
}

// check reports every dependency on a line of its own, OK or the reason,
// and fails when one is not OK.
func check(ctx context.Context, path string, stdout io.Writer) int {
	failed := 0
	report := func(what string, err error) {
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%-10s FAIL  %v\n", what, err)
			return
		}
		fmt.Fprintf(stdout, "%-10s OK\n", what)
	}
	note := func(what, detail string, err error) {
		if err == nil && detail != "" {
			fmt.Fprintf(stdout, "%-10s OK    %s\n", what, detail)
			return
		}
		report(what, err)
	}
	cfg, err := LoadConfig(path, os.Environ())
	report("config", err)
	if err != nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = cfg.charter()
	report("charter", err)
	_, err = hostkeys.LoadOrCreate(cfg.SSH.HostKey)
	report("host key", err)
	detail, err := checkStorage(cfg)
	note("storage", detail, err)
	detail, err = checkLDAP(ctx, cfg)
	note("ldap", detail, err)
	mcfg, err := cfg.mailerConfig(io.Discard)
	if err == nil {
		err = mailer.Check(ctx, mcfg)
	}
	report("mail", err)
	if failed > 0 {
		return 1
	}
	return 0
}

// checkStorage opens the database; one the running service holds is fine.
func checkStorage(cfg *Config) (string, error) {
	if cfg.Storage.Backend == "etcd" {
		db, err := cfg.openStorage(0, nil)
		if err != nil {
			return "", err
		}
		return "etcd " + strings.Join(cfg.Storage.EtcdEndpoints, ","), db.Close()
	}
	db, err := storage.Open(cfg.Storage.Path, storage.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, berrors.ErrTimeout) {
		return "in use by the running service", nil
	}
	if err != nil {
		return "", err
	}
	return "", db.Close()
}

// checkLDAP exercises what serve does with the directory (see
// directory.Check) and says what it could check.
func checkLDAP(ctx context.Context, cfg *Config) (string, error) {
	dcfg, err := cfg.directoryConfig()
	if err != nil {
		return "", err
	}
	d, err := directory.New(dcfg)
	if err != nil {
		return "", err
	}
	defer d.Close()
	return d.Check(ctx)
}
