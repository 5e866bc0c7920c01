package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newHealthCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "check that the server process answers (GET /healthz)",
		Long: `GET /healthz of --server and exit 0 when it answers 200, 1 otherwise
(refused, timed out or any other status). /healthz needs no token.

This is the container image's HEALTHCHECK: the image holds no shell and no
curl. To know whether the server is also ready to serve (its store
answers), use herald status, which asks /readyz.`,
		Example: `  herald health
  herald health --server http://127.0.0.1:7480 --timeout 2s`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			url := strings.TrimSuffix(g.server, "/") + "/healthz"
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageError{fmt.Errorf("--server %q: %w", g.server, err)}
			}
			resp, err := g.hc.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", url, unwrapURLError(err))
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s", url, resp.Status)
			}
			fmt.Fprintln(g.stdout, "healthy")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}
