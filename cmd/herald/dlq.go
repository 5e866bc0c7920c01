package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "inspect, redrive or drop dead letters",
		Long: `The dead-letter queue holds the events a subscription gave up on: after its
last attempt, or at once for a permanent error. Each entry keeps the event
and the error of every attempt. Fix the cause, then redrive the entries (the
same subscription delivers them again and they leave the queue when that
succeeds), or drop them. These commands need an admin token.`,
		Example: `  herald dlq ls
  herald dlq ls --subscription transcriber
  herald dlq redrive --subscription transcriber
  herald dlq redrive 7a1c0e52-...
  herald dlq drop 7a1c0e52-...`,
	}
	cmd.AddCommand(newDLQLsCmd(g), newDLQRedriveCmd(g), newDLQDropCmd(g))
	return cmd
}

func newDLQLsCmd(g *globals) *cobra.Command {
	var (
		q      client.DeadLetterQuery
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list dead letters, oldest first",
		Example: `  herald dlq ls --subscription transcriber
  herald dlq ls --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			dls, err := c.DeadLetters(cmd.Context(), q)
			if err != nil {
				return err
			}
			if asJSON {
				for _, d := range dls {
					if err := writeJSONLine(g.stdout, d); err != nil {
						return err
					}
				}
				return nil
			}
			if len(dls) == 0 {
				fmt.Fprintln(g.stderr, "the dead-letter queue is empty")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSUBSCRIPTION\tEVENT\tATTEMPTS\tDEAD AT\tLAST ERROR")
			for _, d := range dls {
				name, last := "-", "-"
				if d.Event != nil {
					name = d.Event.Name + " #" + fmt.Sprint(d.Event.Position)
				}
				if n := len(d.Errors); n > 0 {
					last = oneLine(d.Errors[n-1].Error, 80)
				}
				if d.Permanent {
					last = "(permanent) " + last
				}
				if d.Redrive {
					last = "(redrive pending) " + last
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Subscription, name, d.Attempts(), shortTime(d.DeadAt), last)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Subscription, "subscription", "", "only this subscription's entries")
	cmd.RegisterFlagCompletionFunc("subscription", g.complete(false, subscriptionNames))
	f.StringVar(&q.EventID, "event-id", "", "only the entries of this event")
	f.IntVar(&q.Limit, "limit", 0, "list at most this many (default: the server's, 100)")
	f.BoolVar(&asJSON, "json", false, "print each entry in full as one line of JSON")
	return cmd
}

func newDLQRedriveCmd(g *globals) *cobra.Command {
	var (
		all bool
		sub string
	)
	cmd := &cobra.Command{
		Use:               "redrive (ID... | --all | --subscription NAME)",
		ValidArgsFunction: g.complete(true, deadLetterIDs),
		Short:             "deliver dead letters again",
		Long: `Deliver dead letters again to the subscription that gave up on them; an
entry leaves the queue once its delivery succeeds. Name entries by ID (see
herald dlq ls), or redrive every entry with --all, or every entry of one
subscription with --subscription NAME.`,
		Example: `  herald dlq redrive 7a1c0e52-...
  herald dlq redrive --subscription transcriber
  herald dlq redrive --all`,
		RunE: func(cmd *cobra.Command, a []string) error {
			all = all || sub != ""
			if all == (len(a) > 0) {
				return usageError{fmt.Errorf("give dead-letter IDs, or --all, or --subscription NAME")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if all {
				n, err := c.RedriveAll(cmd.Context(), sub)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(g.stdout, "redriving %s\n", plural(n, "dead letter", "dead letters"))
				return err
			}
			return eachID(g, a, "redriving", func(id string) error { return c.Redrive(cmd.Context(), id) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "redrive every entry")
	cmd.Flags().StringVar(&sub, "subscription", "", "redrive every entry of this subscription")
	cmd.RegisterFlagCompletionFunc("subscription", g.complete(false, subscriptionNames))
	return cmd
}

func newDLQDropCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "drop ID...",
		ValidArgsFunction: g.complete(true, deadLetterIDs),
		Aliases:           []string{"rm", "discard"},
		Short:             "discard dead letters for good",
		Example:           `  herald dlq drop 7a1c0e52-... 9b2d1f63-...`,
		Args:              args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return eachID(g, a, "dropped", func(id string) error { return c.Discard(cmd.Context(), id) })
		},
	}
}

// eachID applies do to every id, saying what it did; it goes on after an
// entry that is not found and returns the first error.
func eachID(g *globals, ids []string, verb string, do func(id string) error) error {
	var first error
	for _, id := range ids {
		if err := do(id); err != nil {
			if first == nil {
				first = err
			}
			if errors.Is(err, herald.ErrNotFound) {
				fmt.Fprintf(g.stderr, "no dead letter %s\n", id)
				continue
			}
			return err
		}
		fmt.Fprintf(g.stdout, "%s %s\n", verb, id)
	}
	return first
}
