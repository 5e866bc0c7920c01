package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/heraldhq/herald"
)

var _ herald.Sizer = (*Store)(nil)

// Size implements herald.Sizer: the bytes of the database file, its
// write-ahead log and its shared-memory index on disk.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var n int64
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
