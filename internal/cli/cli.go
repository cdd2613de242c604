// Package cli is the wail command line: the server (serve, or one role of
// it: proxy, resolve) and its checks (doctor), table administration,
// single-key reads and writes, the event tail and consumers, consumer
// groups, webhook sinks, the dead-letter queue, schemas, bearer tokens,
// the embedded log's repair (log), the benchmarks (bench) and the
// self-contained demo. Every client command talks to a wail server over
// the Connect protocol at --addr (HTTP/1.1; HTTP/2 for the batching
// producer that bench may drive). A command offers only the
// flags it uses: the client flags (--addr, --timeout) are not on serve,
// proxy, resolve or demo, and doctor takes --addr (a server to ask first)
// with a --timeout of its own (each check's). docs/reference.md lists
// every command, flag and configuration key; TestReference generates it
// from the commands.
//
// Exit codes: 0 on success, 1 on errors (server errors print as
// "error: <code>: <message>", a missing key of get as well), 2 on usage
// errors (refused before anything is sent: an empty name, one that is not
// UTF-8, an empty --config, --addr or --cursor, a duration that is not
// whole milliseconds where the server keeps milliseconds), 74 when serve, proxy or resolve stopped after a storage failure
// (server.ExitFailStop: restart it, after freeing space if the disk is full),
// 130 (ExitInterrupted) when SIGINT or SIGTERM stopped a command before it
// finished (a command that runs until then, serve or tail, exits 0).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// Main runs the wail command line with args (without the program name) and
// returns the process exit code. SIGINT and SIGTERM cancel the command's
// context (a second signal kills the process).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default handlers: a second Ctrl-C kills
	}()
	return run(ctx, env{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

// env is what a command may touch outside its arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// globals holds the global flags and the environment of one run.
type globals struct {
	env
	conn      client.Options // --addr and the connection flags
	tokenFile string
	timeout   time.Duration
}

// run executes one command line and maps its error to an exit code.
func run(ctx context.Context, e env, args []string) int {
	g := &globals{env: e}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var ee exitError
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && !errors.As(err, &ee) {
		fmt.Fprintln(e.stderr, "error: interrupted before the server answered: it may still carry the request out; check before running it again")
		return ExitInterrupted
	}
	return reportError(e.stderr, cmd, err)
}

// ExitInterrupted is the exit code of a command that SIGINT or SIGTERM
// stopped before it finished (128 + SIGINT, as shells report it).
const ExitInterrupted = 130

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "wail",
		Short: "wail: change data capture through a write-ahead intent log",
		Long: "wail is a CDC system: a proxy logs an intent, writes the store, and a resolver\n" +
			"reads the state back and publishes final change events.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err: err} })
	root.PersistentPreRunE = checkNonEmpty
	root.AddCommand(newServeCmd(g), newTableCmd(g), newPutCmd(g), newDeleteCmd(g), newGetCmd(g),
		newTailCmd(g), newDemoCmd(g))
	root.AddCommand(newBenchCmd(g), newLogCmd(g), newDLQCmd(g), newSchemaCmd(g), newTokenCmd(g), newGroupCmd(g), newConsumeCmd(g), newSinkCmd(g))
	root.AddCommand(newDoctorCmd(g),
		newRoleCmd(g, "proxy", "Run the producer proxy only (no resolver)", roleProxy, func(c *config.Config) { c.Resolver.Enabled = false }),
		newRoleCmd(g, "resolve", "Run the resolver only (no write API)", roleResolve, func(c *config.Config) { c.Proxy.Enabled = false }))
	return root
}

// defaultTimeout bounds each request of a client command.
const defaultTimeout = 10 * time.Second

// addrFlag adds --addr, the server a client command talks to, and the
// connection flags (--ca, --cert, --key, --token-file).
func (g *globals) addrFlag(fl *pflag.FlagSet) {
	env := client.Options{}.FromEnv(g.getenv)
	if env.Addr == "" {
		env.Addr = client.DefaultAddr
	}
	fl.StringVar(&g.conn.Addr, "addr", env.Addr, "server address (env "+client.EnvAddr+")")
	fl.StringVar(&g.conn.CAFile, "ca", "", "PEM file of the CA that signed the server's certificate; implies https (env "+client.EnvCA+")")
	fl.StringVar(&g.conn.CertFile, "cert", "", "PEM file of the client certificate, for mutual TLS (env "+client.EnvCert+")")
	fl.StringVar(&g.conn.KeyFile, "key", "", "PEM file of the client certificate's key (env "+client.EnvKey+")")
	fl.StringVar(&g.tokenFile, "token-file", "", "file holding the bearer token, read again when it changes (env "+client.EnvTokenFile+" names one; "+client.EnvToken+" holds the token itself)")
	// Empty, they meant "not given": WAIL_ADDR, WAIL_CA, ... or no TLS was
	// taken, so a script's --ca "$CA" with CA unset went on without the TLS
	// it asked for.
	refuseEmpty(fl, "addr", "ca", "cert", "key", "token-file")
}

// clientFlags adds --addr and --timeout.
func (g *globals) clientFlags(fl *pflag.FlagSet) {
	g.addrFlag(fl)
	fl.DurationVar(&g.timeout, "timeout", defaultTimeout, "timeout of each request (0: none)")
}

// usageError is a wrong command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// exitError ends the command with a code and an optional message on stderr.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// codeError is an error with a Connect code name, like a failed mutation in
// a batch: it prints the way a connect error does.
type codeError struct{ code, msg string }

func (e codeError) Error() string { return e.code + ": " + e.msg }

// exactArgs is cobra.ExactArgs with a usage error naming the arguments;
// an empty argument is refused too (rangeArgs).
func exactArgs(names ...string) cobra.PositionalArgs {
	return rangeArgs(len(names), names...)
}

// bytesOrPath are the arguments that may be any bytes: keys and values,
// files (a path on Linux need not be UTF-8), versions or files. The others
// are sent as protobuf strings, which must be UTF-8: one that is not
// failed as "internal: marshal message: string field contains invalid
// UTF-8".
var bytesOrPath = map[string]bool{"KEY": true, "VALUE": true, "FILE.proto": true, "DATA_DIR": true, "OLD": true, "NEW": true}

// rangeArgs takes min to len(names) arguments, named names (the optional
// ones in brackets in the usage error). An empty argument is refused as a
// usage error, but a VALUE (bytes, which may be empty): no table, group,
// sink, subject, version, file or token is named "", and the server's
// refusal of one did not say which argument it was.
func rangeArgs(min int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > len(names) {
			shown := slices.Clone(names)
			for i := min; i < len(shown); i++ {
				shown[i] = "[" + shown[i] + "]"
			}
			count := fmt.Sprint(len(names))
			if min < len(names) {
				count = fmt.Sprintf("%d to %d", min, len(names))
			}
			return usageErrorf("%s takes %s argument(s) (%s), got %d", cmd.CommandPath(), count, strings.Join(shown, " "), len(args))
		}
		return checkNames(cmd, names, args)
	}
}

