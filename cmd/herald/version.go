package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildVersion describes the running binary from its build information:
// the module version, the VCS revision and time, and the Go version.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "herald (unknown version)"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	out := "herald " + v
	if rev != "" {
		out += fmt.Sprintf(" (%s%s", rev, dirty)
		if at != "" {
			out += ", " + at
		}
		out += ")"
	}
	return out + " " + info.GoVersion
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print herald's version",
		Long:    `Print the version of this herald binary: its module version, the commit it was built from, and the Go version.`,
		Example: `  herald version`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(g.stdout, buildVersion(debug.ReadBuildInfo()))
			return err
		},
	}
}
