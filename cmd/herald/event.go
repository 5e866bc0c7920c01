package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func newEventCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "event ID|POSITION",
		Short: "print one event in full, as JSON",
		Long: `Print the event with the given id (or, when no event has that id, at
the given position) in full, as indented JSON: its data,
correlation and causation ids, subject, source, metadata and position.
herald events lists ids; herald trace shows what happened to an event.`,
		Example: `  herald event 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e
  herald event 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e | jq .data
  herald event 42`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			e, err := c.Event(cmd.Context(), a[0])
			if pos, perr := strconv.ParseUint(a[0], 10, 64); errors.Is(err, herald.ErrNotFound) && perr == nil && pos > 0 {
				// No event has that id: a number is a position.
				page, perr := c.Events(cmd.Context(), client.EventQuery{After: pos - 1, Limit: 1})
				switch {
				case perr != nil:
					return perr
				case len(page.Events) == 0 || page.Events[0].Position != pos:
					return &cliError{msg: fmt.Sprintf("no event has id %q or position %d", a[0], pos), err: err}
				}
				e, err = page.Events[0], nil
			}
			if err != nil {
				return err
			}
			return writeJSONIndent(g.stdout, e)
		},
	}
}
