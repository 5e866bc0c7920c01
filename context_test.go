package herald

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/heraldhq/herald/internal/testwait"
)

// Contexts derived from a handler's context start no goroutine: the
// handler context schedules their cancellation itself (AfterFunc).
func TestHandlerContextDerivingStartsNoGoroutine(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	type counts struct{ before, after int }
	got := make(chan counts, 1)
	fired := make(chan struct{}, 1)
	if _, err := b.Subscribe(ctx, "ctx.derive", HandlerFunc(func(hctx context.Context, _ *Event) error {
		before := runtime.NumGoroutine()
		var cancels []context.CancelFunc
		var stops []func() bool
		for range 50 {
			c1, cancel1 := context.WithCancel(hctx)
			c2, cancel2 := context.WithTimeout(c1, time.Hour)
			_, cancel3 := context.WithDeadline(hctx, time.Now().Add(time.Hour))
			stops = append(stops, context.AfterFunc(c2, func() {}))
			cancels = append(cancels, cancel1, cancel2, cancel3)
		}
		// One registered callback fires when the handler context ends.
		context.AfterFunc(hctx, func() { fired <- struct{}{} })
		after := runtime.NumGoroutine()
		for _, stop := range stops {
			stop()
		}
		for _, cancel := range cancels {
			cancel()
		}
		got <- counts{before, after}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, &Event{Name: "ctx.derive"}); err != nil {
		t.Fatal(err)
	}
	c := <-got
	if c.after > c.before { // other tests' goroutines may end meanwhile
		t.Fatalf("deriving 150 contexts started %d goroutines", c.after-c.before)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc on the handler context did not fire when the handler returned")
	}
}

// A context a handler keeps pins nothing but itself: the context of
// another event is collected.
func TestHandlerContextKeptPinsOnlyItself(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var kept context.Context
	var other weak.Pointer[handlerCtx]
	n := 0
	s, err := b.Subscribe(ctx, "ctx.keep", HandlerFunc(func(hctx context.Context, _ *Event) error {
		switch n++; n {
		case 1:
			kept = hctx
		case 2:
			other = weak.Make(hctx.(*handlerCtx))
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.Publish(ctx, &Event{Name: "ctx.keep"}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "both events handled", func() bool { return s.Stats().Handled == 2 })
	for range 5 {
		runtime.GC()
	}
	if other.Value() != nil {
		t.Fatal("the context of the second event is still reachable while the first is kept")
	}
	runtime.KeepAlive(kept)
}
