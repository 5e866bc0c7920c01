package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/api"
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

On NATS JetStream it also prints the cluster, when the token may see the
server's status: each node holding the event stream (leader, current, or
offline, with how many operations it is behind and when the leader last
heard from it), the number of replicas, and what each durable
subscription has pending (not yet delivered) and unacknowledged.

With --json it prints what the server runs (its version and its store kind),
its head, the push subscriptions this token may see and, on NATS, the
cluster, as JSON; that needs a token on a server that requires them.`,
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
			if _, err = fmt.Fprintf(g.stdout, "%s is ready; its log is at position %d\n", c.BaseURL(), head); err != nil {
				return err
			}
			// The cluster, when there is one and this token may see it:
			// readiness alone needs no token, so a refusal is no failure.
			if st, err := c.Status(cmd.Context()); err == nil && st.Cluster != nil {
				return writeCluster(g.stdout, st.Cluster)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's status as JSON: version, store, head, subscriptions and, on NATS, the cluster")
	return cmd
}

// writeCluster prints the cluster part of a status: a line about the
// event stream, a table of its nodes and one of the subscriptions' lag.
func writeCluster(w io.Writer, c *api.ClusterStatus) error {
	name := "cluster " + c.Name
	if c.Name == "" {
		name = "single node"
	}
	leader := c.Leader
	if leader == "" {
		leader = "none (no quorum)"
	}
	fmt.Fprintf(w, "%s: the event stream has %s, leader %s\n", name, plural(c.Replicas, "replica", "replicas"), leader)
	if c.Error != "" {
		fmt.Fprintf(w, "  the cluster did not answer fully: %s\n", c.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(c.Nodes) > 0 {
		fmt.Fprintln(tw, "  NODE\tSTATE\tLAG\tLAST SEEN")
		for _, n := range c.Nodes {
			state, seen := "current", "-"
			switch {
			case n.Leader:
				state = "leader"
			case n.Offline:
				state = "offline"
			case !n.Current:
				state = "catching up"
			}
			if !n.Leader {
				seen = n.LastSeen.Std().Round(time.Millisecond).String() + " ago"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", n.Name, state, n.Lag, seen)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(c.Consumers) > 0 {
		fmt.Fprintln(tw, "  SUBSCRIPTION\tPENDING\tUNACKED\tREDELIVERED")
		for _, s := range c.Consumers {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", s.Subscription, s.Pending, s.AckPending, s.Redelivered)
		}
	}
	return tw.Flush()
}
