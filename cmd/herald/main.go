// Command herald runs the herald event server and talks to it.
//
//	herald serve                 run the server (SQLite under ./herald-data, 127.0.0.1:7480)
//	herald publish NAME --data JSON
//	herald tail [PATTERN]
//
// Run `herald help` for every command.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(exitCode(err))
	}
}

// Run runs the herald command line with args (without the program name).
// It is main without the process: tests call it directly.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
