package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// testBus runs what a Bus promises on top of the store: the same on every
// store, shared across processes or not.
func (s *suite) testBus(t *testing.T) {
	t.Run("DeadLetterHistory", s.testDeadLetterHistory)
	t.Run("OutcomeHistory", s.testOutcomeHistory)
	t.Run("LongErrors", s.testLongErrors)
	t.Run("DeadLetterHistoryBound", s.testDeadLetterHistoryBound)
	t.Run("CloseHandsBackDeliveries", s.testCloseHandsBack)
	t.Run("Counts", s.testBusCounts)
}

// newBus returns a bus on st that the test closes; the store stays open.
func newBus(t *testing.T, st herald.Store) *herald.Bus {
	t.Helper()
	b, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// testDeadLetterHistory: a dead letter keeps every failed attempt, in
// order, and a failing redrive adds its own attempts to the history.
func (s *suite) testDeadLetterHistory(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	b := newBus(t, st)
	var mu sync.Mutex
	calls := 0
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		tick()
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fmt.Errorf("failure %d", calls)
	})
	if _, err := b.Subscribe(ctx, "hist.>", h, herald.Durable("hist"), herald.MaxAttempts(3), herald.Backoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	e := event(t, "hist.failing", 1)
	if _, err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	dead := func(redrive bool, n int) herald.DeadLetter {
		t.Helper()
		d := s.deadLetterOf(t, b, "hist", fmt.Sprintf("a dead letter with %d errors", n), func(d herald.DeadLetter) bool {
			return !d.Redrive && len(d.Errors) >= n
		})
		if len(d.Errors) != n {
			t.Fatalf("dead letter has %d errors, want %d: %+v", len(d.Errors), n, d.Errors)
		}
		for i, ae := range d.Errors {
			if ae.Attempt != i+1 {
				t.Errorf("error %d is attempt %d, want %d", i, ae.Attempt, i+1)
			}
			if want := fmt.Sprintf("failure %d", i+1); ae.Error != want {
				t.Errorf("error %d = %q, want %q", i, ae.Error, want)
			}
			if i > 0 && ae.At.Before(d.Errors[i-1].At) {
				t.Errorf("error %d at %v, before error %d at %v", i, ae.At, i-1, d.Errors[i-1].At)
			}
			if ae.Duration <= 0 {
				t.Errorf("error %d has duration %v, want the attempt's", i, ae.Duration)
			}
		}
		// The dead-lettered outcome has the same history.
		o := s.outcomeOf(t, b, "hist", e.ID, func(o herald.Outcome) bool { return o.Attempts == n })
		if o.Status != herald.OutcomeDeadLettered || !sameAttempts(o.History, d.Errors) || o.Duration != d.Errors[n-1].Duration {
			t.Errorf("outcome %+v, want dead-lettered with history %+v and the last attempt's duration", o, d.Errors)
		}
		return d
	}
	d := dead(false, 3)
	if n, err := b.Redrive(ctx, herald.DeadLetterQuery{IDs: []string{d.ID}}); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	dead(true, 6)
}

// testLongErrors: a handler's error of megabytes is recorded clipped to
// herald.MaxErrorText bytes in the dead letter's history and the outcome,
// so that a history of them stays within what the store can hold, and the
// event is dead-lettered as any other.
func (s *suite) testLongErrors(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	b := newBus(t, st)
	long := strings.Repeat("é", 1<<20) // 2 MiB, two bytes a character
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		return errors.New(long)
	})
	if _, err := b.Subscribe(ctx, "long.>", h, herald.Durable("long"), herald.MaxAttempts(3), herald.Backoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	e := event(t, "long.failing", 1)
	if _, err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	d := s.deadLetterOf(t, b, "long", "the dead letter of an event whose handler fails with 2 MiB errors", func(herald.DeadLetter) bool { return true })
	clipped := func(what, text string) {
		t.Helper()
		head, _, ok := strings.Cut(text, "… (")
		if !ok || len(head) > herald.MaxErrorText || len(head) <= herald.MaxErrorText-utf8.UTFMax ||
			!strings.HasPrefix(long, head) || !strings.HasSuffix(text, " more bytes)") {
			t.Errorf("%s: %d bytes, not the error clipped to %d: ...%q", what, len(text), herald.MaxErrorText, text[max(0, len(text)-40):])
		}
	}
	if len(d.Errors) != 3 {
		t.Fatalf("dead letter has %d errors, want 3", len(d.Errors))
	}
	for i, ae := range d.Errors {
		clipped(fmt.Sprintf("dead letter error %d", i), ae.Error)
	}
	o := s.outcomeOf(t, b, "long", e.ID, func(o herald.Outcome) bool { return o.Status == herald.OutcomeDeadLettered })
	clipped("outcome's last error", o.LastError)
	if len(o.History) != 3 {
		t.Fatalf("the outcome's history has %d attempts, want 3", len(o.History))
	}
	for i, ae := range o.History {
		clipped(fmt.Sprintf("outcome history %d", i), ae.Error)
	}
}

