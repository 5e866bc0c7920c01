package main

import (
	"github.com/spf13/cobra"
)

func newEventCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "event ID",
		Short: "print one event in full, as JSON",
		Long: `Print the event with the given id in full, as indented JSON: its data,
correlation and causation ids, subject, source, metadata and position.
herald events lists ids; herald trace shows what happened to an event.`,
		Example: `  herald event 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e
  herald event 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e | jq .data`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			e, err := c.Event(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return writeJSONIndent(g.stdout, e)
		},
	}
}
