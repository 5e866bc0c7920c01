package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "check that the server is up and ready",
		Long: `Ask the server whether it is ready to serve, and print where its log
stands (the position of its last event). The exit code is 0 when it is
ready and 1 when it is not, or cannot be reached: handy in scripts that
wait for herald serve to start.

With --json it prints what the server runs (its version and its store kind),
its head, and the push subscriptions this token may see, as JSON; that
needs a token on a server that requires them.`,
		Example: `  herald status
  herald status --json
  until herald status >/dev/null 2>&1; do sleep 0.2; done`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if asJSON {
				st, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				return writeJSONIndent(g.stdout, st)
			}
			head, err := c.Ready(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "%s is ready; its log is at position %d\n", c.BaseURL(), head)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's status as JSON: version, store, head, subscriptions")
	return cmd
}
