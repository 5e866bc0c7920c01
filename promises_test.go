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
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), sqlite.WithDurability(sqlite.Normal))
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

type chainStep struct {
	Step int `json:"step"`
}

var chainB = herald.Define[chainStep]("chain.b")

// A child event inherits the correlation and causation of the event being
// handled however its id was chosen: with EventType.New and EventID, with
// NewEvent and then setting ID, with an ID in the literal, or generated.
// The root's correlation is its own id, also when set after NewEvent.
func TestChildEventsInheritCorrelation(t *testing.T) {
	onEachStore(t, func(t *testing.T, b *herald.Bus) {
		ctx := context.Background()
		relay := func(pattern string, next func() (*herald.Event, error)) {
			if _, err := b.Subscribe(ctx, pattern, herald.HandlerFunc(func(ctx context.Context, _ *herald.Event) error {
				e, err := next()
				if err != nil {
					return err
				}
				_, err = b.Publish(ctx, e)
				return err
			}), herald.Durable(strings.ReplaceAll(pattern, ".", "-"))); err != nil {
				t.Fatal(err)
			}
		}
		relay("chain.a", func() (*herald.Event, error) { return chainB.New(chainStep{2}, herald.WithID("chain-b")) })
		relay("chain.b", func() (*herald.Event, error) {
			e, err := herald.NewEvent("chain.c", chainStep{3})
			if err == nil {
				e.ID = "chain-c"
			}
			return e, err
		})
		relay("chain.c", func() (*herald.Event, error) { return &herald.Event{ID: "chain-d", Name: "chain.d"}, nil })
		relay("chain.d", func() (*herald.Event, error) { return herald.NewEvent("chain.e", chainStep{5}) })
		done := make(chan struct{})
		if _, err := b.Subscribe(ctx, "chain.e", herald.HandlerFunc(func(context.Context, *herald.Event) error {
			close(done)
			return nil
		})); err != nil {
			t.Fatal(err)
		}

		root, err := herald.NewEvent("chain.a", chainStep{1})
		if err != nil {
			t.Fatal(err)
		}
		root.ID = "chain-a"
		if _, err := b.Publish(ctx, root); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the chain did not reach chain.e")
		}
		tr, err := b.Trace(ctx, "chain-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Events) != 5 {
			var names []string
			for _, te := range tr.Events {
				names = append(names, te.Event.Name)
			}
			t.Fatalf("trace of chain-a has %v, want the 5 events", names)
		}
		for i, te := range tr.Events {
			want := ""
			if i > 0 {
				want = tr.Events[i-1].Event.ID
			}
			if te.Event.CausationID != want {
				t.Errorf("%s: causation %q, want %q", te.Event.Name, te.Event.CausationID, want)
			}
		}
	})
}

// Publishing an id again reports the duplicate (ReportDuplicate) and
// stores nothing; the same id with other content is ErrConflict.
func TestPublishDuplicateAndConflict(t *testing.T) {
	onEachStore(t, func(t *testing.T, b *herald.Bus) {
		ctx := context.Background()
		ev := func() *herald.Event {
			return &herald.Event{ID: "order-1", Name: "order.placed", Subject: "order/1", Data: []byte(`{"total": 12, "currency":"EUR"}`)}
		}
		var dup bool
		first, err := b.Publish(ctx, ev(), herald.ReportDuplicate(&dup))
		if err != nil || dup {
			t.Fatalf("first publish: %d, duplicate %t, %v", first, dup, err)
		}
		// The same content (the data's JSON spelled differently) again.
		again := ev()
		again.Data = []byte(`{"currency":"EUR","total":12}`)
		again.Metadata = map[string]string{"traceparent": "00-retry"}
		pos, err := b.Publish(ctx, again, herald.ReportDuplicate(&dup))
		if err != nil || !dup || pos != first {
			t.Fatalf("same id, same content: %d (first %d), duplicate %t, %v", pos, first, dup, err)
		}
		for what, change := range map[string]func(e *herald.Event){
			"name":    func(e *herald.Event) { e.Name = "order.cancelled" },
			"data":    func(e *herald.Event) { e.Data = []byte(`{"total": 13, "currency":"EUR"}`) },
			"subject": func(e *herald.Event) { e.Subject = "order/2" },
			"version": func(e *herald.Event) { e.Version = 2 },
		} {
			e := ev()
			change(e)
			if _, err := b.Publish(ctx, e); !errors.Is(err, herald.ErrConflict) {
				t.Errorf("same id, other %s: %v, want ErrConflict", what, err)
			}
			e = ev()
			change(e)
			if _, err := b.PublishBatch(ctx, []*herald.Event{{Name: "order.noted"}, e}); !errors.Is(err, herald.ErrConflict) {
				t.Errorf("batch with the same id, other %s: %v, want ErrConflict", what, err)
			}
		}
		n := 0
		for _, err := range b.Store().Read(ctx, 0, herald.Filter{Name: "order.placed"}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%d order.placed events stored, want 1", n)
		}
	})
}