// checkNames refuses an empty argument (but a VALUE) and one that is not
// UTF-8 (but bytesOrPath), named by names.
func checkNames(cmd *cobra.Command, names, args []string) error {
	for i, a := range args {
		switch {
		case a == "" && names[i] != "VALUE":
			return usageErrorf("%s: %s is empty", cmd.CommandPath(), names[i])
		case !utf8.ValidString(a) && !bytesOrPath[names[i]]:
			return usageErrorf("%s: %s %q is not UTF-8 text", cmd.CommandPath(), names[i], a)
		}
	}
	return nil
}

// nonEmpty is the annotation of a flag whose empty value is refused.
const nonEmpty = "wail_non_empty"

// refuseEmpty marks the flags of names on fl as refusing an empty value,
// where empty would mean "not given" to what reads them: a script's
// --cursor "$C" with C empty (no cursor saved) started tail at the latest
// events, skipping what came meanwhile. The root command checks them
// (checkNonEmpty) before any command runs.
func refuseEmpty(fl *pflag.FlagSet, names ...string) {
	for _, name := range names {
		if err := fl.SetAnnotation(name, nonEmpty, []string{"true"}); err != nil {
			panic(err) // a flag not defined yet: a bug of this package
		}
	}
}

// checkNonEmpty refuses a flag marked by refuseEmpty that was given empty.
func checkNonEmpty(cmd *cobra.Command, _ []string) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if _, marked := f.Annotations[nonEmpty]; marked && err == nil && f.Value.String() == "" {
			err = usageErrorf("%s: --%s is empty: give a value, or leave the flag out", cmd.CommandPath(), f.Name)
		}
	})
	return err
}

