package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
)

func newTraceCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trace CORRELATION_ID",
		Short: "show a chain of events as a tree, with every handler's outcome",
		Long: `Show every event of a correlation chain as a tree: each event under the
event that caused it (its causation_id), in log order. Under each event,
one line per subscription that handled it: its outcome (succeeded,
retrying, dead_lettered, discarded), how many attempts it took, how long
the last one ran, and the last error; under it, each failed attempt (the
last 16) with how long it ran and its error. With a token that is not an admin,
the events it may read and the outcomes of its own push subscriptions
only; an admin token sees every handler.

The correlation id of a chain is the id of the event that started it.`,
		Example: `  herald trace 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e
  herald trace 0190b7c2-5f1e-7c3a-9d2e-1b4f6a7c8d9e --json`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			tr, err := c.Correlation(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLine(g.stdout, tr)
			}
			return printTrace(g.stdout, palette(g.colored(g.stdout)), tr)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the chain as JSON")
	return cmd
}

// traceNode is one event of a trace with the events it caused.
type traceNode struct {
	te       herald.TraceEvent
	children []*traceNode
}

// printTrace prints the chain as a tree by causation. Events whose cause is
// not in the chain (or not before them in the log) are roots.
func printTrace(w io.Writer, p palette, tr *herald.Trace) error {
	nodes := make(map[string]*traceNode, len(tr.Events))
	var order []*traceNode
	for _, te := range tr.Events {
		if te.Event == nil {
			continue
		}
		n := &traceNode{te: te}
		nodes[te.Event.ID] = n
		order = append(order, n)
	}
	slices.SortStableFunc(order, func(a, b *traceNode) int { return cmp.Compare(a.te.Event.Position, b.te.Event.Position) })
	var roots []*traceNode
	for _, n := range order {
		parent, ok := nodes[n.te.Event.CausationID]
		// A cause comes earlier in the log; anything else (a cycle of
		// hand-written causation ids) is shown as a root.
		if ok && parent.te.Event.Position < n.te.Event.Position {
			parent.children = append(parent.children, n)
		} else {
			roots = append(roots, n)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n", p.strong("correlation"), tr.CorrelationID, plural(len(order), "event", "events"))
	for i, r := range roots {
		writeNode(&b, p, r, "", i == len(roots)-1)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeNode(b *strings.Builder, p palette, n *traceNode, prefix string, last bool) {
	branch, below := "├─ ", "│  "
	if last {
		branch, below = "└─ ", "   "
	}
	e := n.te.Event
	fmt.Fprintf(b, "%s%s%s %s %s\n", prefix, branch, p.name(e.Name),
		p.dim(fmt.Sprintf("#%d %s", e.Position, e.Timestamp.UTC().Format("15:04:05.000"))), p.dim(e.ID))
	inner := prefix + below
	bar := "   "
	if len(n.children) > 0 {
		bar = "│  "
	}
	outs := slices.Clone(n.te.Outcomes)
	slices.SortFunc(outs, func(a, b herald.Outcome) int { return strings.Compare(a.Subscription, b.Subscription) })
	if len(outs) == 0 {
		fmt.Fprintf(b, "%s%s%s\n", inner, bar, p.dim("no subscription handled it"))
	}
	for _, o := range outs {
		fmt.Fprintf(b, "%s%s%s\n", inner, bar, outcomeLine(p, o))
		for _, h := range o.History {
			fmt.Fprintf(b, "%s%s    %s\n", inner, bar, p.dim(fmt.Sprintf("#%d %s: %s", h.Attempt, h.Duration, oneLine(h.Error, 100))))
		}
	}
	for i, c := range n.children {
		writeNode(b, p, c, inner, i == len(n.children)-1)
	}
}

// outcomeLine formats one subscription's outcome for an event.
func outcomeLine(p palette, o herald.Outcome) string {
	mark, status := "•", string(o.Status)
	switch o.Status {
	case herald.OutcomeSucceeded:
		mark, status = p.good("✓"), p.good(status)
	case herald.OutcomeRetrying:
		mark, status = p.warn("↻"), p.warn(status)
	case herald.OutcomeDeadLettered:
		mark, status = p.bad("✗"), p.bad(status)
	case herald.OutcomeDiscarded:
		mark, status = p.dim("–"), p.dim(status)
	}
	line := fmt.Sprintf("%s %s %s, %s, %s", mark, o.Subscription, status, plural(o.Attempts, "attempt", "attempts"), o.Duration)
	if o.LastError != "" {
		line += p.dim(": " + oneLine(o.LastError, 120))
	}
	return line
}
