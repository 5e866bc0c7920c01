package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// bigEvent is an event whose data is a JSON object of n bytes.
func bigEvent(name string, n int) *Event {
	return &Event{Name: name, Data: json.RawMessage(`{"x":"` + strings.Repeat("x", n-8) + `"}`)}
}

// held reports the events a subscription holds (queued, waiting for a
// retry, or in flight) and its count of their bytes.
func held(s *Subscription) (events int, counted int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.count + s.q.inflight, s.q.heldLocked()
}

// storedSize is the heldSize of the events of b's log (all of one size).
func storedSize(t *testing.T, b *Bus) int64 {
	t.Helper()
	for e, err := range b.store.Read(context.Background(), 0, Filter{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return heldSize(e)
	}
	t.Fatal("empty log")
	return 0
}

// hang is the handler of a webhook whose endpoint does not answer until
// gate is closed.
func hang(gate chan struct{}) HandlerFunc {
	return func(ctx context.Context, e *Event) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestReadAheadBoundedByBytes: durable subscriptions whose handler hangs
// (a webhook to an endpoint that never answers), started one after the
// other with a high concurrency, each hold at most their read-ahead bound
// of events in bytes, and together at most the bus's total (plus one event
// each: a subscription that holds nothing may always take one), however
// large the events. A healthy subscription beside them still delivers
// everything; once the handler answers, every event is delivered and
// nothing stays held. Before the bound, each held 1,024 events read ahead
// (here the whole 24 MB log).
func TestReadAheadBoundedByBytes(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testReadAheadBoundedByBytes(t, shared) })
		})
	}
}

func testReadAheadBoundedByBytes(t *testing.T, shared bool) {
	const (
		perSub = 4 << 20
		total  = 10 << 20
		size   = 200_000
		n      = 120
		hung   = 4
	)
	var st Store = sharedStore(t)
	if shared {
		st = &sharedMem{MemoryStore: st.(*MemoryStore), consumers: map[string]*sharedConsumer{}}
	}
	b := newBus(t, WithStore(st), WithReadAhead(perSub, total))
	for i := range n {
		mustPublish(t, b, bigEvent(fmt.Sprintf("big.%d", i%7), size))
	}
	gate := make(chan struct{})
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	var subs []*Subscription
	for i := range hung {
		subs = append(subs, mustSubscribe(t, b, "big.>", hang(gate),
			Durable(fmt.Sprintf("hung-%d", i)), Concurrency(1024), Timeout(time.Hour)))
		synctest.Wait() // it read what it may
	}
	healthy := mustSubscribe(t, b, "big.>", func(ctx context.Context, e *Event) error { return nil },
		Durable("healthy"), Concurrency(4))
	synctest.Wait()

	// Five durable subscriptions share 10 MiB: 2 MiB each, under the
	// 4 MiB of one. Those started first took more while they were fewer.
	if got, want := b.readAheadBound(), min(int64(perSub), int64(total)/int64(hung+1)); got != want {
		t.Fatalf("bound %d, want %d", got, want)
	}
	evSize := storedSize(t, b)
	var sum int64
	for i, s := range subs {
		evs, counted := held(s)
		bytes := int64(evs) * evSize
		t.Logf("%s holds %d events (%d bytes)", s.Name(), evs, bytes)
		if bytes > perSub || bytes != counted {
			t.Fatalf("%s holds %d events, %d bytes (counted %d), over its bound of %d", s.Name(), evs, bytes, counted, perSub)
		}
		if st := s.Stats(); st.InFlight != evs {
			t.Fatalf("%s: %d in flight of %d held, want all of them (its concurrency is 1,024)", s.Name(), st.InFlight, evs)
		}
		if i == 0 && evs != perSub/int(evSize) {
			t.Fatalf("%s, alone at first, holds %d events, want the %d that fit its bound", s.Name(), evs, perSub/int(evSize))
		}
		sum += counted
	}
	if sum > total+hung*evSize || b.readAheadHeld.Load() != sum {
		t.Fatalf("the hung subscriptions hold %d bytes together (the bus counts %d), over the total of %d", sum, b.readAheadHeld.Load(), total)
	}
	if st := healthy.Stats(); st.Handled != n {
		t.Fatalf("the healthy subscription handled %d of %d events beside the hung ones", st.Handled, n)
	}

	close(gate) // the endpoint answers
	synctest.Wait()
	for _, s := range append(subs, healthy) {
		if st := s.Stats(); st.Handled != n || st.Failed != 0 {
			t.Fatalf("%s handled %d of %d events (%d failed)", s.Name(), st.Handled, n, st.Failed)
		}
		if evs, counted := held(s); evs != 0 || counted != 0 {
			t.Fatalf("%s still holds %d events, %d bytes", s.Name(), evs, counted)
		}
	}
	if n := b.readAheadHeld.Load(); n != 0 {
		t.Fatalf("the bus counts %d bytes held", n)
	}
}

// TestReadAheadTakesOneEventLargerThanItsBound: an event larger than a
// subscription's bound is still read and delivered, alone.
func TestReadAheadTakesOneEventLargerThanItsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 300_000
		b := newBus(t, WithStore(sharedStore(t)), WithReadAhead(100_000, 0))
		for range 5 {
			mustPublish(t, b, bigEvent("big.e", size))
		}
		gate := make(chan struct{})
		s := mustSubscribe(t, b, "big.>", hang(gate), Durable("one"), Concurrency(8))
		synctest.Wait()
		evs, counted := held(s)
		close(gate)
		if evs != 1 || counted != storedSize(t, b) {
			t.Fatalf("holds %d events (%d bytes), want one", evs, counted)
		}
		synctest.Wait()
		if st := s.Stats(); st.Handled != 5 {
			t.Fatalf("handled %d of 5", st.Handled)
		}
	})
}

// TestReadAheadOptionChecked: negative bounds are refused; zero keeps the
// defaults.
func TestReadAheadOptionChecked(t *testing.T) {
	if _, err := New(WithReadAhead(-1, 0)); err == nil {
		t.Fatal("a negative bound was accepted")
	}
	b := newBus(t, WithReadAhead(0, 0))
	if b.cfg.readAhead != DefaultReadAheadBytes || b.cfg.readAheadTotal != DefaultReadAheadTotal {
		t.Fatalf("defaults %d and %d", b.cfg.readAhead, b.cfg.readAheadTotal)
	}
}
