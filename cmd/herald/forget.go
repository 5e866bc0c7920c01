package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newForgetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "forget SUBJECT",
		Short: "erase a subject's sensitive data for good (crypto-shredding)",
		Long: `Forget a subject: erase, for good, the sensitive fields of every event about
it, such as the personal data of "customer/42".

A field is sensitive when the JSON Schema of its event marks it with
"x-sensitive": true. The server stores such fields encrypted, with one key
per subject. Forgetting a subject deletes its key (crypto-shredding): the
events stay in the log, with their other fields, but their sensitive fields
can never be decrypted again and read as null, on replicas too. The keys
are kept in the store next to the log, so a backup of the store taken
before the forget can still decrypt them; and what a reader already fetched
in clear (with herald events or herald export, say) is not reached.

There is no undo. Events of the subject published afterwards get a new key
and read normally. Forgetting a subject the server never saw is not an
error. This needs an admin token.`,
		Example: `  herald forget customer/42`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			subject := a[0]
			if subject == "" {
				return usageError{errors.New("the subject is empty")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Forget(cmd.Context(), subject); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "forgot %s: its sensitive fields now read as null\n", subject)
			return err
		},
	}
}