// testDeadLetterHistoryBound: a dead letter keeps at most
// herald.MaxDeadLetterHistory attempts, the first and the last ones, and
// still counts every attempt, through a redrive too.
func (s *suite) testDeadLetterHistoryBound(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	b := newBus(t, st)
	const attempts = herald.MaxDeadLetterHistory + 5
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error { return errors.New("still failing") })
	if _, err := b.Subscribe(ctx, "many.>", h, herald.Durable("many"), herald.MaxAttempts(attempts), herald.Backoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	e := event(t, "many.failing", 1)
	if _, err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	dead := func(total int) herald.DeadLetter {
		t.Helper()
		d := s.deadLetterOf(t, b, "many", fmt.Sprintf("a dead letter after %d attempts", total), func(d herald.DeadLetter) bool {
			return !d.Redrive && d.Attempts() >= total
		})
		if d.Attempts() != total || len(d.Errors) != herald.MaxDeadLetterHistory {
			t.Fatalf("dead letter: %d attempts in %d entries, want %d in %d", d.Attempts(), len(d.Errors), total, herald.MaxDeadLetterHistory)
		}
		if first, second, last := d.Errors[0].Attempt, d.Errors[1].Attempt, d.Errors[len(d.Errors)-1].Attempt; first != 1 || second != total-herald.MaxDeadLetterHistory+2 || last != total {
			t.Fatalf("dead letter keeps attempts %d, %d … %d; want 1, %d … %d", first, second, last, total-herald.MaxDeadLetterHistory+2, total)
		}
		o := s.outcomeOf(t, b, "many", e.ID, func(o herald.Outcome) bool { return o.Attempts == total })
		if o.Status != herald.OutcomeDeadLettered || len(o.History) != herald.MaxOutcomeHistory {
			t.Fatalf("outcome %s with %d history entries, want dead-lettered with %d", o.Status, len(o.History), herald.MaxOutcomeHistory)
		}
		return d
	}
	d := dead(attempts)
	if n, err := b.Redrive(ctx, herald.DeadLetterQuery{IDs: []string{d.ID}}); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	dead(2 * attempts)
}

// tick returns once the clock has moved on, so that the attempt calling
// it lasts a measurable time however coarse the clock is.
func tick() {
	for start := time.Now(); time.Since(start) <= 0; {
	}
}

// deadLetterOf waits until sub has one dead letter, for which ok says yes
// (what names it in a failure), and returns it.
func (s *suite) deadLetterOf(t *testing.T, b *herald.Bus, sub, what string, ok func(herald.DeadLetter) bool) herald.DeadLetter {
	t.Helper()
	var d herald.DeadLetter
	s.eventually(t, what, func() bool {
		got, err := b.DeadLetters(t.Context(), herald.DeadLetterQuery{Subscription: sub})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !ok(got[0]) {
			return false
		}
		d = got[0]
		return true
	})
	return d
}

// outcomeOf waits for the outcome of event id in sub for which ok says
// yes, and returns it.
func (s *suite) outcomeOf(t *testing.T, b *herald.Bus, sub, id string, ok func(herald.Outcome) bool) herald.Outcome {
	t.Helper()
	var o herald.Outcome
	s.eventually(t, "the outcome of "+id, func() bool {
		outs, err := b.Outcomes(t.Context(), herald.OutcomeQuery{EventID: id, Subscription: sub})
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 || !ok(outs[0]) {
			return false
		}
		o = outs[0]
		return true
	})
	return o
}

