package nats_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
)

// handledLog records, across buses, which bus handled which event, in the
// order the handlers ran.
type handledLog struct {
	mu    sync.Mutex
	order []*herald.Event
	by    map[string]map[string]bool // bus → ids
}

func (h *handledLog) handler(bus string) herald.Handler {
	return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.by[bus] == nil {
			h.by[bus] = map[string]bool{}
		}
		h.by[bus][e.ID] = true
		h.order = append(h.order, e)
		return nil
	})
}

func (h *handledLog) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := map[string]bool{}
	for _, e := range h.order {
		ids[e.ID] = true
	}
	return len(ids)
}

// TestBusesShareDurableSubscription runs two herald buses, each on its own
// connection as two processes would, with one durable subscription: they
// share the events, each subject is handled in log order across both, and
// when one bus closes the other takes over its partitions at once.
func TestBusesShareDurableSubscription(t *testing.T) {
	t.Parallel()
	srv := server(t)
	log := &handledLog{by: map[string]map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var buses []*herald.Bus
	for _, name := range []string{"a", "b"} {
		bus, err := herald.New(herald.WithStore(open(t, srv)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close(context.Background()) })
		if _, err := bus.Subscribe(ctx, "work.>", log.handler(name), herald.Durable("shared"), herald.Concurrency(4)); err != nil {
			t.Fatal(err)
		}
		buses = append(buses, bus)
	}
	var published atomic.Int64
	publish := func(n int) {
		for range n {
			i := published.Add(1)
			e, err := herald.NewEvent("work.item", map[string]int64{"i": i})
			if err != nil {
				t.Error(err)
				return
			}
			e.Subject = fmt.Sprintf("item/%d", i%30)
			if _, err := buses[0].Publish(ctx, e); err != nil {
				t.Error(err)
				return
			}
		}
	}
	handledBy := func() (a, b int) {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.by["a"]), len(log.by["b"])
	}
	// The buses learn of each other from heartbeats the NATS store sends
	// on the real clock (the server is on a real socket), once a second
	// at most, and a partition moves only once its old owner has settled
	// what it pulled: events keep coming until both have handled some.
	testwait.Within(t, 60*time.Second, "both buses handling events", func() bool {
		publish(5)
		a, b := handledBy()
		return a > 0 && b > 0
	})
	// b leaves while events keep coming: a takes over.
	done := make(chan struct{})
	go func() { defer close(done); publish(200) }()
	testwait.Within(t, 30*time.Second, "50 more events handled", func() bool { return int64(log.distinct()) >= published.Load()-150 })
	if err := buses[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	total := int(published.Load())
	testwait.Within(t, 30*time.Second, "every event handled", func() bool { return log.distinct() == total })
	log.mu.Lock()
	defer log.mu.Unlock()
	seen := map[string]bool{}
	last := map[string]uint64{}
	for _, e := range log.order {
		if seen[e.ID] {
			continue // a redelivery
		}
		seen[e.ID] = true
		if p := last[e.Subject]; p > e.Position {
			t.Errorf("subject %s: position %d handled after %d", e.Subject, e.Position, p)
		}
		last[e.Subject] = e.Position
	}
	t.Logf("a handled %d, b handled %d (%d handler calls for %d events)", len(log.by["a"]), len(log.by["b"]), len(log.order), total)
}

// TestReopenedEmbeddedRedeliversAtOnce: after a graceful Bus.Close, closing
// the OpenEmbedded store (which shuts its server down) and opening it
// again, a durable subscription gets the events the first bus had in hand
// at once, not after the ack wait.
func TestReopenedEmbeddedRedeliversAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	st, err := natsstore.OpenEmbedded(ctx, natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()) })
	const n = 500
	var mu sync.Mutex
	handled := map[string]bool{}
	started := make(chan struct{}, 4*n)
	gate := make(chan struct{})
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		started <- struct{}{}
		<-gate
		mu.Lock()
		handled[e.ID] = true
		mu.Unlock()
		return nil
	})
	// A handler timeout of minutes makes the ack wait (handler timeout +
	// 30 s) minutes too, far beyond how long the test waits below.
	const timeout = 5 * time.Minute
	if _, err := bus.Subscribe(ctx, "work.>", h, herald.Durable("w"), herald.Concurrency(2), herald.Timeout(timeout)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		e, err := herald.NewEvent("work.item", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		e.Subject = fmt.Sprintf("item/%d", i%20)
		if _, err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	<-started
	close(gate)
	if err := bus.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := natsstore.OpenEmbedded(ctx, natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	bus2, err := herald.New(herald.WithStore(st2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus2.Close(context.Background()) })
	got := map[string]bool{}
	h2 := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		got[e.ID] = true
		return nil
	})
	reopened := time.Now()
	if _, err := bus2.Subscribe(ctx, "work.>", h2, herald.Durable("w"), herald.Concurrency(4), herald.Timeout(timeout)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	left := 0
	for _, id := range ids {
		if !handled[id] {
			left++
		}
	}
	mu.Unlock()
	// The ack wait is 5.5 minutes: 60 s is far below it and far above a
	// prompt redelivery, on a loaded machine too.
	testwait.Within(t, 60*time.Second, fmt.Sprintf("the %d unhandled events delivered after reopening", left), func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if !handled[id] && !got[id] {
				return false
			}
		}
		return true
	})
	t.Logf("%d events left by the first bus, all delivered %v after reopening", left, time.Since(reopened).Round(time.Millisecond))
}
