package herald_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// slowDisk is a store whose appends of events named "slow.*" take until
// release is closed, after the store assigned their positions: a disk
// that takes its time.
type slowDisk struct {
	herald.Store
	stored  chan struct{}
	release chan struct{}
}

func (s *slowDisk) Append(ctx context.Context, evs []*herald.Event, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	res, err := s.Store.Append(ctx, evs, opts)
	if len(evs) > 0 && strings.HasPrefix(evs[0].Name, "slow.") {
		s.stored <- struct{}{}
		<-s.release
	}
	return res, err
}

// A publisher whose append is slow holds no other publisher, even while an
// ephemeral subscription exists; the subscription still gets the events in
// log order.
func TestPublishHoldsNoLockAcrossAppend(t *testing.T) {
	disk := &slowDisk{Store: herald.NewMemoryStore(), stored: make(chan struct{}), release: make(chan struct{})}
	defer disk.Store.Close()
	b := newTypedBus(t, herald.WithStore(disk))
	ctx := context.Background()
	got := make(chan uint64, 2)
	if _, err := b.Subscribe(ctx, ">", herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
		got <- e.Position
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := b.Publish(ctx, &herald.Event{Name: "slow.write"})
		slowDone <- err
	}()
	<-disk.stored // position 1 is taken; its append has not returned

	// A lock held across the append would keep this publish waiting until
	// the slow one returns, which it does not before the deadline.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pos, err := b.Publish(fctx, &herald.Event{Name: "fast.write"})
	if err != nil {
		t.Fatalf("a publish behind a slow append: %v", err)
	}
	if pos != 2 {
		t.Fatalf("fast publish at %d, want 2", pos)
	}
	close(disk.release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if a, b := <-got, <-got; a != 1 || b != 2 {
		t.Fatalf("handled positions %d, %d; want 1, 2 (log order)", a, b)
	}
}

// Many publishers at once: every ephemeral subscription gets the events in
// log order, on memory and SQLite.
func TestPublishConcurrentKeepsLogOrder(t *testing.T) {
	stores := map[string]func(t *testing.T) herald.Store{
		"memory": func(t *testing.T) herald.Store { return nil },
		"sqlite": func(t *testing.T) herald.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.WithDurability(sqlite.Normal))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			// Publishers wait for room in the subscriptions' buffers; a
			// loaded machine may keep a subscription from taking an event
			// for longer than the default 5 s, which is not what this
			// test is about.
			b := newTypedBus(t, herald.WithStore(open(t)), herald.WithPublishTimeout(time.Minute))
			ctx := context.Background()
			const publishers, each = 8, 150
			var mu sync.Mutex
			var seen [2][]uint64
			var total int
			all := make(chan struct{})
			for k := range 2 {
				if _, err := b.Subscribe(ctx, "order.>", herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
					mu.Lock()
					defer mu.Unlock()
					seen[k] = append(seen[k], e.Position)
					if total++; total == 2*publishers*each {
						close(all)
					}
					return nil
				}), herald.BufferSize(16)); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					for i := range each {
						e := &herald.Event{Name: "order.placed"}
						if i%3 == 0 {
							e.Subject = "order/" + string(rune('a'+p))
						}
						if _, err := b.Publish(ctx, e); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			select {
			case <-all:
			case <-time.After(60 * time.Second):
				t.Fatal("not every event was handled")
			}
			mu.Lock()
			defer mu.Unlock()
			for k := range seen {
				for i := 1; i < len(seen[k]); i++ {
					if seen[k][i] <= seen[k][i-1] {
						t.Fatalf("subscription %d handled position %d after %d", k, seen[k][i], seen[k][i-1])
					}
				}
			}
		})
	}
}

// panickyDisk panics on the append of events named "boom.*", as a store
// with a bug would.
type panickyDisk struct{ herald.Store }

func (s *panickyDisk) Append(ctx context.Context, evs []*herald.Event, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	if strings.HasPrefix(evs[0].Name, "boom.") {
		panic("store bug")
	}
	return s.Store.Append(ctx, evs, opts)
}

// A store that panics in Append (a caller such as net/http recovers it)
// leaves ephemeral delivery and the subscription's room as they were.
func TestPublishSurvivesAPanickingStore(t *testing.T) {
	disk := &panickyDisk{Store: herald.NewMemoryStore()}
	defer disk.Store.Close()
	b := newTypedBus(t, herald.WithStore(disk))
	ctx := context.Background()
	got := make(chan string, 4)
	if _, err := b.Subscribe(ctx, ">", herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
		got <- e.Name
		return nil
	}), herald.BufferSize(1)); err != nil {
		t.Fatal(err)
	}
	for _, batch := range []bool{false, true} {
		func() {
			defer func() { _ = recover() }()
			if batch {
				b.PublishBatch(ctx, []*herald.Event{{Name: "boom.batch"}})
			} else {
				b.Publish(ctx, &herald.Event{Name: "boom.one"})
			}
		}()
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range []string{"after.one", "after.two"} {
		if _, err := b.Publish(pctx, &herald.Event{Name: name}); err != nil {
			t.Fatalf("publish after the panics: %v", err)
		}
		select {
		case n := <-got:
			if n != name {
				t.Fatalf("handled %s, want %s", n, name)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s was not delivered after the store panicked", name)
		}
	}
}
