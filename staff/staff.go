// Package staff owns the commands IT staff run over SSH (`ssh staff@host
// COMMAND ARGS`): invite, import, status, list, resend, reset, revoke, audit,
// stats, charter and help. Each command drives flow.Service, prints a table (or JSON with
// --json) and returns an exit status; every value that came from users or
// the directory is sanitized before it reaches the staff terminal, and no
// command ever prints a code. Authentication is the SSH server's business:
// Run receives the identity it established.
package staff

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"activated/flow"
	"activated/internal/sanitize"
)

// Identity is the staff member the SSH server authenticated.
type Identity struct {
	Name        string // the comment of the key in staff_authorized_keys
	Fingerprint string // SHA256:… of the key used
	Remote      string // client address
}

// Client is how flow audits this staff member's actions.
func (id Identity) Client() flow.Client {
	return flow.Client{Actor: "staff:" + sanitize.Text(id.Name) + " " + sanitize.Text(id.Fingerprint), Remote: id.Remote}
}

// Exit statuses of Run.
const (
	ExitOK     = 0 // done; every item succeeded
	ExitFailed = 1 // an error, or some items failed (the report says which)
	ExitUsage  = 2 // bad command line
)

// env is what a command runs with.
type env struct {
	ctx    context.Context
	svc    *flow.Service
	who    Identity
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	json   bool
}

type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	help    string // details and examples
	flags   func(fs *flag.FlagSet) func(e *env, args []string) error
}

// commands is filled in init to break the cycle with help.
var commands []command

func init() {
	commands = []command{
		inviteCommand, importCommand, statusCommand, listCommand,
		resendCommand, resetCommand, revokeCommand, auditCommand, statsCommand, charterCommand,
		{name: "help", args: "[COMMAND]", summary: "list the commands, or describe one",
			flags: func(fs *flag.FlagSet) func(*env, []string) error { return runHelp }},
	}
}

func lookupCommand(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// partialError says some items of a batch failed; the report on stdout
// has the details, the message is the one-line summary.
type partialError struct{ msg string }

func (e partialError) Error() string { return e.msg }

// Run executes one staff command: args[0] is the command, the rest its flags
// and arguments. It returns the exit status: 0 on success, 1 when the
// command failed or some of its items did (with a one-line reason on
// stderr), 2 on a bad command line. Every action is audited through flow
// with who's name and key fingerprint.
func Run(ctx context.Context, svc *flow.Service, who Identity, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	asJSON := wantsJSON(args)
	for len(args) > 0 && isJSONFlag(args[0]) { // `--json status x` too
		args = args[1:]
	}
	fail := func(code int, msg string) int {
		if asJSON {
			_ = writeJSONLine(stdout, struct {
				Error string `json:"error"`
			}{msg})
		} else {
			fmt.Fprintln(stderr, msg)
		}
		return code
	}
	if len(args) == 0 {
		return fail(ExitUsage, "staff: no command (try: help)")
	}
	cmd, ok := lookupCommand(args[0])
	if !ok {
		return fail(ExitUsage, fmt.Sprintf("staff: unknown command %q (try: help)", sanitize.Text(args[0])))
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	e := &env{ctx: ctx, svc: svc, who: who, stdin: stdin, stdout: stdout, stderr: stderr, json: asJSON}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&e.json, "json", asJSON, "print JSON instead of a table")
	run := cmd.flags(fs)
	rest, err := parse(fs, args[1:])
	if err == nil {
		err = run(e, rest)
	}
	var ue usageError
	var pe partialError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		writeUsage(stdout, cmd, fs)
		return ExitOK
	case errors.As(err, &ue) || isFlagError(err):
		return fail(ExitUsage, fmt.Sprintf("%s: %s (see: %s --help)", cmd.name, oneLine(err), cmd.name))
	case asJSON && errors.As(err, &pe):
		return ExitFailed // the JSON report carries the error
	default:
		return fail(ExitFailed, fmt.Sprintf("%s: %s", cmd.name, oneLine(err)))
	}
}

// wantsJSON tells whether the arguments ask for --json (before any "--"),
// known before they are parsed: a bad command line is then reported as
// JSON too.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isJSONFlag(a) {
			return true
		}
	}
	return false
}

func isJSONFlag(a string) bool {
	switch a {
	case "--json", "-json", "--json=true", "-json=true":
		return true
	}
	return false
}

// flagError marks an error of the flag package.
type flagError struct{ error }

func isFlagError(err error) bool { var fe flagError; return errors.As(err, &fe) }

// parse parses flags anywhere among the arguments (`invite a b --json`);
// everything after "--" is an argument.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flagError{err}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneLine is err's message, sanitized, on one line.
func oneLine(err error) string { return sanitize.Text(strings.ReplaceAll(err.Error(), "\n", " ")) }

func writeUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s.\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(w, "  --%s%s\n\t%s\n", f.Name, arg, usage)
	})
}

func runHelp(e *env, args []string) error {
	if len(args) > 1 {
		return usagef("help takes at most one command")
	}
	if len(args) == 1 {
		c, ok := lookupCommand(args[0])
		if !ok {
			return usagef("unknown command %q", sanitize.Text(args[0]))
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.Bool("json", false, "print JSON instead of a table")
		c.flags(fs)
		writeUsage(e.stdout, c, fs)
		return nil
	}
	w := e.stdout
	fmt.Fprintln(w, "usage: ssh staff@HOST COMMAND [ARGS] [--json]")
	fmt.Fprintln(w, "       ssh -t staff@HOST            (the dashboard)")
	fmt.Fprintln(w, "\ncommands:")
	tw := newTable(w)
	for _, c := range commands {
		tw.row("  "+c.name+" "+c.args, c.summary)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nEach command takes --help and --json. Exit status: 0 done, 1 failed")
	fmt.Fprintln(w, "(or some items failed: see the report), 2 bad command line.")
	return nil
}
