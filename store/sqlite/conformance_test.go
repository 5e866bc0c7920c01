package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestConformance runs the Store suite at the default durability, Full.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), WithDurability(Full))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Features{
		KeepsDeletedIDs: true,
		Reopen: func(t *testing.T, closed herald.Store) herald.Store {
			s, err := Open(context.Background(), closed.(*Store).Path(), WithDurability(Full))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		OpenSecond: func(t *testing.T, s herald.Store) (herald.Store, error) {
			return Open(context.Background(), s.(*Store).Path())
		},
		DataDir: func(t *testing.T, s herald.Store) string { return filepath.Dir(s.(*Store).Path()) },
	})
}