// testOutcomeHistory: the outcome of an event that succeeded after
// failed attempts keeps each failed attempt (its number, duration and
// error), oldest first, the last herald.MaxOutcomeHistory of them, and
// the successful attempt's duration; one that succeeded at once has none.
func (s *suite) testOutcomeHistory(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	b := newBus(t, st)
	const fails = herald.MaxOutcomeHistory + 3
	var mu sync.Mutex
	calls := map[string]int{}
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		tick()
		mu.Lock()
		defer mu.Unlock()
		calls[e.Name]++
		if n := calls[e.Name]; e.Name == "ohist.flaky" && n <= 2 || e.Name == "ohist.stubborn" && n <= fails {
			return fmt.Errorf("failure %d", n)
		}
		return nil
	})
	if _, err := b.Subscribe(ctx, "ohist.>", h, herald.Durable("ohist"), herald.MaxAttempts(fails+1), herald.Backoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	check := func(name string, failed int) {
		t.Helper()
		e := event(t, name, 1)
		if _, err := b.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		o := s.outcomeOf(t, b, "ohist", e.ID, func(o herald.Outcome) bool { return o.Status == herald.OutcomeSucceeded })
		if o.Attempts != failed+1 || o.LastError != "" || o.Duration <= 0 {
			t.Errorf("%s: outcome %+v, want %d attempts, no last error and the last attempt's duration", name, o, failed+1)
		}
		first := max(1, failed-herald.MaxOutcomeHistory+1)
		if len(o.History) != failed-first+1 {
			t.Fatalf("%s: history of %d attempts, want attempts %d to %d: %+v", name, len(o.History), first, failed, o.History)
		}
		for i, ae := range o.History {
			if ae.Attempt != first+i || ae.Error != fmt.Sprintf("failure %d", first+i) || ae.Duration <= 0 || ae.At.IsZero() {
				t.Errorf("%s: history entry %d = %+v, want attempt %d with its duration and error", name, i, ae, first+i)
			}
		}
	}
	check("ohist.ok", 0)
	check("ohist.flaky", 2)
	check("ohist.stubborn", fails)
}

// testCloseHandsBack: after a graceful Bus.Close and the store's Close,
// a durable subscription on the reopened store delivers the events the
// first one had not handled at once, not after a redelivery timeout.
func (s *suite) testCloseHandsBack(t *testing.T) {
	if s.f.Reopen == nil {
		t.Skip("the store is not persistent")
	}
	st := s.newStore(t)
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()
	b := newBus(t, st)
	const n = 300
	gate := make(chan struct{})
	started := make(chan struct{}, 4*n)
	var mu sync.Mutex
	handled := map[string]bool{}
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		started <- struct{}{}
		select {
		case <-gate:
			mu.Lock()
			handled[e.ID] = true
			mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	// A handler timeout of minutes makes the redelivery timeout (a shared
	// consumer's ack wait) minutes too, far beyond the wake timeout: an
	// event that waited for it would not come in time.
	const timeout = 5 * time.Minute
	if _, err := b.Subscribe(ctx, "handback.>", h, herald.Durable("handback"), herald.Concurrency(2), herald.Timeout(timeout)); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range n {
		e := event(t, "handback.item", i, subject(fmt.Sprintf("s%d", i%10)))
		if _, err := b.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		all = append(all, e.ID)
	}
	<-started // the subscription has events in hand
	close(gate)
	cctx, cancel := context.WithTimeout(ctx, s.f.wakeTimeout())
	defer cancel()
	if err := b.Close(cctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Bus.Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := s.f.Reopen(t, st)
	t.Cleanup(func() { _ = st2.Close() })
	b2 := newBus(t, st2)
	got := map[string]bool{}
	h2 := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		got[e.ID] = true
		return nil
	})
	if _, err := b2.Subscribe(ctx, "handback.>", h2, herald.Durable("handback"), herald.Concurrency(4), herald.Timeout(timeout)); err != nil {
		t.Fatal(err)
	}
	// Every event the first bus did not handle comes within the wake
	// timeout: one it had in hand must not wait for a redelivery timeout.
	mu.Lock()
	want := map[string]bool{}
	for _, id := range all {
		if !handled[id] {
			want[id] = true
		}
	}
	mu.Unlock()
	t.Logf("%d of %d events left for the reopened store", len(want), n)
	s.eventually(t, fmt.Sprintf("the %d events the first bus left delivered after reopening", len(want)), func() bool {
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	})
}
