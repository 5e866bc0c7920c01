// Command herald runs the herald event server and talks to it.
//
//	herald serve                        run the server (SQLite under ./herald-data, 127.0.0.1:7480)
//	herald publish NAME --data JSON     publish an event
//	herald tail [PATTERN]               follow events live
//	herald events [filters]             list stored events
//	herald event ID                     one event in full
//	herald trace CORRELATION_ID         a chain of events with every handler's outcome
//	herald subs ls|show|create|rm|replay   push subscriptions (webhooks)
//	herald dlq ls|redrive|drop          the dead-letter queue
//	herald schemas put|get|ls           JSON Schemas of event data
//	herald tokens create|ls|revoke      API tokens
//	herald export / import              the log as JSON Lines
//	herald status                       is the server up?
//	herald health                       GET /healthz (the container image's healthcheck)
//	herald version
//
// Every command but serve talks to --server (HERALD_URL) with --token
// (HERALD_TOKEN). Run `herald help COMMAND` for each.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// printError writes Run's error for a person, unless it was already
// written as a log record (herald serve --log-format json).
func printError(w io.Writer, err error) {
	var logged loggedError
	if !errors.As(err, &logged) {
		fmt.Fprintln(w, "herald:", err)
	}
}

// loggedError is an error herald serve has already written to its log.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// Run runs the herald command line with args (without the program name).
// It is main without the process: tests call it directly. Errors from a
// server come back as one line for a person that still wraps herald's
// sentinel errors; usage errors make exitCode return 2.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A server that takes this long to start answering is stuck; the bound
	// does not cut streams, whose headers come at once.
	tr.ResponseHeaderTimeout = 30 * time.Second
	defer tr.CloseIdleConnections()
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, hc: &http.Client{Transport: tr}}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var u usageError
	if err != nil && !errors.As(err, &u) && strings.HasPrefix(err.Error(), "unknown ") {
		err = usageError{fmt.Errorf("%w\nsee 'herald --help'", err)}
	}
	var unclean uncleanStop
	if ctx.Err() != nil && err != nil && ctx.Err() == context.Canceled && !errors.As(err, &unclean) {
		return nil // interrupted: not an error
	}
	return explain(err, g.server)
}
