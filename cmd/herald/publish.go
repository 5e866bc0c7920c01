package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func newPublishCmd(g *globals) *cobra.Command {
	var (
		data, subject, correlation, causation, id, priority string
		expect                                              uint64
		version                                             int
		meta                                                map[string]string
		asJSON                                              bool
	)
	cmd := &cobra.Command{
		Use:   "publish NAME [--data JSON|@FILE|-]",
		Short: "publish one event",
		Long: `Publish one event named NAME. Its data is a JSON object given inline,
read from a file (@FILE) or from standard input (-); it defaults to {}.

Without --id, herald chooses a new id (a UUIDv7) before sending, and says
which when the outcome is unknown, so that publishing again with that --id
stores the event at most once. The server fills the timestamp and the
correlation id. Publishing the same --id twice stores the event once.

With --expect-version N the event is stored only while its --subject has
exactly N events (optimistic concurrency); otherwise nothing is stored and
herald says so with a conflict.`,
		Example: `  herald publish recording.ended --data '{"recording_id":"r1"}'
  herald publish recording.ended --data @event-data.json --subject recording/r1
  echo '{"text":"hi"}' | herald publish transcript.ready --data -
  herald publish order.placed --subject order/7 --expect-version 0 --data '{"total":12}'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			raw, err := readArg(data, g.stdin)
			if err != nil {
				return usageError{fmt.Errorf("--data: %w", err)}
			}
			if !json.Valid(raw) {
				return usageError{fmt.Errorf("--data is not valid JSON: want an object such as '{\"k\":\"v\"}'")}
			}
			prio, err := herald.ParsePriority(priority)
			if err != nil {
				return usageError{fmt.Errorf("--priority: want low, normal, high or critical")}
			}
			if id == "" {
				id = herald.NewID() // before the first attempt: any retry is idempotent
			}
			if cmd.Flags().Changed("version") && version < 1 {
				return usageError{fmt.Errorf("--version: the data's version is 1 or more")}
			}
			e := &herald.Event{ID: id, Name: a[0], Data: raw, Subject: subject, CorrelationID: correlation,
				CausationID: causation, Priority: prio, Metadata: meta, Version: version}
			var opts []client.PublishOption
			if cmd.Flags().Changed("expect-version") {
				if subject == "" {
					return usageError{fmt.Errorf("--expect-version needs --subject")}
				}
				opts = append(opts, client.ExpectVersion(expect))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Publish(cmd.Context(), e, opts...)
			if err != nil {
				return &sentError{id: id, err: err}
			}
			if asJSON {
				return writeJSONLine(g.stdout, res)
			}
			verb := "published"
			if res.Duplicate {
				verb = "already stored:"
			}
			_, err = fmt.Fprintf(g.stdout, "%s %s at position %d (id %s)\n", verb, a[0], res.Position, res.ID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&data, "data", "d", "{}", "the event's data: a JSON object, @FILE to read a file, or - for standard input")
	f.StringVar(&subject, "subject", "", "the entity the event is about, e.g. recording/r1 (orders events; unit of --expect-version)")
	f.StringVar(&correlation, "correlation-id", "", "tie the event to a chain (default: its own id)")
	f.StringVar(&causation, "causation-id", "", "the id of the event that caused this one")
	f.StringVar(&id, "id", "", "the event's id, its idempotency key (default: a new UUIDv7)")
	f.StringVar(&priority, "priority", "normal", "low, normal, high or critical")
	f.IntVar(&version, "version", 0, "the version of the data's schema (default 1); not the subject's version, see --expect-version")
	f.Uint64Var(&expect, "expect-version", 0, "store only while --subject has exactly this many events")
	f.StringToStringVar(&meta, "meta", nil, "metadata headers, key=value (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// sentError is the error of a publish that was sent with the event id id:
// the one to publish again with when the outcome is unknown.
type sentError struct {
	id  string
	err error
}

func (e *sentError) Error() string { return e.err.Error() }
func (e *sentError) Unwrap() error { return e.err }

// readArg reads a value given inline, as @FILE, or as - for standard input.
func readArg(v string, stdin io.Reader) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(io.LimitReader(stdin, 64<<20))
	case strings.HasPrefix(v, "@"):
		return os.ReadFile(v[1:])
	}
	return []byte(v), nil
}
