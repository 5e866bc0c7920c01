package sqlite

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/heraldhq/herald"
)

// Size is the database's files on disk, and grows as events are appended.
func TestSize(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	before, err := s.Size(ctx)
	if err != nil || before <= 0 {
		t.Fatalf("Size = %d, %v", before, err)
	}
	var evs []*herald.Event
	for range 200 {
		evs = append(evs, ev(t, "size.test"))
	}
	if _, err := s.Append(ctx, evs, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := s.Size(ctx)
	if err != nil || after <= before {
		t.Fatalf("Size after 200 events = %d (was %d), %v", after, before, err)
	}
	var files int64
	for _, p := range []string{s.Path(), s.Path() + "-wal", s.Path() + "-shm"} {
		if fi, err := os.Stat(p); err == nil {
			files += fi.Size()
		}
	}
	if after != files {
		t.Errorf("Size = %d, the files hold %d", after, files)
	}
	s.Close()
	if _, err := s.Size(ctx); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("Size after Close: %v", err)
	}
}
