package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newExportCmd(g *globals) *cobra.Command {
	var (
		filters eventFilters
		out     string
		raw     bool
	)
	cmd := &cobra.Command{
		Use:   "export [flags]",
		Short: "write stored events as JSON Lines",
		Long: `Write the events stored in the log, oldest first, as JSON Lines: one event
per line, every field kept (id, name, timestamp, data, correlation and
causation ids, subject, ...). The flags of herald events select which.
herald import reads the file back, into this server or another one.

Events come decoded: fields a schema marks sensitive are in clear, and a
copy is beyond the reach of a later herald forget. With --raw they come as
stored, those fields sealed: such a backup opens only in a herald holding
their keys, and forgetting a subject there shreds it in the backup too.

On a terminal a progress counter runs on standard error.`,
		Example: `  herald export > events.jsonl
  herald export --name 'recording.>' --since 2d -o recordings.jsonl
  herald export --raw -o backup.jsonl`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := filters.query(time.Now())
			if err != nil {
				return err
			}
			q.Limit = 1000
			q.Raw = raw
			c, err := g.client()
			if err != nil {
				return err
			}
			w := g.stdout
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			var (
				progress func(int)
				bar      *progressbar.ProgressBar
			)
			if isTerminal(g.stderr) {
				bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(g.stderr),
					progressbar.OptionSetDescription("exporting"), progressbar.OptionShowCount(),
					progressbar.OptionSpinnerType(14), progressbar.OptionClearOnFinish(),
					progressbar.OptionThrottle(100*time.Millisecond))
				progress = func(n int) { bar.Set(n) }
			}
			n, err := c.Export(cmd.Context(), w, q, progress)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return err
			}
			if f, ok := w.(*os.File); ok && w != g.stdout {
				if err := f.Close(); err != nil {
					return err
				}
			}
			return report(g.stderr, "exported %s", plural(n, "event", "events"))
		},
	}
	filters.register(cmd.Flags())
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&raw, "raw", false, "write events as stored, sensitive fields sealed")
	return cmd
}

// report writes a line for a person.
func report(w io.Writer, format string, a ...any) error {
	_, err := fmt.Fprintf(w, format+"\n", a...)
	return err
}
