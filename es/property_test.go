package es_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

// TestRepositoryProperties drives two repositories (two processes, as far
// as their caches go) over one store with random saves, updates and
// evictions, against a model of every subject's history:
//   - a save succeeds exactly when it states the subject's current version;
//   - a repository without a cache always loads the model's current state;
//   - a cached repository loads a state the subject really had, never a
//     newer version than the model's, and is current after its own save.
func TestRepositoryProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		st := herald.NewMemoryStore()
		defer st.Close()
		bus, err := herald.New(herald.WithStore(st))
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close(ctx)
		snap := rapid.IntRange(0, 4).Draw(t, "snapshotEvery")
		repos := []*es.Repository[account]{}
		for i := range 2 {
			size := rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("cacheSize%d", i))
			r, err := es.NewRepository(bus, applyAccount, es.WithCacheSize(size), es.WithSnapshotEvery(snap))
			if err != nil {
				t.Fatal(err)
			}
			repos = append(repos, r)
		}
		fresh, _ := es.NewRepository(bus, applyAccount, es.WithCacheSize(0), es.WithSnapshotEvery(0))
		// history[s][v] is subject s's balance at version v.
		history := map[string][]int64{}
		subjects := []string{"a/1", "a/2", "a/3"}
		for _, s := range subjects {
			history[s] = []int64{0}
		}
		cur := func(s string) (uint64, int64) {
			h := history[s]
			return uint64(len(h) - 1), h[len(h)-1]
		}

		for range rapid.IntRange(1, 60).Draw(t, "ops") {
			s := rapid.SampledFrom(subjects).Draw(t, "subject")
			r := repos[rapid.IntRange(0, 1).Draw(t, "repo")]
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0: // save at the version this repository loads
				st, v, err := r.Load(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				mv, _ := cur(s)
				if v > mv || history[s][v] != st.Balance {
					t.Fatalf("%s: loaded %d@%d, never was (history %v)", s, st.Balance, v, history[s])
				}
				n := rapid.IntRange(1, 3).Draw(t, "events")
				events := make([]*herald.Event, n)
				for i := range events {
					events[i] = deposit(t)
				}
				nv, err := r.Save(ctx, s, v, events...)
				switch {
				case v == mv && err == nil:
					if nv != mv+uint64(n) {
						t.Fatalf("save returned version %d, want %d", nv, mv+uint64(n))
					}
					for range n {
						history[s] = append(history[s], history[s][len(history[s])-1]+1)
					}
					if st, v, _ := r.Load(ctx, s); v != nv || st.Balance != history[s][nv] {
						t.Fatalf("after its own save a repository loads %d@%d", st.Balance, v)
					}
				case v != mv && errors.Is(err, herald.ErrConflict):
				default:
					t.Fatalf("save at %d with the subject at %d: %v", v, mv, err)
				}
			case 1: // update: always lands
				if _, err := r.Update(ctx, s, func(account, uint64) ([]*herald.Event, error) {
					return []*herald.Event{deposit(t)}, nil
				}); err != nil {
					t.Fatal(err)
				}
				history[s] = append(history[s], history[s][len(history[s])-1]+1)
			case 2:
				r.Evict(s)
			case 4: // save at the current version, learnt elsewhere
				mv, _ := cur(s)
				nv, err := r.Save(ctx, s, mv, deposit(t))
				if err != nil || nv != mv+1 {
					t.Fatalf("save at the current version %d: %d %v", mv, nv, err)
				}
				history[s] = append(history[s], history[s][len(history[s])-1]+1)
				if st, v, _ := r.Load(ctx, s); v != nv || st.Balance != history[s][nv] {
					t.Fatalf("after its own save a repository loads %d@%d, want %d@%d", st.Balance, v, history[s][nv], nv)
				}
			case 3: // a stale version is refused
				mv, _ := cur(s)
				if mv == 0 {
					continue
				}
				_, err := r.Save(ctx, s, mv-1, deposit(t))
				if !errors.Is(err, herald.ErrConflict) {
					t.Fatalf("save at stale version %d: %v", mv-1, err)
				}
			}
			for _, s := range subjects {
				st, v, err := fresh.Load(ctx, s)
				mv, mb := cur(s)
				if err != nil || v != mv || st.Balance != mb {
					t.Fatalf("%s: fresh load %d@%d, model %d@%d (%v)", s, st.Balance, v, mb, mv, err)
				}
			}
		}
	})
}

func deposit(t *rapid.T) *herald.Event {
	e, err := herald.NewEvent("account.deposited", amount{Cents: 1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
