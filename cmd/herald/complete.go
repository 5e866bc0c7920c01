package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

// completeTimeout bounds how long a shell's tab waits for the server.
const completeTimeout = 2 * time.Second

// completion is a function that lists candidates from the server.
type completion func(ctx context.Context, c *client.Client) ([]string, error)

// complete turns list into a cobra ValidArgsFunction that completes the
// first argument (or every argument, when many is set) from the server
// given by --server and --token, filtered by what was typed so far. A
// server that cannot be reached completes nothing and says nothing: a
// shell's tab must never print errors.
func (g *globals) complete(many bool, list completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && !many {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := g.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
		defer cancel()
		names, err := list(ctx, c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) && !containsString(args, n) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func subscriptionNames(ctx context.Context, c *client.Client) ([]string, error) {
	subs, err := c.Subscriptions(ctx)
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.Name)
	}
	return out, err
}

func deadLetterIDs(ctx context.Context, c *client.Client) ([]string, error) {
	dls, err := c.DeadLetters(ctx, client.DeadLetterQuery{Limit: 1000})
	out := make([]string, 0, len(dls))
	for _, d := range dls {
		out = append(out, d.ID)
	}
	return out, err
}

func schemaNames(ctx context.Context, c *client.Client) ([]string, error) {
	refs, err := c.Schemas(ctx)
	var out []string
	for _, r := range refs {
		if !containsString(out, r.Name) {
			out = append(out, r.Name)
		}
	}
	return out, err
}

func tokenIDs(ctx context.Context, c *client.Client) ([]string, error) {
	toks, err := c.Tokens(ctx)
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		if !t.FromConfig {
			out = append(out, t.ID)
		}
	}
	return out, err
}

// schemaVersions completes `schemas get NAME VERSION`: names first, then
// the versions of the name given.
func (g *globals) completeSchema() cobra.CompletionFunc {
	names := g.complete(false, schemaNames)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return names(cmd, args, toComplete)
		}
		if len(args) > 1 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return g.complete(false, func(ctx context.Context, c *client.Client) ([]string, error) {
			refs, err := c.Schemas(ctx)
			var out []string
			for _, r := range refs {
				if r.Name == args[0] {
					out = append(out, strconv.Itoa(r.Version))
				}
			}
			return out, err
		})(cmd, nil, toComplete)
	}
}
