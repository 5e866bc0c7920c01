package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

func newImportCmd(g *globals) *cobra.Command {
	var batch int
	cmd := &cobra.Command{
		Use:   "import [FILE|-]",
		Short: "publish events from a JSON Lines file",
		Long: `Publish the events of a JSON Lines file (what herald export and
herald tail --json write; standard input when FILE is - or missing), in
atomic batches. Events keep their ids, so importing the same file twice
stores each event once: the second run reports them as already stored.
They get new positions in this server's log. On an authenticated server
their source_plugin becomes the token's identity.

On a terminal a progress bar runs on standard error.`,
		Example: `  herald import events.jsonl
  herald --server http://new-host:7480 import < events.jsonl
  herald export --server http://old:7480 | herald import --server http://new:7480 -`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var (
				r    io.Reader = g.stdin
				size int64     = -1
			)
			if len(a) == 1 && a[0] != "-" {
				f, err := os.Open(a[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
					size = st.Size()
				}
				r = f
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			if isTerminal(g.stderr) {
				bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(g.stderr),
					progressbar.OptionSetDescription("importing"), progressbar.OptionShowBytes(true),
					progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
				pr := progressbar.NewReader(r, bar)
				r = &pr
			}
			res, err := c.Import(cmd.Context(), r, client.ImportBatchSize(batch))
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return fmt.Errorf("import stopped after %s: %w", plural(res.Stored+res.Duplicates, "event", "events"), err)
			}
			return report(g.stderr, "imported %s: %d stored, %d already present",
				plural(res.Read, "event", "events"), res.Stored, res.Duplicates)
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 500, "events per request (at most the server's batch limit, 1000 by default)")
	return cmd
}
