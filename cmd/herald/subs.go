package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

func newSubsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "subs",
		Aliases: []string{"subscriptions"},
		Short:   "manage push subscriptions (webhooks)",
		Long: `A push subscription delivers every event matching its filter to a webhook:
an HTTP POST of the event (CloudEvents binary mode), signed with the
subscription's secret. A 2xx answer means done; 408, 429, 5xx, a timeout or
a refused connection are retried with backoff; any other 4xx, or the last
failed attempt, puts the event in the dead-letter queue (see herald dlq).

Subscriptions are durable: they resume where they stood after a restart.`,
		Example: `  herald subs create transcriber --filter 'recording.completed' --endpoint http://127.0.0.1:9000/hook
  herald subs ls
  herald subs show transcriber
  herald subs replay transcriber --ago 1h
  herald subs rm transcriber`,
	}
	cmd.AddCommand(newSubsLsCmd(g), newSubsShowCmd(g), newSubsCreateCmd(g), newSubsRmCmd(g), newSubsReplayCmd(g))
	return cmd
}

func newSubsLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list push subscriptions with their progress",
		Example: `  herald subs ls
  herald subs ls --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			subs, err := c.Subscriptions(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLine(g.stdout, subs)
			}
			if len(subs) == 0 {
				fmt.Fprintln(g.stderr, "no push subscriptions: create one with `herald subs create`")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFILTER\tENDPOINT\tPOSITION\tLAG\tHANDLED\tFAILED\tDEAD")
			for _, s := range subs {
				var st herald.SubscriptionStats
				if s.Stats != nil {
					st = *s.Stats
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Name, s.Filter, s.Endpoint,
					s.Position, s.Lag, st.Handled, st.Failed, st.DeadLettered)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the subscriptions as JSON")
	return cmd
}

func newSubsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Aliases: []string{"get"},
		Short:   "show one push subscription as JSON, with its progress",
		Example: `  herald subs show transcriber`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.GetSubscription(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return writeJSONIndent(g.stdout, s)
		},
	}
}

func newSubsCreateCmd(g *globals) *cobra.Command {
	var (
		s                api.PushSubscription
		initial, maxWait time.Duration
	)
	cmd := &cobra.Command{
		Use:     "create NAME --endpoint URL [--filter PATTERN]",
		Aliases: []string{"put"},
		Short:   "create a push subscription, or change one",
		Long: `Create the push subscription NAME, delivering the events that match
--filter to --endpoint; run it again to change its settings (a subscription
keeps its position). Unset flags take the server's defaults: filter >
(every event), 4 attempts, backoff 100ms to 30s, concurrency 1, timeout
10s, start earliest.

When --secret is not given the server makes one and herald prints it once:
the endpoint verifies the Herald-Signature header with it.`,
		Example: `  herald subs create transcriber --filter recording.completed --endpoint http://127.0.0.1:9000/hook
  herald subs create audit --filter '>' --endpoint https://audit.example/hook --start latest --max-attempts 10`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if s.Endpoint == "" {
				return usageError{fmt.Errorf("--endpoint is required: the webhook URL events are POSTed to")}
			}
			if s.Filter != "" {
				if err := herald.ValidatePattern(s.Filter); err != nil {
					return usageError{fmt.Errorf("--filter: %w", err)}
				}
			}
			s.Name = a[0]
			if initial > 0 || maxWait > 0 {
				s.Backoff = &client.Backoff{Initial: herald.Duration(initial), Max: herald.Duration(maxWait)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out, err := c.PutSubscription(cmd.Context(), s)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "subscription %s: %s → %s\n", out.Name, orDash(out.Filter), out.Endpoint)
			if out.Secret != "" && s.Secret == "" {
				fmt.Fprintf(g.stdout, "secret (shown once; deliveries are signed with it): %s\n", out.Secret)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Endpoint, "endpoint", "", "webhook URL the events are POSTed to (required)")
	f.StringVar(&s.Filter, "filter", "", "name pattern of the events to deliver (default >: all)")
	f.StringVar(&s.Secret, "secret", "", "key of the deliveries' HMAC-SHA256 signature (default: generated)")
	f.IntVar(&s.MaxAttempts, "max-attempts", 0, "attempts before an event is dead-lettered (default 4)")
	f.DurationVar(&initial, "backoff-initial", 0, "first wait between attempts (default 100ms)")
	f.DurationVar(&maxWait, "backoff-max", 0, "longest wait between attempts (default 30s)")
	f.IntVar(&s.Concurrency, "concurrency", 0, "deliveries in flight at once, one per subject (default 1)")
	f.Var((*durationValue)(&s.Timeout), "timeout", "time limit of one delivery (default 10s)")
	f.StringVar((*string)(&s.Start), "start", "", "where a new subscription starts: earliest, latest or a position")
	return cmd
}

func newSubsRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "delete a push subscription",
		Long: `Delete the push subscription NAME: deliveries stop and its position is
forgotten. Its outcomes and dead letters are kept.`,
		Example: `  herald subs rm transcriber`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSubscription(cmd.Context(), a[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "deleted subscription %s\n", a[0])
			return err
		},
	}
}

func newSubsReplayCmd(g *globals) *cobra.Command {
	var (
		position  uint64
		when, ago string
	)
	cmd := &cobra.Command{
		Use:   "replay NAME (--position N | --time T | --ago D)",
		Short: "move a push subscription back (or forward) in the log",
		Long: `Move the push subscription NAME to a place in the log: it delivers again
every event from there on. Give exactly one of --position (deliver the
events after it), --time (the first event at or after an RFC 3339 time)
or --ago (the same, a duration before now: 90m, 2d).`,
		Example: `  herald subs replay transcriber --position 0      # everything again
  herald subs replay transcriber --ago 1h
  herald subs replay transcriber --time 2026-11-27T08:00:00Z`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			set := 0
			for _, n := range []string{"position", "time", "ago"} {
				if cmd.Flags().Changed(n) {
					set++
				}
			}
			if set != 1 {
				return usageError{fmt.Errorf("give exactly one of --position, --time or --ago")}
			}
			var target client.ReplayTarget
			switch {
			case cmd.Flags().Changed("position"):
				target = client.ReplayFromPosition(position)
			case when != "":
				t, err := time.Parse(time.RFC3339Nano, when)
				if err != nil {
					return usageError{fmt.Errorf("--time: want an RFC 3339 time such as 2026-11-27T08:00:00Z")}
				}
				target = client.ReplayFromTime(t)
			default:
				t, err := parseWhen(ago, time.Now())
				if err != nil || ago == "" {
					return usageError{fmt.Errorf("--ago: want a duration such as 90m or 2d")}
				}
				target = client.ReplayFromTime(t)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.ReplaySubscription(cmd.Context(), a[0], target); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "subscription %s moved; it delivers again from there\n", a[0])
			return err
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&position, "position", 0, "deliver the events after this position (0: the whole log)")
	f.StringVar(&when, "time", "", "deliver from the first event at or after this RFC 3339 time")
	f.StringVar(&ago, "ago", "", "deliver from this long ago (90m, 2d)")
	return cmd
}

// durationValue is a herald.Duration flag ("30s", "2d").
type durationValue herald.Duration

func (d *durationValue) String() string {
	if *d == 0 {
		return ""
	}
	return herald.Duration(*d).String()
}
func (d *durationValue) Set(s string) error {
	v, err := herald.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}
func (d *durationValue) Type() string { return "duration" }
