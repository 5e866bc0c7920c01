//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/heraldhq/herald"
)

// lockFile takes an exclusive, non-blocking flock on path. The lock lasts
// until the returned file is closed or the process ends, however it ends.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot create the lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by another herald process; stop that process or give this one another data directory", herald.ErrStoreLocked, path)
		}
		return nil, fmt.Errorf("sqlite: cannot lock the store: %w", err)
	}
	return f, nil
}
