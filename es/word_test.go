package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

// snapshotVersion returns the version of subject's snapshot in st (0 when
// it has none).
func snapshotVersion(t *testing.T, st herald.Store, subject string) uint64 {
	t.Helper()
	b, err := st.GetValue(context.Background(), herald.SnapshotBucket, subject)
	if errors.Is(err, herald.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Version uint64 }
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Version
}

// A subject that is only ever saved, never loaded, is snapshotted every
// WithSnapshotEvery events, with the cache on or off.
func TestSaveSnapshots(t *testing.T) {
	for _, cache := range []int{0, es.DefaultCacheSize} {
		t.Run(fmt.Sprintf("cache%d", cache), func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			r := newRepo(t, st, es.WithSnapshotEvery(10), es.WithCacheSize(cache))
			for v := range uint64(35) {
				if _, err := r.Save(ctx, "account/s", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
					t.Fatal(err)
				}
			}
			if n := r.Stats().SnapshotsWritten; n != 3 {
				t.Fatalf("%d snapshots written by 35 saves, want 3", n)
			}
			if v := snapshotVersion(t, st, "account/s"); v != 30 {
				t.Fatalf("snapshot at version %d, want 30", v)
			}
			s, v, err := newRepo(t, st, es.WithSnapshotEvery(10), es.WithCacheSize(0)).Load(ctx, "account/s")
			if err != nil || s.Balance != 35 || v != 35 {
				t.Fatalf("%+v@%d %v", s, v, err)
			}
		})
	}
}

// After a SnapshotSchema change, once retention has deleted the events the
// old snapshot held, Load refuses clearly rather than return a state and a
// version that miss them; with UpgradeSnapshot it loads the real version,
// and saves line up again.
func TestSnapshotSchemaChangeAfterRetention(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	old := newRepo(t, st, es.WithSnapshotEvery(10), es.WithSnapshotSchema(1))
	for v := range uint64(36) {
		if _, err := old.Save(ctx, "account/r", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
			t.Fatal(err)
		}
	}
	if v := snapshotVersion(t, st, "account/r"); v != 30 {
		t.Fatalf("snapshot at %d", v)
	}
	if _, err := herald.Prune(ctx, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 1}}, time.Now(), herald.PruneOptions{}); err != nil {
		t.Fatal(err)
	}

	r := newRepo(t, st, es.WithSnapshotEvery(10), es.WithSnapshotSchema(2))
	if _, v, err := r.Load(ctx, "account/r"); !errors.Is(err, es.ErrIncomplete) {
		t.Fatalf("want ErrIncomplete, got version %d, %v", v, err)
	}
	if _, err := r.Update(ctx, "account/r", func(account, uint64) ([]*herald.Event, error) {
		return []*herald.Event{ev(t, "account.deposited", amount{Cents: 1})}, nil
	}); !errors.Is(err, es.ErrIncomplete) {
		t.Fatalf("Update: want ErrIncomplete, got %v", err)
	}

	up := newRepo(t, st, es.WithSnapshotEvery(10), es.WithSnapshotSchema(2), es.WithSnapshotUpgrade(func(schema int, state []byte) ([]byte, error) {
		if schema != 1 {
			return nil, fmt.Errorf("schema %d", schema)
		}
		return state, nil
	}))
	s, v, err := up.Load(ctx, "account/r")
	if err != nil || v != 36 || s.Balance != 36 {
		t.Fatalf("upgraded: %+v@%d %v", s, v, err)
	}
	if _, err := up.Save(ctx, "account/r", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
		t.Fatalf("a save at the loaded version: %v", err)
	}
}

// A subject pruned with no snapshot to hold its events cannot be rebuilt:
// Load says so instead of returning a version every save conflicts with.
func TestPrunedWithoutSnapshotIsIncomplete(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st, es.WithSnapshotEvery(0), es.WithCacheSize(0))
	for v := range uint64(5) {
		if _, err := r.Save(ctx, "account/p", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := herald.Prune(ctx, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 2}}, time.Now(), herald.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, v, err := r.Load(ctx, "account/p"); !errors.Is(err, es.ErrIncomplete) {
		t.Fatalf("want ErrIncomplete, got version %d, %v", v, err)
	}
}