// groupRunE is the RunE of a command that only holds subcommands.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("%s needs a subcommand", cmd.CommandPath())
	}
	return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
}

// serverMessageLimit is how much of a server's error message reportError
// prints.
const serverMessageLimit = 1000

// reportError prints err on w and returns the exit code.
func reportError(w io.Writer, cmd *cobra.Command, err error) int {
	if err == nil {
		return 0
	}
	var (
		ue usageError
		ee exitError
		ce *connect.Error
	)
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(w, "error:", ee.msg)
		}
		return ee.code
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintln(w, "error:", err)
		if cmd != nil {
			fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return 2
	case errors.As(err, &ce) && ce.Code() == connect.CodeInternal && strings.Contains(ce.Message(), "invalid UTF-8"):
		// This client's encoding of the request (a flag's value; the
		// arguments are checked first, rangeArgs): nothing was sent.
		fmt.Fprintf(w, "error: %s: an argument or flag is not UTF-8 text (names, groups, cursors and the like are)\n", oneLine(ce.Message(), serverMessageLimit))
		if cmd != nil {
			fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return 2
	case errors.As(err, &ce):
		// What answered may be anything: one line of printable characters,
		// bounded, so that it cannot forge lines or drive the terminal.
		fmt.Fprintf(w, "error: %s: %s\n", ce.Code(), oneLine(ce.Message(), serverMessageLimit))
		if strings.HasPrefix(ce.Message(), "invalid content-type:") { // an answer, but no Connect one: a web page, another service
			fmt.Fprintln(w, "(the answer at --addr is not a wail server's: is --addr / WAIL_ADDR the address of one?)")
			return 1
		}
		switch ce.Code() {
		case connect.CodeUnavailable:
			if !connect.IsWireError(ce) { // no server's answer (a server's says what is wrong itself)
				fmt.Fprintln(w, "(is a wail server running at --addr / WAIL_ADDR? with TLS, give its CA: --ca / WAIL_CA)")
			}
		case connect.CodeDeadlineExceeded:
			if f := flagOf(cmd, "timeout"); f != nil && errors.Is(err, context.DeadlineExceeded) { // this client's bound, not the server's
				fmt.Fprintf(w, "(no answer within --timeout %s: is the server at --addr overloaded or stuck? a slow request needs a longer --timeout)\n", f.Value)
			}
		case connect.CodeUnauthenticated:
			fmt.Fprintln(w, "(give a token of `wail token create`: WAIL_TOKEN or --token-file; or a client certificate: --cert, --key)")
		case connect.CodeInternal:
			if ce.Message() == "400 Bad Request" { // a bare status, no Connect error: not a wail answer
				fmt.Fprintln(w, "(a TLS server answers so to plain http: give its CA, --ca / WAIL_CA, or an https:// address)")
			}
		}
		return 1
	}
	fmt.Fprintln(w, "error:", err)
	return 1
}

// flagOf is cmd's flag name, or nil (no such flag, or no command).
func flagOf(cmd *cobra.Command, name string) *pflag.Flag {
	if cmd == nil {
		return nil
	}
	return cmd.Flag(name)
}
