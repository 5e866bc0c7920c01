package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

// globals are what every command shares: the streams, the server and token
// flags, and the HTTP client of this run.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	server         string
	token          string
	color          string
	hc             *http.Client
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "herald is an event bus: a durable event log with retries, dead letters and replay",
		Long: `herald is an event bus for plugins: publish events, subscribe to them,
retry what fails, dead-letter what cannot succeed, and replay the log.

Start a server with no configuration (SQLite under ./herald-data):

  herald serve

then, in another terminal:

  herald publish recording.ended --data '{"recording_id":"r1"}'
  herald tail 'recording.>'

Every command but serve talks to the server given by --server (or
HERALD_URL), with the token given by --token (or HERALD_TOKEN) when the
server asks for one.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		switch g.color {
		case "auto", "always", "never":
			return nil
		}
		return usageError{fmt.Errorf("--color must be auto, always or never, not %q", g.color)}
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("HERALD_URL", "http://127.0.0.1:7480"), "herald server URL (env HERALD_URL)")
	// The token's default is read when a command runs, so that --help
	// never prints it.
	pf.StringVar(&g.token, "token", "", "API token (env HERALD_TOKEN)")
	pf.StringVar(&g.color, "color", "auto", "colour output: auto (on a terminal, unless NO_COLOR is set), always or never")
	for _, c := range []func(*globals) *cobra.Command{
		newServeCmd,
		newPublishCmd,
		newTailCmd,
		newEventsCmd,
		newEventCmd,
		newTraceCmd,
		newSubsCmd,
		newDLQCmd,
		newForgetCmd,
		newSchemasCmd,
		newTokensCmd,
		newExportCmd,
		newImportCmd,
		newStatusCmd,
		newHealthCmd,
		newVersionCmd,
	} {
		root.AddCommand(c(g))
	}
	root.Version = buildVersion(debug.ReadBuildInfo())
	root.SetVersionTemplate("{{.Version}}\n")
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others (herald,
// herald dlq, herald tokens, ...) show its help when called alone and refuse
// an unknown subcommand as a usage error that suggests the closest one. Left
// to itself, cobra prints the group's help and exits 0 on "herald dlq drp".
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		}
		return usageError{fmt.Errorf("%s\nsee '%s --help'", msg, cmd.CommandPath())}
	}
}

// client returns a client of the --server with the --token (or
// HERALD_TOKEN).
func (g *globals) client() (*client.Client, error) {
	token := g.token
	if token == "" {
		token = os.Getenv("HERALD_TOKEN")
	}
	c, err := client.New(g.server, client.WithToken(token), client.WithHTTPClient(g.hc),
		client.WithUserAgent("herald-cli"))
	if err != nil {
		return nil, usageError{fmt.Errorf("--server: %w", err)}
	}
	return c, nil
}

// colored reports whether output to w should be coloured.
func (g *globals) colored(w io.Writer) bool {
	switch g.color {
	case "always":
		return true
	case "never":
		return false
	}
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	return isTerminal(w)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitCode maps an error to the process's exit code: 2 for usage errors, 1
// for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError marks an error in how a command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// args checks a command's positional arguments, as a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}

// cliError is an error said for a person: one line that tells what to do,
// wrapping the error it explains so that errors.Is still works.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// explain turns an error from the client into one line that says what
// happened and what to do.
func explain(err error, server string) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	say := func(format string, a ...any) error {
		return &cliError{msg: fmt.Sprintf(format, a...), err: err}
	}
	// A publish whose outcome is unknown may have stored the event: say
	// which id to publish it again with, so that it is stored at most once.
	again := "; publish it again with the same --id"
	var se *sentError
	if errors.As(err, &se) {
		again = "; publish it again with --id " + se.id
	}
	var te *client.TransportError
	if errors.As(err, &te) {
		if te.URL != "" {
			server = te.URL
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return say("cannot reach %s: is `herald serve` running? (or pass --server / set HERALD_URL)", server)
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			if se != nil {
				return say("%s did not answer in time, the event may be stored%s", server, again)
			}
			return say("%s did not answer in time: is the server overloaded, or the address wrong?", server)
		}
		return say("cannot reach %s: %v", server, unwrapURLError(te.Err))
	}
	var he *client.Error
	if !errors.As(err, &he) {
		return err
	}
	// Keep what the command added in front (such as "line 7: ").
	msg := he.Error()
	prefix, _ := strings.CutSuffix(err.Error(), msg)
	say = func(format string, a ...any) error {
		return &cliError{msg: prefix + fmt.Sprintf(format, a...), err: err}
	}
	switch {
	case errors.Is(err, herald.ErrUnauthorized):
		return say("unauthorized: %s: pass a valid token with --token or HERALD_TOKEN", msg)
	case errors.Is(err, herald.ErrForbidden):
		if strings.Contains(msg, "ask") {
			return say("forbidden: %s", msg) // the server said what to do
		}
		return say("forbidden: %s: this needs a token with more rights (ask an admin)", msg)
	case errors.Is(err, herald.ErrRateLimited):
		return say("rate limited: %s: slow down, or ask for a higher rate on the token", msg)
	case errors.Is(err, herald.ErrOutcomeUnknown):
		return say("outcome unknown: %s%s", msg, again)
	case errors.Is(err, herald.ErrBackpressure):
		return say("server busy: %s", msg)
	case he.Code == api.CodeIDTaken:
		// Another identity's event holds the id: not a version to
		// retry with, nor a duplicate.
		if se != nil {
			return say("id taken: %s: pass another --id, or leave --id out for a new one", msg)
		}
		return say("id taken: %s", msg)
	case errors.Is(err, herald.ErrConflict):
		return say("%s: read the subject's events again and retry with its current version", msg)
	case errors.Is(err, herald.ErrTooLarge):
		return say("too large: %s: send smaller events or fewer per batch", msg)
	case errors.Is(err, herald.ErrNotFound), errors.Is(err, herald.ErrInvalidEvent), errors.Is(err, herald.ErrSchemaViolation):
		return say("%s", msg)
	case he.Status >= 500:
		return say("the server failed (%d %s): see its log", he.Status, msg)
	}
	return say("%s (HTTP %d)", msg, he.Status)
}

// unwrapURLError drops net/http's `Get "URL":` prefix, which repeats the
// server's address.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.Contains(err.Error(), "\": ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
