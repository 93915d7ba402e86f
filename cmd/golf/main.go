// Command golf trains, evaluates and packs compact language models for the
// Parameter Golf challenge. Run `golf help` for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/paramgolf/golf/internal/report"
)

// command is one golf subcommand. Its name may have several words
// ("data build"); run gets the arguments after the name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries the process's streams so commands can be tested in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

var commands = map[string]*command{}

// register adds a command; each command's file calls it from init.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("golf: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks errors that come from bad flags or arguments (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// runCLI runs one golf invocation and returns its exit status.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	cmd, rest := lookup(args)
	if cmd == nil {
		if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			usage(env.stdout)
			return 0
		}
		fmt.Fprintf(env.stderr, "golf: unknown command %q\n\n", strings.Join(args, " "))
		usage(env.stderr)
		return 2
	}
	if err := cmd.run(ctx, env, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "golf %s: %v\n", cmd.name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// lookup finds the command with the longest name that prefixes args.
func lookup(args []string) (*command, []string) {
	for n := min(len(args), 3); n > 0; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			return c, args[n:]
		}
	}
	return nil, args
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "golf: compact language models for the Parameter Golf challenge")
	fmt.Fprintln(w, "\nusage: golf <command> [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `golf <command> -h` for a command's flags.")
}

// newFlags returns a flag set for a command that reports errors instead of
// exiting, and prints its usage to the command's stderr.
func newFlags(env *cliEnv, name, argsSyntax string) *flag.FlagSet {
	fs := flag.NewFlagSet("golf "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: golf %s [flags] %s\n", name, argsSyntax)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and wraps a parse failure as a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// outputFlags are the output flags every command has, with one meaning:
//
//	--json           print the result as JSON to stdout instead of the table
//	                 (or text); log lines, if any, go to stderr
//	--json-out FILE  also write the result as JSON to FILE (atomically)
//	--quiet          no progress lines on stderr
type outputFlags struct {
	json    bool
	jsonOut string
	quiet   bool
}

// addOutputFlags binds the shared output flags to fs.
func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	o := &outputFlags{}
	fs.BoolVar(&o.json, "json", false, "print the result as JSON to stdout instead of the table")
	fs.StringVar(&o.jsonOut, "json-out", "", "also write the result as JSON to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	return o
}

// progress is where progress lines go: stderr, or nowhere with --quiet.
func (o *outputFlags) progress(env *cliEnv) io.Writer {
	if o.quiet {
		return nil
	}
	return env.stderr
}

// save writes v to --json-out's file, when given.
func (o *outputFlags) save(v any) error {
	if o.jsonOut == "" {
		return nil
	}
	return report.SaveJSON(o.jsonOut, v)
}

// emit writes the result v: to --json-out's file when given, then as JSON
// on stdout with --json, else through human (the table or text).
func (o *outputFlags) emit(env *cliEnv, v any, human func(w io.Writer) error) error {
	if o.jsonOut != "" {
		if err := report.SaveJSON(o.jsonOut, v); err != nil {
			return err
		}
	}
	if o.json {
		return report.WriteJSON(env.stdout, v)
	}
	return human(env.stdout)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
