package herald

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Whatever the subjects, priorities, concurrency and failures, a
// subscription handles the events of one subject in log order and every
// event succeeds exactly once.
func TestPropertySubjectOrderAndExactlyOnceSuccess(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(rt, "events")
		subjects := rapid.IntRange(0, 4).Draw(rt, "subjects")
		conc := rapid.IntRange(1, 4).Draw(rt, "concurrency")
		durable := rapid.Bool().Draw(rt, "durable")
		b, err := New()
		if err != nil {
			rt.Fatal(err)
		}
		defer b.Close(context.Background())
		var mu sync.Mutex
		succeeded := map[int]int{}
		var order = map[string][]int{}
		failOnce := map[int]bool{}
		attempts := map[int]int{}
		evs := make([]*Event, n)
		for i := range n {
			subj := ""
			if subjects > 0 {
				if s := rapid.IntRange(0, subjects).Draw(rt, "subject"); s > 0 {
					subj = fmt.Sprintf("s%d", s)
				}
			}
			e := ev("prop.e", subj, fmt.Sprintf(`{"i":%d}`, i))
			e.Priority = Priority(rapid.IntRange(-1, 2).Draw(rt, "priority"))
			failOnce[i] = rapid.IntRange(0, 4).Draw(rt, "fail") == 0
			evs[i] = e
		}
		done := make(chan struct{})
		var closeOnce sync.Once
		opts := []SubscribeOption{Concurrency(conc), Backoff(time.Millisecond, 2*time.Millisecond)}
		if durable {
			opts = append(opts, Durable("prop"))
		}
		_, err = b.Subscribe(context.Background(), "prop.>", HandlerFunc(func(ctx context.Context, e *Event) error {
			var d struct{ I int }
			if err := e.Decode(&d); err != nil {
				return Permanent(err)
			}
			mu.Lock()
			defer mu.Unlock()
			attempts[d.I]++
			if failOnce[d.I] && attempts[d.I] == 1 {
				return Temporary(errors.New("first attempt fails"))
			}
			succeeded[d.I]++
			if e.Subject != "" {
				order[e.Subject] = append(order[e.Subject], d.I)
			}
			if len(succeeded) == n {
				closeOnce.Do(func() { close(done) })
			}
			return nil
		}), opts...)
		if err != nil {
			rt.Fatal(err)
		}
		for _, e := range evs {
			if _, err := b.Publish(context.Background(), e); err != nil {
				rt.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			rt.Fatalf("only %d of %d events succeeded", len(succeeded), n)
		}
		if err := b.Close(context.Background()); err != nil {
			rt.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, c := range succeeded {
			if c != 1 {
				rt.Fatalf("event %d succeeded %d times", i, c)
			}
		}
		for subj, is := range order {
			for k := 1; k < len(is); k++ {
				if is[k] < is[k-1] {
					rt.Fatalf("subject %s handled out of order: %v", subj, is)
				}
			}
		}
	})
}
