package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

// eventFilters are the flags that select events (events, export).
type eventFilters struct {
	name, correlation, subject, source string
	since, until                       string
	after                              uint64
}

func (f *eventFilters) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "name pattern: recording.completed, recording.*, recording.>")
	fs.StringVar(&f.correlation, "correlation-id", "", "only events of this correlation chain")
	fs.StringVar(&f.subject, "subject", "", "only events about this subject")
	fs.StringVar(&f.source, "source", "", "only events published by this source_plugin")
	fs.StringVar(&f.since, "since", "", "only events at or after this time: RFC 3339, or a duration ago (90m, 2d)")
	fs.StringVar(&f.until, "until", "", "only events before this time: RFC 3339, or a duration ago")
	fs.Uint64Var(&f.after, "after", 0, "start after this position")
}

// query returns the filters as a client query.
func (f *eventFilters) query(now time.Time) (client.EventQuery, error) {
	q := client.EventQuery{After: f.after, Name: f.name, CorrelationID: f.correlation,
		Subject: f.subject, SourcePlugin: f.source}
	if f.name != "" {
		if err := herald.ValidatePattern(f.name); err != nil {
			return q, usageError{fmt.Errorf("--name: %w", err)}
		}
	}
	var err error
	if q.Since, err = parseWhen(f.since, now); err != nil {
		return q, usageError{fmt.Errorf("--since: %w", err)}
	}
	if q.Until, err = parseWhen(f.until, now); err != nil {
		return q, usageError{fmt.Errorf("--until: %w", err)}
	}
	return q, nil
}

// parseWhen reads an RFC 3339 time, or a duration before now ("90m", "2d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := herald.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 90m or 2d", s)
	}
	return now.Add(-d.Std()), nil
}

func newEventsCmd(g *globals) *cobra.Command {
	var (
		filters eventFilters
		limit   int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "list stored events, oldest first",
		Long: `List the events stored in the log, oldest first, one line each: position,
time, name, subject and id. Flags narrow the list; --json prints each event
in full as one line of JSON.

At most --limit events are printed (0: all of them); when the limit cuts
the list short, herald tells you the --after that continues it.`,
		Example: `  herald events
  herald events --name 'recording.>' --since 1h
  herald events --correlation-id 0190b7c2-... --json
  herald events --subject order/7 --limit 0`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := filters.query(time.Now())
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must be 0 or more")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q.Limit = 1000
			if limit > 0 && limit < q.Limit {
				q.Limit = limit
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			n, last := 0, uint64(0)
			for e, err := range c.AllEvents(cmd.Context(), q) {
				if err != nil {
					tw.Flush()
					return err
				}
				if asJSON {
					if err := writeJSONLine(g.stdout, e); err != nil {
						return err
					}
				} else {
					if n == 0 {
						fmt.Fprintln(tw, "POSITION\tTIME\tNAME\tSUBJECT\tID")
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Position, shortTime(e.Timestamp), e.Name, orDash(e.Subject), e.ID)
				}
				n, last = n+1, e.Position
				if limit > 0 && n >= limit {
					break
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if limit > 0 && n >= limit {
				fmt.Fprintf(g.stderr, "showing the first %d; more may follow: add --after %d\n", n, last)
			} else if n == 0 {
				fmt.Fprintln(g.stderr, "no events match")
			}
			return nil
		},
	}
	filters.register(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 100, "print at most this many events (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event in full as one line of JSON")
	return cmd
}
