package herald

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// A durable subscription with concurrency, retries, permanent failures and
// a Close in the middle of it all: within a run, each subject's events are
// attempted in log order; the committed checkpoint never passes an event
// without a final outcome; after a restart every event ends succeeded or
// dead-lettered.
func TestDurableStressCheckpointAndOrder(t *testing.T) {
	st := sharedStore(t, WithMemoryMaxEvents(0))
	ctx := context.Background()
	const n, subjects = 400, 8
	b := newBus(t, WithStore(st))
	pos := map[string]uint64{}
	for i := range n {
		e := ev("s.e", fmt.Sprintf("subj-%d", i%subjects), "")
		pos[e.ID] = mustPublish(t, b, e)
	}

	type run struct {
		mu       sync.Mutex
		last     map[string]uint64 // subject → position of its last attempt
		bad      []string
		attempts int
	}
	handler := func(r *run) HandlerFunc {
		return func(ctx context.Context, e *Event) error {
			r.mu.Lock()
			if p := r.last[e.Subject]; p > e.Position {
				r.bad = append(r.bad, fmt.Sprintf("%s: %d after %d", e.Subject, e.Position, p))
			}
			r.last[e.Subject] = e.Position
			r.attempts++
			r.mu.Unlock()
			switch x := rand.IntN(10); {
			case x == 0:
				return Permanent(errors.New("bad"))
			case x < 4:
				return Temporary(errors.New("flaky"))
			case x == 4:
				for range 100 { // a slower handler
					runtime.Gosched()
				}
			}
			return nil
		}
	}
	opts := []SubscribeOption{Durable("stress"), Concurrency(4), MaxAttempts(3), Backoff(time.Millisecond, 3*time.Millisecond), BufferSize(32)}

	r1 := &run{last: map[string]uint64{}}
	s1 := mustSubscribe(t, b, "s.>", handler(r1), opts...)
	// Close after some attempts, at a random point of the first run.
	attempts := 20 + rand.IntN(200)
	testwait.For(t, fmt.Sprintf("%d attempts", attempts), func() bool {
		r1.mu.Lock()
		defer r1.mu.Unlock()
		return r1.attempts >= attempts
	})
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cp, _, err := st.Checkpoint(ctx, "stress")
	if err != nil {
		t.Fatal(err)
	}
	final := func() map[uint64]OutcomeStatus {
		got := map[uint64]OutcomeStatus{}
		outs, err := st.Outcomes(ctx, OutcomeQuery{Subscription: "stress", Limit: 10 * n})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			got[o.Position] = o.Status
		}
		return got
	}
	got := final()
	for p := uint64(1); p <= cp; p++ {
		if s := got[p]; s != OutcomeSucceeded && s != OutcomeDeadLettered {
			t.Fatalf("checkpoint %d passes position %d whose outcome is %q", cp, p, s)
		}
	}

	r2 := &run{last: map[string]uint64{}}
	mustSubscribe(t, b, "s.>", handler(r2), opts...)
	testwait.For(t, "every event settled", func() bool {
		got := final()
		for _, p := range pos {
			if s := got[p]; s != OutcomeSucceeded && s != OutcomeDeadLettered {
				return false
			}
		}
		return true
	})
	for _, r := range []*run{r1, r2} {
		if len(r.bad) > 0 {
			t.Fatalf("subject order broken: %v", r.bad)
		}
	}
	dls, err := st.DeadLetters(ctx, DeadLetterQuery{Subscription: "stress"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dls {
		if got[pos[d.Event.ID]] != OutcomeDeadLettered && final()[pos[d.Event.ID]] != OutcomeDeadLettered {
			t.Fatalf("dead letter of %d without a dead_lettered outcome", pos[d.Event.ID])
		}
	}
}
