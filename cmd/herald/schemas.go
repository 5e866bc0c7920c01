package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
)

func newSchemasCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "register and read the JSON Schemas of event data",
		Long: `A JSON Schema registered for an event name and version is checked against
the data of every event published with that name and version (version 1
unless the event says otherwise); events that do not satisfy it are refused
with schema_violation, naming the field. Registering needs an admin token.`,
		Example: `  herald schemas put recording.completed 1 recording-completed.schema.json
  herald schemas get recording.completed 1
  herald schemas ls`,
	}
	cmd.AddCommand(newSchemasPutCmd(g), newSchemasGetCmd(g), newSchemasLsCmd(g))
	return cmd
}

// schemaArgs reads NAME VERSION.
func schemaArgs(a []string) (string, int, error) {
	if err := herald.ValidateName(a[0]); err != nil {
		return "", 0, usageError{fmt.Errorf("NAME: %w", err)}
	}
	v, err := strconv.Atoi(a[1])
	if err != nil || v < 1 {
		return "", 0, usageError{fmt.Errorf("VERSION must be a positive integer, not %q", a[1])}
	}
	return a[0], v, nil
}

func newSchemasPutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "put NAME VERSION FILE|-",
		Short: "register the JSON Schema of an event name and version",
		Long: `Register the JSON Schema in FILE (or standard input, -) for the data of
events named NAME with version VERSION, replacing any earlier one.`,
		Example: `  herald schemas put recording.completed 1 recording-completed.schema.json
  cat schema.json | herald schemas put recording.completed 2 -`,
		Args: args(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, v, err := schemaArgs(a)
			if err != nil {
				return err
			}
			src := a[2]
			if src != "-" {
				src = "@" + src
			}
			raw, err := readArg(src, g.stdin)
			if err != nil {
				return usageError{fmt.Errorf("reading the schema: %w", err)}
			}
			if !json.Valid(raw) {
				return usageError{fmt.Errorf("the schema is not valid JSON")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.PutSchema(cmd.Context(), name, v, raw); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "registered the schema of %s version %d\n", name, v)
			return err
		},
	}
}

func newSchemasGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "get NAME VERSION",
		ValidArgsFunction: g.completeSchema(),
		Short:             "print the JSON Schema of an event name and version",
		Example:           `  herald schemas get recording.completed 1 > recording-completed.schema.json`,
		Args:              args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, v, err := schemaArgs(a)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			raw, err := c.Schema(cmd.Context(), name, v)
			if err != nil {
				return err
			}
			return writeJSONIndent(g.stdout, raw)
		},
	}
}

func newSchemasLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list the registered schemas",
		Example: `  herald schemas ls`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			refs, err := c.Schemas(cmd.Context())
			if err != nil {
				return err
			}
			if len(refs) == 0 {
				fmt.Fprintln(g.stderr, "no schemas: register one with `herald schemas put`")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION")
			for _, r := range refs {
				fmt.Fprintf(tw, "%s\t%d\n", r.Name, r.Version)
			}
			return tw.Flush()
		},
	}
}
