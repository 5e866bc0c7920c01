package main

import (
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	cmd.AddCommand(newSubsLsCmd(g), newSubsShowCmd(g), newSubsCreateCmd(g), newSubsUpdateCmd(g), newSubsRmCmd(g), newSubsReplayCmd(g))
	return cmd
}

func newSubsLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list push subscriptions with their progress",
		Long: `List the push subscriptions this token may see, with their progress:
POSITION is the checkpoint and LAG the events after it; HANDLED and FAILED
count events handled and failed attempts since the subscription was
created, kept in the store (every server sharing it shows the same, and a
restart keeps them); DEAD counts the dead letters waiting now, what
'herald dlq ls' lists (a successful redrive lowers it).`,
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
				// DEAD is what waits in the dead-letter queue, as herald dlq
				// ls lists it, not how many were ever dead-lettered.
				dead := "?"
				if s.DeadLetters != nil {
					dead = strconv.Itoa(*s.DeadLetters)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Filter, s.Endpoint,
					s.Position, s.Lag, st.Handled, st.Failed, dead)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the subscriptions as JSON")
	return cmd
}

func newSubsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "show NAME",
		ValidArgsFunction: g.complete(false, subscriptionNames),
		Aliases:           []string{"get"},
		Short:             "show one push subscription as JSON, with its progress",
		Example:           `  herald subs show transcriber`,
		Args:              args(cobra.ExactArgs(1)),
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

// subFlags are the settings of a push subscription that create and
// update take.
type subFlags struct {
	s                api.PushSubscription
	initial, maxWait time.Duration
}

func (sf *subFlags) define(f *pflag.FlagSet) {
	f.StringVar(&sf.s.Endpoint, "endpoint", "", "webhook URL the events are POSTed to (required)")
	f.StringVar(&sf.s.Filter, "filter", "", "name pattern of the events to deliver (default >: all)")
	f.StringVar(&sf.s.Secret, "secret", "", "key of the deliveries' HMAC-SHA256 signature (default: generated)")
	f.IntVar(&sf.s.MaxAttempts, "max-attempts", 0, "attempts before an event is dead-lettered (default 4)")
	f.DurationVar(&sf.initial, "backoff-initial", 0, "first wait between attempts (default 100ms)")
	f.DurationVar(&sf.maxWait, "backoff-max", 0, "longest wait between attempts (default 30s)")
	f.IntVar(&sf.s.Concurrency, "concurrency", 0, "deliveries in flight at once, one per subject (default 1)")
	f.Var((*durationValue)(&sf.s.Timeout), "timeout", "time limit of one delivery (default 10s)")
	f.StringVar((*string)(&sf.s.Start), "start", "", "where a new subscription starts: earliest, latest or a position")
}

func (sf *subFlags) checkFilter() error {
	if sf.s.Filter != "" {
		if err := herald.ValidatePattern(sf.s.Filter); err != nil {
			return usageError{fmt.Errorf("--filter: %w", err)}
		}
	}
	return nil
}

// apply copies the flags that were given onto d, leaving the others as
// they are.
func (sf *subFlags) apply(f *pflag.FlagSet, d *api.PushSubscription) {
	set := f.Changed
	if set("endpoint") {
		d.Endpoint = sf.s.Endpoint
	}
	if set("filter") {
		d.Filter = sf.s.Filter
	}
	if set("secret") {
		d.Secret = sf.s.Secret
	}
	if set("max-attempts") {
		d.MaxAttempts = sf.s.MaxAttempts
	}
	if set("concurrency") {
		d.Concurrency = sf.s.Concurrency
	}
	if set("timeout") {
		d.Timeout = sf.s.Timeout
	}
	if set("start") {
		d.Start = sf.s.Start
	}
	if set("backoff-initial") || set("backoff-max") {
		b := client.Backoff{}
		if d.Backoff != nil {
			b = *d.Backoff
		}
		if set("backoff-initial") {
			b.Initial = herald.Duration(sf.initial)
		}
		if set("backoff-max") {
			b.Max = herald.Duration(sf.maxWait)
		}
		d.Backoff = &b
	}
}

