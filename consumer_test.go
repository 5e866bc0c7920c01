package herald

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// sharedMem is a memory store with a minimal SharedStore: one cursor per
// consumer name, shared by every bus that uses the store, with redelivery
// after Nak. It stands in for JetStream to test the bus's side.
type sharedMem struct {
	*MemoryStore
	mu        sync.Mutex
	consumers map[string]*sharedConsumer
}

func (s *sharedMem) Consume(ctx context.Context, sub, pattern string, start Start, opts ConsumeOptions) (Consumer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.consumers[sub]; ok {
		return &consumerHandle{c}, nil
	}
	cp, err := start.resolve(ctx, s.MemoryStore)
	if err != nil {
		return nil, err
	}
	c := &sharedConsumer{st: s, pattern: pattern, cursor: cp, attempts: map[string]int{}, acked: map[string]int{}}
	s.consumers[sub] = c
	return &consumerHandle{c}, nil
}

type sharedConsumer struct {
	st      *sharedMem
	pattern string

	mu       sync.Mutex
	cursor   uint64
	later    []*memDelivery
	attempts map[string]int
	acked    map[string]int
}

type consumerHandle struct{ c *sharedConsumer }

func (h *consumerHandle) Close() error { return nil }

func (h *consumerHandle) Fetch(ctx context.Context, max int) ([]Delivery, error) {
	c := h.c
	for {
		var out []Delivery
		c.mu.Lock()
		now := time.Now()
		keep := c.later[:0]
		for _, d := range c.later {
			if len(out) < max && !d.due.After(now) {
				c.attempts[d.e.ID]++
				out = append(out, &memDelivery{c: c, e: d.e, attempt: c.attempts[d.e.ID]})
			} else {
				keep = append(keep, d)
			}
		}
		c.later = keep
		for e, err := range c.st.Read(ctx, c.cursor, Filter{Name: c.pattern, Limit: max - len(out)}) {
			if err != nil {
				c.mu.Unlock()
				return nil, err
			}
			c.cursor = e.Position
			c.attempts[e.ID]++
			out = append(out, &memDelivery{c: c, e: e, attempt: c.attempts[e.ID]})
		}
		cursor := c.cursor
		c.mu.Unlock()
		if len(out) > 0 || max <= 0 {
			return out, nil
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		_, err := c.st.Wait(wctx, cursor)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
}

type memDelivery struct {
	c       *sharedConsumer
	e       *Event
	attempt int
	due     time.Time
}

func (d *memDelivery) Event() *Event                        { return d.e }
func (d *memDelivery) Attempt() int                         { return d.attempt }
func (d *memDelivery) InProgress(ctx context.Context) error { return nil }

func (d *memDelivery) Ack(ctx context.Context) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.acked[d.e.ID]++
	return nil
}

func (d *memDelivery) Nak(ctx context.Context, delay time.Duration) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	d.c.later = append(d.c.later, &memDelivery{e: d.e, due: time.Now().Add(delay)})
	return nil
}

func TestDurableSubscriptionOnSharedStore(t *testing.T) {
	st := &sharedMem{MemoryStore: sharedStore(t), consumers: map[string]*sharedConsumer{}}
	var handled sync.Map
	var calls atomic.Int32
	h := func(ctx context.Context, e *Event) error {
		calls.Add(1)
		ec, _ := FromContext(ctx)
		switch e.Name {
		case "job.bad":
			return Permanent(errors.New("malformed job"))
		case "job.flaky":
			if ec.Attempt == 1 {
				return Temporary(errors.New("busy"))
			}
		}
		n, _ := handled.LoadOrStore(e.ID, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return nil
	}
	// Two processes share the durable subscription "workers".
	b1 := newBus(t, WithStore(st))
	b2 := newBus(t, WithStore(st))
	opts := []SubscribeOption{Durable("workers"), Backoff(time.Millisecond, 2*time.Millisecond), Concurrency(2)}
	mustSubscribe(t, b1, "job.>", h, opts...)
	mustSubscribe(t, b2, "job.>", h, opts...)
	var ids []string
	for i := range 40 {
		name := "job.ok"
		switch i {
		case 7:
			name = "job.bad"
		case 13, 21:
			name = "job.flaky"
		}
		e := ev(name, "", "")
		mustPublish(t, b1, e)
		if name != "job.bad" {
			ids = append(ids, e.ID)
		}
	}
	testwait.For(t, "every event handled", func() bool {
		n := 0
		handled.Range(func(any, any) bool { n++; return true })
		return n == len(ids)
	})
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b1, "workers")) == 1 })
	c := st.consumers["workers"]
	testwait.For(t, "acks", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.acked) == 40
	})
	for _, id := range ids {
		n, _ := handled.Load(id)
		if got := n.(*atomic.Int32).Load(); got != 1 {
			t.Fatalf("event %s handled %d times", id, got)
		}
	}
	if got := calls.Load(); got != 42 {
		t.Fatalf("%d handler calls, want 40 + 2 retries", got)
	}
	testwait.For(t, "outcomes", func() bool {
		outs, _ := b2.Outcomes(context.Background(), OutcomeQuery{Subscription: "workers"})
		return len(outs) == 40
	})
	if _, err := b1.Reset(context.Background(), "workers", StartEarliest); err == nil {
		t.Fatal("Reset on a shared store must fail")
	}
}
