package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

func newTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "create, list and revoke API tokens",
		Long: `Each caller of the server (a plugin, a person) gets a token: an identity
(the source_plugin of everything it publishes), the name patterns it may
publish and may read, the subjects it may publish to, an admin flag, and a
rate limit. An admin token holds
every right: it may publish and read every name (as its own identity) and
manage schemas, dead letters, subscriptions and tokens.

A server with no token at all is open, and only listens on loopback. On an
open server the first token must be an admin token: from then on every call
needs a token, and only an admin can create the others. The last admin
token cannot be revoked while other tokens exist, nor ever on a server that
listens beyond loopback. These commands need an admin token (or an open
server).`,
		Example: `  herald tokens create --identity transcriber --publish 'transcript.>' --subscribe 'recording.>'
  herald tokens create --identity ops --admin
  herald tokens ls
  herald tokens revoke tok_3f9a...`,
	}
	cmd.AddCommand(newTokensCreateCmd(g), newTokensLsCmd(g), newTokensRevokeCmd(g))
	return cmd
}

func newTokensCreateCmd(g *globals) *cobra.Command {
	var t client.Token
	cmd := &cobra.Command{
		Use:   "create --identity NAME [--publish PATTERN]... [--subscribe PATTERN]... [--subjects PATTERN]... [--admin]",
		Short: "create a token; its secret is printed once",
		Long: `Create a token for --identity. The secret is printed alone on standard
output, once: the server keeps only its hash. Give it to the caller as
HERALD_TOKEN (or --token), or as an "Authorization: Bearer" header.

Name patterns (--publish, --subscribe) are dot-separated: "*" stands for
one segment and a last ">" for one or more ("recording.*", "recording.>").

--subjects limits the subjects the token may publish to (conditional
appends included) and look up with GET /v1/subjects; without it the token
may use every subject. Subject patterns are slash-separated: "*" stands
for exactly one segment and a last ">" for one or more, so acct/* matches
acct/1 but not acct/1/x, acct/> matches both, and acct/1 only itself.
"*" and ">" stand alone as a segment (acct* is refused). Events without a
subject are not bound by them; which events the token may read stays with
--subscribe. At most 100 patterns; an admin token holds every subject.

On an open server (no token yet) the first token must be --admin: once it
exists every call needs a token, and only an admin can create the others.`,
		Example: `  herald tokens create --identity transcriber --publish 'transcript.>' --subscribe 'recording.>' --rate 100
  herald tokens create --identity biller --publish 'billing.>' --subjects 'acct/*,ledger/>'
  export HERALD_TOKEN=$(herald tokens create --identity ops --admin)`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.Identity == "" {
				return usageError{fmt.Errorf("--identity is required")}
			}
			for _, p := range append(append([]string{}, t.Publish...), t.Subscribe...) {
				if err := herald.ValidatePattern(p); err != nil {
					return usageError{fmt.Errorf("pattern %q: %w", p, err)}
				}
			}
			if t.Admin && len(t.Subjects) > 0 {
				return usageError{fmt.Errorf("--subjects: an admin token holds every subject; leave out --admin or --subjects")}
			}
			if len(t.Subjects) > api.MaxTokenSubjects {
				return usageError{fmt.Errorf("--subjects: at most %d patterns", api.MaxTokenSubjects)}
			}
			for _, p := range t.Subjects {
				if err := api.ValidateSubjectPattern(p); err != nil {
					return usageError{fmt.Errorf("--subjects: %s", strings.TrimPrefix(err.Error(), herald.ErrInvalidEvent.Error()+": "))}
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			secret, info, err := c.CreateToken(cmd.Context(), t)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "token %s for %s (shown once: keep it safe)\n", info.ID, info.Identity)
			_, err = fmt.Fprintln(g.stdout, secret)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.Identity, "identity", "", "who the caller is: the source_plugin of its events (required)")
	f.StringSliceVar(&t.Publish, "publish", nil, "name patterns it may publish (repeatable or comma-separated)")
	f.StringSliceVar(&t.Subscribe, "subscribe", nil, "name patterns it may read, stream and subscribe to")
	f.StringSliceVar(&t.Subjects, "subjects", nil, "subject patterns it may publish to and look up, e.g. 'acct/*,ledger/>' (default: every subject)")
	f.BoolVar(&t.Admin, "admin", false, "every right: publish and read every name, and manage schemas, dead letters, subscriptions and tokens")
	f.Float64Var(&t.Rate, "rate", 0, "events (or requests) per second allowed (0: no limit)")
	f.IntVar(&t.Burst, "burst", 0, "how many may come at once above the rate (default: the rate)")
	return cmd
}

func newTokensLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list tokens (never their secrets)",
		Example: `  herald tokens ls`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLine(g.stdout, ts)
			}
			if len(ts) == 0 {
				fmt.Fprintln(g.stderr, "no tokens: the server is open (loopback only)")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tIDENTITY\tADMIN\tPUBLISH\tSUBSCRIBE\tSUBJECTS\tRATE\tCREATED")
			for _, t := range ts {
				rate := "-"
				if t.Rate > 0 {
					rate = fmt.Sprintf("%g/s", t.Rate)
				}
				id := t.ID
				if t.FromConfig {
					id += " (config)"
				}
				subjects := "any"
				if len(t.Subjects) > 0 {
					subjects = strings.Join(t.Subjects, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\n", orDash(id), t.Identity, t.Admin,
					orDash(strings.Join(t.Publish, ",")), orDash(strings.Join(t.Subscribe, ",")), subjects, rate, shortTime(t.CreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tokens as JSON")
	return cmd
}

func newTokensRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "revoke ID",
		ValidArgsFunction: g.complete(false, tokenIDs),
		Aliases:           []string{"rm"},
		Short:             "revoke a token at once",
		Example:           `  herald tokens revoke tok_3f9a...`,
		Args:              args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), a[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "revoked token %s\n", a[0])
			return err
		},
	}
}
