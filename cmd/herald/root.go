package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	server         string
	token          string
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "herald",
		Short: "herald is an event bus: a durable event log with retries, dead letters and replay",
		Long: `herald is an event bus for plugins: publish events, subscribe to them,
retry what fails, dead-letter what cannot succeed, and replay the log.

Start a server with no configuration (SQLite under ./herald-data):

  herald serve

then, in another terminal:

  herald publish recording.ended --data '{"recording_id":"r1"}'
  herald tail 'recording.>'`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("HERALD_URL", "http://127.0.0.1:7480"), "herald server URL (env HERALD_URL)")
	pf.StringVar(&g.token, "token", envOr("HERALD_TOKEN", ""), "API token (env HERALD_TOKEN)")
	for _, c := range commands {
		root.AddCommand(c(g))
	}
	return root
}

// commands lists the constructors of herald's subcommands, one file each.
var commands = []func(*globals) *cobra.Command{
	newServeCmd,
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
