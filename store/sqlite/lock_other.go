//go:build !unix

package sqlite

import (
	"fmt"
	"os"
)

// lockFile creates path and holds it open. On systems without flock the
// store does not guard against a second process: run one herald per file.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot create the lock file: %w", err)
	}
	return f, nil
}