func newSubsCreateCmd(g *globals) *cobra.Command {
	var (
		sf      subFlags
		replace bool
	)
	cmd := &cobra.Command{
		Use:     "create NAME --endpoint URL [--filter PATTERN] [--replace]",
		Aliases: []string{"put"},
		Short:   "create a push subscription",
		Long: `Create the push subscription NAME, delivering the events that match
--filter to --endpoint. Unset flags take the server's defaults: filter >
(every event), 4 attempts, backoff 100ms to 30s, concurrency 1, timeout
10s, start earliest.

A name that exists is refused: change some of its settings with
'herald subs update', or redefine it whole with --replace (unset flags then
take the defaults again; the subscription keeps its position).

When --secret is not given the server makes one and herald prints it once:
the endpoint verifies the deliveries' signature with it.`,
		Example: `  herald subs create transcriber --filter recording.completed --endpoint http://127.0.0.1:9000/hook
  herald subs create audit --filter '>' --endpoint https://audit.example/hook --start latest --max-attempts 10
  herald subs create transcriber --filter 'recording.*' --endpoint http://127.0.0.1:9000/hook --replace`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			s := sf.s
			if s.Endpoint == "" {
				return usageError{fmt.Errorf("--endpoint is required: the webhook URL events are POSTed to")}
			}
			if err := sf.checkFilter(); err != nil {
				return err
			}
			s.Name = a[0]
			if sf.initial > 0 || sf.maxWait > 0 {
				s.Backoff = &client.Backoff{Initial: herald.Duration(sf.initial), Max: herald.Duration(sf.maxWait)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			put := c.CreateSubscription
			if replace {
				put = c.PutSubscription
			}
			out, err := put(cmd.Context(), s)
			if errors.Is(err, herald.ErrConflict) {
				return &cliError{msg: fmt.Sprintf("subscription %s already exists: change some settings with 'herald subs update %s --FLAG VALUE', "+
					"or redefine it with --replace", s.Name, s.Name), err: err}
			}
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
	sf.define(cmd.Flags())
	cmd.Flags().BoolVar(&replace, "replace", false, "redefine the subscription if it exists (unset flags take the defaults)")
	return cmd
}

func newSubsUpdateCmd(g *globals) *cobra.Command {
	var sf subFlags
	cmd := &cobra.Command{
		Use:               "update NAME [--filter PATTERN] [--endpoint URL] [--concurrency N] ...",
		ValidArgsFunction: g.complete(false, subscriptionNames),
		Short:             "change some settings of a push subscription",
		Long: `Change the settings of the push subscription NAME that are given as
flags; every other setting, its secret and its position stay as they are.`,
		Example: `  herald subs update transcriber --concurrency 4
  herald subs update transcriber --filter 'recording.*' --max-attempts 10`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			changed := 0
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if cmd.InheritedFlags().Lookup(f.Name) == nil {
					changed++
				}
			})
			if changed == 0 {
				return usageError{fmt.Errorf("give at least one setting to change, such as --concurrency 4\nsee 'herald subs update --help'")}
			}
			if err := sf.checkFilter(); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cur, err := c.GetSubscription(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			d := cur.PushSubscription
			d.Owner, d.CreatedAt, d.UpdatedAt = "", time.Time{}, time.Time{}
			sf.apply(cmd.Flags(), &d)
			out, err := c.PutSubscription(cmd.Context(), d)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "subscription %s: %s → %s\n", out.Name, orDash(out.Filter), out.Endpoint)
			return err
		},
	}
	sf.define(cmd.Flags())
	return cmd
}

func newSubsRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "rm NAME",
		ValidArgsFunction: g.complete(false, subscriptionNames),
		Aliases:           []string{"delete"},
		Short:             "delete a push subscription",
		Long: `Delete the push subscription NAME: deliveries stop and its position is
forgotten, and its outcomes and dead letters go with it: a later
subscription of the same name starts without them.`,
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
		Use:               "replay NAME (--position N | --time T | --ago D)",
		ValidArgsFunction: g.complete(false, subscriptionNames),
		Short:             "move a push subscription back (or forward) in the log",
		Long: `Move the push subscription NAME to a place in the log: it delivers again
every event from there on. Give exactly one of --position (deliver again
from the event at that position), --time (the first event at or after an RFC 3339 time)
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
			out, err := c.ReplaySubscription(cmd.Context(), a[0], target)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "subscription %s moved: it delivers again every event after position %d\n", a[0], out.Position)
			return err
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&position, "position", 0, "deliver again from the event at this position (0 or 1: the whole log)")
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
