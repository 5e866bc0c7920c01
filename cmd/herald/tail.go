package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func newTailCmd(g *globals) *cobra.Command {
	var (
		after  uint64
		count  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tail [PATTERN]",
		Short: "follow events live as they are published",
		Long: `Follow the server's event log live, printing each event whose name matches
PATTERN (default: every event) as it is published, until interrupted.

Patterns: an exact name (recording.completed), one segment (recording.*),
or one or more segments (recording.>); > matches everything.

On a terminal each event is one coloured line (position, time, name,
subject, data); with NO_COLOR set, --color never, or when the output is not
a terminal, the same line is plain. --json prints each event as one line of
JSON, the format import reads. When the connection drops, tail reconnects
and resumes where it was: no event is missed or printed twice.`,
		Example: `  herald tail
  herald tail 'recording.>'
  herald tail --after 0 --json > all-events.jsonl     # the whole log, then live
  herald tail 'order.*' --count 1                      # wait for the next order event`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			pattern := ""
			if len(a) == 1 {
				pattern = a[0]
			}
			if pattern != "" {
				if err := herald.ValidatePattern(pattern); err != nil {
					return usageError{fmt.Errorf("PATTERN: %w", err)}
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			opts := []client.StreamOption{client.StreamOnDrop(func(err error) {
				why := err.Error()
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					why = "the server closed it"
				}
				fmt.Fprintf(g.stderr, "herald: the stream from %s dropped (%s); reconnecting\n", c.BaseURL(), why)
			})}
			if cmd.Flags().Changed("after") {
				opts = append(opts, client.StreamAfter(after))
			}
			ctx := cmd.Context()
			s, err := c.Stream(ctx, pattern, opts...)
			if err != nil {
				return err
			}
			defer s.Close()
			lines := newEventLines(palette(g.colored(g.stdout)))
			n := 0
			for e, err := range s.All() {
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, herald.ErrClosed) {
						return nil
					}
					return err
				}
				if asJSON {
					err = writeJSONLine(g.stdout, e)
				} else {
					_, err = fmt.Fprintln(g.stdout, lines.line(e))
				}
				if err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					return nil
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&after, "after", 0, "start after this position (0: the whole log) instead of now")
	f.IntVarP(&count, "count", "n", 0, "exit after this many events (0: follow until interrupted)")
	f.BoolVar(&asJSON, "json", false, "print each event as one line of JSON")
	return cmd
}
