package herald_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// onEachStore runs f with a new bus on the memory store and on a SQLite file.
func onEachStore(t *testing.T, f func(t *testing.T, b *herald.Bus)) {
	t.Run("memory", func(t *testing.T) { f(t, newTypedBus(t)) })
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.Durability(sqlite.Normal))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, newTypedBus(t, herald.WithStore(st)))
	})
}

// positions collects the positions a handler sees until it has n of them.
type positions struct {
	mu   sync.Mutex
	got  []uint64
	n    int
	full chan struct{}
}

func newPositions(n int) *positions { return &positions{n: n, full: make(chan struct{})} }

func (p *positions) Handle(_ context.Context, e *herald.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, e.Position)
	if len(p.got) == p.n {
		close(p.full)
	}
	return nil
}

func (p *positions) wait(t *testing.T) []uint64 {
	t.Helper()
	select {
	case <-p.full:
	case <-time.After(10 * time.Second):
		t.Fatalf("handled %d of %d events", len(p.got), p.n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// Concurrency(1), the default, hands events to the handler in log order,
// whether they have a subject or not.
func TestConcurrencyOneIsLogOrder(t *testing.T) {
	onEachStore(t, func(t *testing.T, b *herald.Bus) {
		ctx := context.Background()
		publish := func(from, to int) []uint64 {
			var want []uint64
			for i := from; i <= to; i++ {
				e := &herald.Event{Name: "order.step"}
				if i%2 == 1 {
					e.Subject = "order/1"
				}
				if i%4 == 3 {
					e.Subject = "order/2"
				}
				pos, err := b.Publish(ctx, e)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, pos)
			}
			return want
		}
		// Durable: the events are in the log before it starts.
		want := publish(1, 20)
		p := newPositions(20)
		if _, err := b.Subscribe(ctx, "order.>", p, herald.Durable("in-order")); err != nil {
			t.Fatal(err)
		}
		if got := p.wait(t); !slices.Equal(got, want) {
			t.Errorf("durable: handled %v, want %v", got, want)
		}
		// Ephemeral: the events queue up behind a first one that waits.
		gate := make(chan struct{})
		q := newPositions(21)
		first := true
		if _, err := b.Subscribe(ctx, "order.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
			if first {
				first = false
				<-gate
			}
			return q.Handle(ctx, e)
		})); err != nil {
			t.Fatal(err)
		}
		want = publish(21, 41)
		close(gate)
		if got := q.wait(t); !slices.Equal(got, want) {
			t.Errorf("ephemeral: handled %v, want %v", got, want)
		}
	})
}

// Durable("") is refused rather than making an ephemeral subscription.
func TestDurableEmptyNameIsAnError(t *testing.T) {
	onEachStore(t, func(t *testing.T, b *herald.Bus) {
		s, err := b.Subscribe(context.Background(), "a.b", herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil }), herald.Durable(""))
		if err == nil {
			t.Fatalf("Durable(\"\") made subscription %s", s.Name())
		}
	})
}

// A second durable subscription of a running name says that the name is
// taken, not that a subject version does not match.
func TestDuplicateDurableNameSaysSo(t *testing.T) {
	onEachStore(t, func(t *testing.T, b *herald.Bus) {
		ctx := context.Background()
		h := herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil })
		if _, err := b.Subscribe(ctx, "a.b", h, herald.Durable("billing")); err != nil {
			t.Fatal(err)
		}
		_, err := b.Subscribe(ctx, "a.b", h, herald.Durable("billing"))
		if !errors.Is(err, herald.ErrConflict) {
			t.Fatalf("second Durable(billing): %v, want ErrConflict", err)
		}
		if msg := err.Error(); strings.Contains(msg, "version") || !strings.Contains(msg, "billing") || !strings.Contains(msg, "already running") {
			t.Fatalf("second Durable(billing) says %q", msg)
		}
	})
}
