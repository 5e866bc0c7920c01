package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heraldhq/herald/internal/testlog"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
	"github.com/prometheus/client_golang/prometheus"
)

func newBus(t *testing.T, opts ...Option) *Bus {
	t.Helper()
	b, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func sharedStore(t *testing.T, opts ...MemoryOption) *MemoryStore {
	t.Helper()
	s := NewMemoryStore(opts...)
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(name, subject string, data string) *Event {
	if data == "" {
		data = "{}"
	}
	return &Event{Name: name, Subject: subject, Data: json.RawMessage(data)}
}

func mustPublish(t *testing.T, b *Bus, e *Event) uint64 {
	t.Helper()
	p, err := b.Publish(context.Background(), e)
	if err != nil {
		t.Fatalf("Publish %s: %v", e.Name, err)
	}
	return p
}

func mustSubscribe(t *testing.T, b *Bus, pattern string, h HandlerFunc, opts ...SubscribeOption) *Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), pattern, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder collects what a handler saw.
type recorder struct {
	mu   sync.Mutex
	evs  []*Event
	ecs  []EventContext
	seen map[string]int
}

func (r *recorder) add(ctx context.Context, e *Event) {
	ec, _ := FromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	r.ecs = append(r.ecs, ec)
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[e.ID]++
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func (r *recorder) handler() HandlerFunc {
	return func(ctx context.Context, e *Event) error { r.add(ctx, e); return nil }
}

func TestPublishSubscribeEphemeralAndDurable(t *testing.T) {
	synctest.Test(t, testPublishSubscribeEphemeralAndDurable)
}

func testPublishSubscribeEphemeralAndDurable(t *testing.T) {
	b := newBus(t, WithSource("tester"))
	var eph, dur recorder
	mustSubscribe(t, b, "recording.*", eph.handler())
	mustSubscribe(t, b, "recording.>", dur.handler(), Durable("notes"))
	mustSubscribe(t, b, "other.>", func(ctx context.Context, e *Event) error {
		t.Errorf("other.> got %s", e.Name)
		return nil
	})
	p1 := mustPublish(t, b, ev("recording.completed", "recording/1", `{"duration":3}`))
	p2 := mustPublish(t, b, ev("recording.started.late", "", ""))
	if p1 != 1 || p2 != 2 {
		t.Fatalf("positions %d %d", p1, p2)
	}
	testwait.For(t, "deliveries", func() bool { return eph.len() == 1 && dur.len() == 2 })
	e, ec := eph.evs[0], eph.ecs[0]
	if e.Name != "recording.completed" || e.SourcePlugin != "tester" || e.CorrelationID != e.ID || e.Position != 1 {
		t.Fatalf("event %+v", e)
	}
	if ec.EventID != e.ID || ec.Attempt != 1 || ec.Subscription == "" || ec.Subject != "recording/1" || ec.Position != 1 {
		t.Fatalf("event context %+v", ec)
	}
	if dur.ecs[0].Subscription != "notes" {
		t.Fatalf("durable subscription name %q", dur.ecs[0].Subscription)
	}
	// Publishing the same id again stores and delivers nothing.
	again := ev("recording.completed", "recording/1", `{"duration":3}`)
	again.ID = e.ID
	if p, err := b.Publish(context.Background(), again); err != nil || p != 1 {
		t.Fatalf("duplicate publish: %d %v", p, err)
	}
	synctest.Wait() // every goroutine of the bus is idle: nothing more is coming
	if eph.len() != 1 || dur.len() != 2 {
		t.Fatalf("duplicate delivered: %d %d", eph.len(), dur.len())
	}
	testwait.For(t, "outcomes", func() bool {
		outs, _ := b.Outcomes(context.Background(), OutcomeQuery{EventID: e.ID})
		return len(outs) == 1 && outs[0].Status == OutcomeSucceeded && outs[0].Subscription == "notes"
	})
}

func TestPublishValidation(t *testing.T) {
	schemas := NewSchemas()
	if err := schemas.Register("user.created", 1, []byte(`{"type":"object","required":["email"]}`)); err != nil {
		t.Fatal(err)
	}
	b := newBus(t, WithMaxEventSize(600), WithSchemas(schemas),
		WithValidator(ValidatorFunc(func(ctx context.Context, e *Event) error {
			if e.Name == "forbidden.thing" {
				return errors.New("not allowed here")
			}
			return nil
		})))
	var ve *ValidationError
	cases := []struct {
		e     *Event
		field string
		is    error
	}{
		{ev("Bad Name", "", ""), "name", ErrInvalidEvent},
		{ev("ok.name", "", "[1]"), "data", ErrInvalidEvent},
		{ev("ok.name", "", `{"x":"`+strings.Repeat("a", 700)+`"}`), "", ErrTooLarge},
		{ev("user.created", "", `{}`), "data.email", ErrSchemaViolation},
		{ev("forbidden.thing", "", ``), "", ErrInvalidEvent},
	}
	for i, c := range cases {
		_, err := b.Publish(context.Background(), c.e)
		if !errors.As(err, &ve) || !errors.Is(err, c.is) || ve.Field != c.field {
			t.Errorf("case %d: %v (field %q), want %v on field %q", i, err, fieldOf(err), c.is, c.field)
		}
	}
	_, err := b.PublishBatch(context.Background(), []*Event{ev("ok.one", "", ""), ev("ok.two", "", ""), ev("forbidden.thing", "", "")})
	if !errors.As(err, &ve) || ve.Index != 2 {
		t.Fatalf("batch error %v, want index 2", err)
	}
	if h, _ := b.Store().Head(context.Background()); h != 0 {
		t.Fatalf("rejected events were stored: head %d", h)
	}
}

func fieldOf(err error) string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return ""
}

func TestOrderingPerSubject(t *testing.T) {
	b := newBus(t)
	var mu sync.Mutex
	last := map[string]int{}
	var bad atomic.Int32
	var n atomic.Int32
	var running sync.Map
	h := func(ctx context.Context, e *Event) error {
		if _, busy := running.LoadOrStore(e.Subject, true); busy {
			bad.Add(1)
		}
		var d struct{ I int }
		json.Unmarshal(e.Data, &d)
		for range d.I % 3 * 20 { // handlers of varied length interleave across subjects
			runtime.Gosched()
		}
		mu.Lock()
		if d.I != last[e.Subject]+1 {
			bad.Add(1)
		}
		last[e.Subject] = d.I
		mu.Unlock()
		running.Delete(e.Subject)
		n.Add(1)
		return nil
	}
	for _, durable := range []bool{false, true} {
		opts := []SubscribeOption{Concurrency(8)}
		if durable {
			opts = append(opts, Durable("ordered"), StartAt(StartLatest))
		}
		mustSubscribe(t, b, "order.>", h, opts...)
		clear(last)
		n.Store(0)
		for i := 1; i <= 60; i++ {
			for s := range 5 {
				mustPublish(t, b, ev("order.step", fmt.Sprintf("o-%v-%d", durable, s), fmt.Sprintf(`{"i":%d}`, i)))
			}
		}
		testwait.For(t, fmt.Sprintf("all events (durable %v)", durable), func() bool { return n.Load() == 300 })
		for _, s := range b.Subscriptions() {
			b.Unsubscribe(context.Background(), subByName(b, s.Name))
		}
	}
	if bad.Load() != 0 {
		t.Fatalf("%d ordering violations", bad.Load())
	}
}

func subByName(b *Bus, name string) *Subscription {
	for _, s := range b.subscriptionList() {
		if s.name == name {
			return s
		}
	}
	return nil
}

func TestConcurrencyAcrossSubjects(t *testing.T) { synctest.Test(t, testConcurrencyAcrossSubjects) }

func testConcurrencyAcrossSubjects(t *testing.T) {
	b := newBus(t)
	var running, peak atomic.Int32
	release := make(chan struct{})
	mustSubscribe(t, b, "job.run", func(ctx context.Context, e *Event) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil
	}, Concurrency(4))
	for i := range 8 {
		mustPublish(t, b, ev("job.run", fmt.Sprintf("job/%d", i), ""))
	}
	testwait.For(t, "4 concurrent handlers", func() bool { return running.Load() == 4 })
	synctest.Wait() // the other 4 events are queued, not running
	if p := peak.Load(); p != 4 {
		t.Fatalf("peak concurrency %d, want 4", p)
	}
	close(release)
}

func TestPriorityUnderBacklog(t *testing.T) {
	b := newBus(t)
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []Priority
	first := true
	mustSubscribe(t, b, "work.>", func(ctx context.Context, e *Event) error {
		mu.Lock()
		wasFirst := first
		first = false
		if !wasFirst {
			order = append(order, e.Priority)
		}
		mu.Unlock()
		if wasFirst {
			<-gate
		}
		return nil
	})
	mustPublish(t, b, ev("work.block", "", ""))
	testwait.For(t, "first handler", func() bool { mu.Lock(); defer mu.Unlock(); return !first })
	for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityCritical, PriorityLow, PriorityCritical, PriorityNormal, PriorityHigh} {
		e := ev("work.item", "", "")
		e.Priority = p
		mustPublish(t, b, e)
	}
	close(gate)
	testwait.For(t, "backlog", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 8 })
	want := []Priority{PriorityCritical, PriorityCritical, PriorityHigh, PriorityHigh, PriorityNormal, PriorityNormal, PriorityLow, PriorityLow}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestTemporaryErrorRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, testTemporaryErrorRetriedWithBackoff)
}

func testTemporaryErrorRetriedWithBackoff(t *testing.T) {
	b := newBus(t)
	var attempts []int
	var times []time.Time
	var mu sync.Mutex
	s := mustSubscribe(t, b, "flaky.op", func(ctx context.Context, e *Event) error {
		ec, _ := FromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, ec.Attempt)
		times = append(times, time.Now())
		if ec.Attempt < 3 {
			return Temporary(errors.New("service unavailable"))
		}
		return nil
	}, Durable("flaky"), Backoff(20*time.Millisecond, 40*time.Millisecond))
	e := ev("flaky.op", "", "")
	mustPublish(t, b, e)
	testwait.For(t, "success", func() bool { return s.Stats().Handled == 1 })
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts %v", attempts)
	}
	// Retry n waits a jittered delay in (0, min(max, initial·2ⁿ⁻¹)].
	for i, ceil := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond} {
		if d := times[i+1].Sub(times[i]); d <= 0 || d > ceil {
			t.Errorf("retry %d after %v, want (0, %v]", i+1, d, ceil)
		}
	}
	if st := s.Stats(); st.Retried != 2 || st.Failed != 2 || st.DeadLettered != 0 {
		t.Fatalf("stats %+v", st)
	}
	testwait.For(t, "outcome", func() bool {
		outs, _ := b.Outcomes(context.Background(), OutcomeQuery{EventID: e.ID})
		return len(outs) == 1 && outs[0].Status == OutcomeSucceeded && outs[0].Attempts == 3
	})
}

func TestBackoffDelay(t *testing.T) {
	for retry := 1; retry <= 70; retry++ {
		for range 50 {
			d := backoffDelay(100*time.Millisecond, 30*time.Second, retry)
			ceil := min(30*time.Second, 100*time.Millisecond<<min(retry-1, 20))
			if d <= 0 || d > ceil+time.Microsecond {
				t.Fatalf("retry %d: delay %v outside (0, %v]", retry, d, ceil)
			}
		}
	}
}

func deadLetters(t *testing.T, b *Bus, sub string) []DeadLetter {
	t.Helper()
	dls, err := b.DeadLetters(context.Background(), DeadLetterQuery{Subscription: sub})
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	b := newBus(t)
	var calls atomic.Int32
	var rec recorder
	mustSubscribe(t, b, "pay.>", func(ctx context.Context, e *Event) error {
		if e.Name == "pay.bad" {
			calls.Add(1)
			return Permanent(errors.New("card number is invalid"))
		}
		rec.add(ctx, e)
		return nil
	}, Durable("payments"))
	bad := ev("pay.bad", "", "")
	mustPublish(t, b, bad)
	mustPublish(t, b, ev("pay.good", "", ""))
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "payments")) == 1 })
	testwait.For(t, "next event", func() bool { return rec.len() == 1 })
	dl := deadLetters(t, b, "payments")[0]
	if calls.Load() != 1 || !dl.Permanent || len(dl.Errors) != 1 || dl.Event.ID != bad.ID || !strings.Contains(dl.Errors[0].Error, "card number") {
		t.Fatalf("calls %d, dead letter %+v", calls.Load(), dl)
	}
	testwait.For(t, "outcome", func() bool {
		outs, _ := b.Outcomes(context.Background(), OutcomeQuery{EventID: bad.ID})
		return len(outs) == 1 && outs[0].Status == OutcomeDeadLettered && outs[0].Attempts == 1
	})
}

func TestMaxAttemptsDeadLettersWithHistory(t *testing.T) {
	synctest.Test(t, testMaxAttemptsDeadLettersWithHistory)
}

func testMaxAttemptsDeadLettersWithHistory(t *testing.T) {
	b := newBus(t)
	var rec recorder
	mustSubscribe(t, b, "x.>", func(ctx context.Context, e *Event) error {
		if e.Name == "x.fail" {
			ec, _ := FromContext(ctx)
			return fmt.Errorf("boom %d", ec.Attempt) // unknown error: retried like a temporary one
		}
		rec.add(ctx, e)
		return nil
	}, Durable("x"), MaxAttempts(3), Backoff(time.Millisecond, 2*time.Millisecond))
	mustPublish(t, b, ev("x.fail", "s", ""))
	mustPublish(t, b, ev("x.ok", "s", "")) // same subject: waits for the failing one
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "x")) == 1 })
	dl := deadLetters(t, b, "x")[0]
	if dl.Permanent || len(dl.Errors) != 3 {
		t.Fatalf("dead letter %+v", dl)
	}
	for i, ae := range dl.Errors {
		if ae.Attempt != i+1 || ae.Error != fmt.Sprintf("boom %d", i+1) || ae.At.IsZero() {
			t.Fatalf("history %+v", dl.Errors)
		}
	}
	testwait.For(t, "subscription moves on", func() bool { return rec.len() == 1 })
}

func TestPanicIsolated(t *testing.T) {
	b := newBus(t)
	var other, after recorder
	s := mustSubscribe(t, b, "p.>", func(ctx context.Context, e *Event) error {
		if e.Name == "p.panic" {
			panic("handler bug")
		}
		after.add(ctx, e)
		return nil
	}, MaxAttempts(1))
	mustSubscribe(t, b, "p.>", other.handler())
	mustPublish(t, b, ev("p.panic", "", ""))
	mustPublish(t, b, ev("p.next", "", ""))
	testwait.For(t, "both subscriptions", func() bool { return other.len() == 2 && after.len() == 1 })
	if st := s.Stats(); st.DeadLettered != 1 || st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandlerTimeout(t *testing.T) { synctest.Test(t, testHandlerTimeout) }

func testHandlerTimeout(t *testing.T) {
	b := newBus(t)
	start := time.Now()
	mustSubscribe(t, b, "slow.op", func(ctx context.Context, e *Event) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("handler context has no deadline")
		}
		<-ctx.Done()
		return ctx.Err()
	}, Durable("slow"), Timeout(30*time.Millisecond), MaxAttempts(2), Backoff(time.Millisecond, time.Millisecond))
	mustPublish(t, b, ev("slow.op", "", ""))
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "slow")) == 1 })
	dl := deadLetters(t, b, "slow")[0]
	if len(dl.Errors) != 2 || !strings.Contains(dl.Errors[1].Error, "deadline") {
		t.Fatalf("history %+v", dl.Errors)
	}
	// Each attempt ends at its 30 ms timeout; the retry waits at most 1 ms.
	if d := dl.Errors[0].At.Sub(start); d != 30*time.Millisecond {
		t.Fatalf("first attempt timed out after %v, want 30ms", d)
	}
	if d := dl.Errors[1].At.Sub(dl.Errors[0].At); d <= 30*time.Millisecond || d > 31*time.Millisecond {
		t.Fatalf("second attempt timed out %v after the first, want 30ms plus a backoff of at most 1ms", d)
	}
}

func TestRedriveAndDiscard(t *testing.T) {
	b := newBus(t)
	var broken atomic.Bool
	broken.Store(true)
	var handled recorder
	mustSubscribe(t, b, "mail.send", func(ctx context.Context, e *Event) error {
		if broken.Load() {
			return Permanent(errors.New("smtp refused"))
		}
		handled.add(ctx, e)
		return nil
	}, Durable("mailer"))
	e1, e2, e3 := ev("mail.send", "", ""), ev("mail.send", "", ""), ev("mail.send", "", "")
	for _, e := range []*Event{e1, e2, e3} {
		mustPublish(t, b, e)
	}
	testwait.For(t, "dead letters", func() bool { return len(deadLetters(t, b, "mailer")) == 3 })

	// Redrive one while still broken: it comes back with a longer history.
	if n, err := b.Redrive(context.Background(), DeadLetterQuery{EventID: e1.ID}); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	testwait.For(t, "failed redrive", func() bool {
		for _, d := range deadLetters(t, b, "mailer") {
			if d.Event.ID == e1.ID {
				return len(d.Errors) == 2 && !d.Redrive
			}
		}
		return false
	})
	// Fixed: redrive one, discard another.
	broken.Store(false)
	if n, err := b.Redrive(context.Background(), DeadLetterQuery{EventID: e1.ID}); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	testwait.For(t, "redriven event handled", func() bool { return handled.len() == 1 })
	if n, err := b.Discard(context.Background(), DeadLetterQuery{EventID: e2.ID}); err != nil || n != 1 {
		t.Fatalf("discard: %d %v", n, err)
	}
	testwait.For(t, "one dead letter left", func() bool {
		dls := deadLetters(t, b, "mailer")
		return len(dls) == 1 && dls[0].Event.ID == e3.ID
	})
	testwait.For(t, "outcomes", func() bool {
		o1, _ := b.Outcomes(context.Background(), OutcomeQuery{EventID: e1.ID})
		o2, _ := b.Outcomes(context.Background(), OutcomeQuery{EventID: e2.ID})
		return len(o1) == 1 && o1[0].Status == OutcomeSucceeded && o1[0].Attempts == 3 &&
			len(o2) == 1 && o2[0].Status == OutcomeDiscarded
	})
}

// outcomeOf waits for event id's one outcome to have status and attempts
// (the bus commits outcomes in batches), and returns it.
func outcomeOf(t *testing.T, b *Bus, id string, status OutcomeStatus, attempts int) Outcome {
	t.Helper()
	var outs []Outcome
	testwait.For(t, fmt.Sprintf("event %s %s after %d attempts", id, status, attempts), func() bool {
		outs, _ = b.Outcomes(context.Background(), OutcomeQuery{EventID: id})
		return len(outs) == 1 && outs[0].Status == status && outs[0].Attempts == attempts
	})
	return outs[0]
}

// TestOutcomeRedriven: an outcome says whether it comes from a redrive of
// the event's dead letter, whatever its attempts count: an event
// dead-lettered on a permanent error and redriven with success took two
// attempts, like one that succeeded on its first retry.
func TestOutcomeRedriven(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		ctx := context.Background()
		var fixed atomic.Bool
		var retried atomic.Int32
		mustSubscribe(t, b, "r.>", func(ctx context.Context, e *Event) error {
			switch {
			case e.Name == "r.permanent" && !fixed.Load():
				return Permanent(errors.New("endpoint answered 400"))
			case e.Name == "r.flaky" && retried.Add(1) < 3:
				return errors.New("endpoint unreachable")
			}
			return nil
		}, Durable("r"), MaxAttempts(3), Backoff(time.Millisecond, time.Millisecond))
		perm, flaky := ev("r.permanent", "", ""), ev("r.flaky", "", "")
		mustPublish(t, b, perm)
		mustPublish(t, b, flaky)
		if o := outcomeOf(t, b, perm.ID, OutcomeDeadLettered, 1); o.Redriven {
			t.Fatalf("outcome before the redrive: %+v; want dead-lettered after 1 attempt, not redriven", o)
		}
		if o := outcomeOf(t, b, flaky.ID, OutcomeSucceeded, 3); o.Redriven {
			t.Fatalf("outcome of an event retried to success: %+v; want succeeded after 3 attempts, not redriven", o)
		}

		// A redrive that fails again: its dead letter's outcome is redriven.
		if n, err := b.Redrive(ctx, DeadLetterQuery{EventID: perm.ID}); err != nil || n != 1 {
			t.Fatalf("redrive: %d, %v", n, err)
		}
		if o := outcomeOf(t, b, perm.ID, OutcomeDeadLettered, 2); !o.Redriven {
			t.Fatalf("outcome of a failed redrive: %+v; want dead-lettered after 2 attempts, redriven", o)
		}

		// A redrive that succeeds at once: one attempt before it, one by it.
		perm2 := ev("r.permanent", "", "")
		mustPublish(t, b, perm2)
		outcomeOf(t, b, perm2.ID, OutcomeDeadLettered, 1)
		fixed.Store(true)
		if n, err := b.Redrive(ctx, DeadLetterQuery{EventID: perm2.ID}); err != nil || n != 1 {
			t.Fatalf("redrive: %d, %v", n, err)
		}
		if o := outcomeOf(t, b, perm2.ID, OutcomeSucceeded, 2); !o.Redriven {
			t.Fatalf("outcome of a successful redrive: %+v; want succeeded after 2 attempts, redriven", o)
		}
	})
}

func TestResetReplaysDurableSubscription(t *testing.T) {
	synctest.Test(t, testResetReplaysDurableSubscription)
}

func testResetReplaysDurableSubscription(t *testing.T) {
	b := newBus(t)
	var rec recorder
	s := mustSubscribe(t, b, "r.>", rec.handler(), Durable("replayer"))
	for range 10 {
		mustPublish(t, b, ev("r.e", "", ""))
	}
	testwait.For(t, "first pass", func() bool { return rec.len() == 10 })
	if cp, err := b.Reset(context.Background(), "replayer", StartPosition(4)); err != nil || cp != 3 {
		t.Fatalf("Reset to position 4 = %d, %v; want checkpoint 3", cp, err)
	}
	testwait.For(t, "replay while running", func() bool { return rec.len() == 17 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cp, err := b.Reset(context.Background(), "replayer", StartEarliest); err != nil || cp != 0 {
		t.Fatalf("Reset to the earliest = %d, %v; want checkpoint 0", cp, err)
	}
	mustSubscribe(t, b, "r.>", rec.handler(), Durable("replayer"))
	testwait.For(t, "replay after restart", func() bool { return rec.len() == 27 })
	if _, err := b.Reset(context.Background(), "nobody", StartEarliest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reset of unknown subscription: %v", err)
	}
	synctest.Wait()
	if rec.len() != 27 {
		t.Fatalf("delivered %d, want 27", rec.len())
	}
}

func TestDurableResumesAfterRestart(t *testing.T) { synctest.Test(t, testDurableResumesAfterRestart) }

func testDurableResumesAfterRestart(t *testing.T) {
	st := sharedStore(t)
	ctx := context.Background()
	b1 := newBus(t, WithStore(st))
	var first recorder
	mustSubscribe(t, b1, "doc.>", first.handler(), Durable("indexer"))
	for range 5 {
		mustPublish(t, b1, ev("doc.saved", "", ""))
	}
	testwait.For(t, "first run", func() bool { return first.len() == 5 })
	if err := b1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Published while the subscriber is away.
	b2 := newBus(t, WithStore(st))
	var missed []string
	for range 3 {
		e := ev("doc.saved", "", "")
		mustPublish(t, b2, e)
		missed = append(missed, e.ID)
	}
	var second recorder
	mustSubscribe(t, b2, "doc.>", second.handler(), Durable("indexer"))
	testwait.For(t, "catch up", func() bool { return second.len() == 3 })
	synctest.Wait()
	if second.len() != 3 {
		t.Fatalf("got %d events after restart, want the 3 missed", second.len())
	}
	for i, e := range second.evs {
		if e.ID != missed[i] {
			t.Fatalf("event %d: %s, want %s", i, e.ID, missed[i])
		}
	}
	if _, err := b2.Subscribe(ctx, "doc.>", second.handler(), Durable("indexer")); !errors.Is(err, ErrConflict) {
		t.Fatalf("second durable with the same name: %v", err)
	}
}

func TestChildEventsHaveDeterministicIDs(t *testing.T) {
	synctest.Test(t, testChildEventsHaveDeterministicIDs)
}

func testChildEventsHaveDeterministicIDs(t *testing.T) {
	b := newBus(t)
	var calls atomic.Int32
	mustSubscribe(t, b, "order.placed", func(ctx context.Context, e *Event) error {
		// NewEvent fills an ID and a correlation id; published from a
		// handler, the event still becomes a deterministic child.
		child, err := NewEvent("order.billed", nil)
		if err != nil {
			return err
		}
		if _, err := b.Publish(ctx, child); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return Temporary(errors.New("crash after publishing"))
		}
		return nil
	}, Durable("billing"), Backoff(time.Millisecond, time.Millisecond))
	var billed recorder
	mustSubscribe(t, b, "order.billed", billed.handler(), Durable("shipping"))
	parent := ev("order.placed", "", "")
	mustPublish(t, b, parent)
	testwait.For(t, "child handled", func() bool { return billed.len() >= 1 && calls.Load() == 2 })
	synctest.Wait()
	if billed.len() != 1 {
		t.Fatalf("child delivered %d times", billed.len())
	}
	c := billed.evs[0]
	if c.ID != ChildID(parent.ID, "billing", 0) || c.CorrelationID != parent.ID || c.CausationID != parent.ID {
		t.Fatalf("child %+v, parent %s", c, parent.ID)
	}
	tr, err := b.Trace(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "trace outcomes", func() bool {
		tr, _ = b.Trace(context.Background(), parent.ID)
		return len(tr.Events) == 2 && len(tr.Events[0].Outcomes) == 1 && len(tr.Events[1].Outcomes) == 1
	})
	if tr.Events[0].Outcomes[0].Subscription != "billing" || tr.Events[1].Outcomes[0].Subscription != "shipping" {
		t.Fatalf("trace %+v", tr)
	}
}

func TestEphemeralBackpressure(t *testing.T) { synctest.Test(t, testEphemeralBackpressure) }

func testEphemeralBackpressure(t *testing.T) {
	b := newBus(t)
	gate := make(chan struct{})
	var rec recorder
	s := mustSubscribe(t, b, "bp.>", func(ctx context.Context, e *Event) error {
		<-gate
		rec.add(ctx, e)
		return nil
	}, BufferSize(2))
	mustPublish(t, b, ev("bp.e", "", "")) // taken by the handler
	testwait.For(t, "in flight", func() bool { return s.Stats().InFlight == 1 })
	mustPublish(t, b, ev("bp.e", "", ""))
	mustPublish(t, b, ev("bp.e", "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Publish(ctx, ev("bp.e", "", ""))
	if !errors.Is(err, ErrBackpressure) || time.Since(start) != 50*time.Millisecond {
		t.Fatalf("publish to a full subscription: %v after %v, want ErrBackpressure after 50ms", err, time.Since(start))
	}
	// A publisher that waits gets through once the handler moves on.
	done := make(chan error, 1)
	go func() { _, err := b.Publish(context.Background(), ev("bp.e", "", "")); done <- err }()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("publish to a full subscription returned at once: %v", err)
	default: // it waits for room
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "all handled", func() bool { return rec.len() == 4 })
}

func TestEphemeralDropOldest(t *testing.T) {
	b := newBus(t)
	gate := make(chan struct{})
	var rec recorder
	s := mustSubscribe(t, b, "d.>", func(ctx context.Context, e *Event) error {
		<-gate
		rec.add(ctx, e)
		return nil
	}, BufferSize(2), DropOldest())
	var ps []uint64
	ps = append(ps, mustPublish(t, b, ev("d.e", "", "")))
	testwait.For(t, "in flight", func() bool { return s.Stats().InFlight == 1 })
	for range 5 {
		ps = append(ps, mustPublish(t, b, ev("d.e", "", "")))
	}
	close(gate)
	testwait.For(t, "handled", func() bool { return rec.len() == 3 })
	if st := s.Stats(); st.Dropped != 3 {
		t.Fatalf("dropped %d, want 3", st.Dropped)
	}
	got := []uint64{rec.evs[0].Position, rec.evs[1].Position, rec.evs[2].Position}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{ps[0], ps[4], ps[5]}) {
		t.Fatalf("handled %v of %v", got, ps)
	}
}

func TestDurableSubscriberHoldsBoundedMemoryStore(t *testing.T) {
	synctest.Test(t, testDurableSubscriberHoldsBoundedMemoryStore)
}

func testDurableSubscriberHoldsBoundedMemoryStore(t *testing.T) {
	st := sharedStore(t, WithMemoryMaxEvents(16))
	b := newBus(t, WithStore(st))
	gate := make(chan struct{})
	var rec recorder
	mustSubscribe(t, b, "m.>", func(ctx context.Context, e *Event) error {
		<-gate
		rec.add(ctx, e)
		return nil
	}, Durable("slow"), BufferSize(4))
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := b.Publish(ctx, ev("m.e", "", ""))
		cancel()
		if errors.Is(err, ErrBackpressure) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n > 16 {
			t.Fatal("the store took more than its bound while a subscriber lags")
		}
	}
	close(gate)
	// Room comes back as the subscriber commits.
	for range 40 {
		mustPublish(t, b, ev("m.e", "", ""))
	}
	testwait.For(t, "everything handled", func() bool { return rec.len() == n+40 })
}

func TestUnsubscribeLetsInFlightHandlerFinish(t *testing.T) {
	synctest.Test(t, testUnsubscribeLetsInFlightHandlerFinish)
}

func testUnsubscribeLetsInFlightHandlerFinish(t *testing.T) {
	b := newBus(t)
	gate := make(chan struct{})
	var finished atomic.Bool
	var rec recorder
	s := mustSubscribe(t, b, "u.>", func(ctx context.Context, e *Event) error {
		rec.add(ctx, e)
		<-gate
		finished.Store(true)
		return nil
	})
	mustPublish(t, b, ev("u.e", "", ""))
	testwait.For(t, "in flight", func() bool { return rec.len() == 1 })
	mustPublish(t, b, ev("u.e", "", "")) // queued, never delivered
	done := make(chan error, 1)
	go func() { done <- b.Unsubscribe(context.Background(), s) }()
	synctest.Wait()
	select {
	case <-done:
		t.Fatal("Unsubscribe returned while a handler was running")
	default:
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("handler did not finish")
	}
	<-s.Done()
	mustPublish(t, b, ev("u.e", "", ""))
	synctest.Wait()
	if rec.len() != 1 {
		t.Fatalf("delivered %d events, want 1", rec.len())
	}
}

func TestCloseDrainsAndRefuses(t *testing.T) { synctest.Test(t, testCloseDrainsAndRefuses) }

func testCloseDrainsAndRefuses(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var finished atomic.Bool
	mustSubscribe(t, b, "c.>", func(ctx context.Context, e *Event) error {
		<-gate
		finished.Store(true)
		return nil
	}, Durable("closer"))
	e := ev("c.e", "", "")
	mustPublish(t, b, e)
	testwait.For(t, "in flight", func() bool { return b.Subscriptions()[0].Stats.InFlight == 1 })
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	synctest.Wait() // Close is waiting for the handler
	select {
	case err := <-closed:
		t.Fatalf("Close returned before the handler finished: %v", err)
	default:
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler finished")
	}
	if _, err := b.Publish(context.Background(), ev("c.e", "", "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := b.Subscribe(context.Background(), ">", HandlerFunc(func(context.Context, *Event) error { return nil })); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseGivesUpAtDeadline(t *testing.T) { synctest.Test(t, testCloseGivesUpAtDeadline) }

func testCloseGivesUpAtDeadline(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	mustSubscribe(t, b, "h.>", func(ctx context.Context, e *Event) error {
		<-ctx.Done() // ends only when Close cancels it
		return ctx.Err()
	})
	mustPublish(t, b, ev("h.e", "", ""))
	testwait.For(t, "in flight", func() bool { return b.Subscriptions()[0].Stats.InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close with a handler that honours cancellation: %v", err)
	}
}

func TestBatchHandlerPerEventResults(t *testing.T) { synctest.Test(t, testBatchHandlerPerEventResults) }

func testBatchHandlerPerEventResults(t *testing.T) {
	b := newBus(t)
	var mu sync.Mutex
	var sizes []int
	count := map[int]int{}
	s, err := b.SubscribeBatch(context.Background(), "b.>", BatchHandlerFunc(func(ctx context.Context, evs []*Event) []error {
		if _, ok := FromContext(ctx); ok {
			t.Error("batch context carries a single event")
		}
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(evs))
		errs := make([]error, len(evs))
		failed := false
		for i, e := range evs {
			var d struct{ N int }
			json.Unmarshal(e.Data, &d)
			count[d.N]++
			if d.N == 7 && count[7] == 1 {
				errs[i] = Temporary(errors.New("try again"))
				failed = true
			}
		}
		if !failed {
			return nil
		}
		return errs
	}), Durable("batcher"), BatchSize(10), Backoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]*Event, 25)
	for i := range evs {
		evs[i] = ev("b.e", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	if _, err := b.PublishBatch(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "all handled", func() bool { return s.Stats().Handled == 25 })
	mu.Lock()
	defer mu.Unlock()
	for n := range 25 {
		want := 1
		if n == 7 {
			want = 2
		}
		if count[n] != want {
			t.Fatalf("event %d handled %d times, want %d", n, count[n], want)
		}
	}
	for _, sz := range sizes {
		if sz > 10 {
			t.Fatalf("batch of %d", sz)
		}
	}
}

func TestMetricsOnCallersRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBus(t, WithRegisterer(reg))
	var rec recorder
	mustSubscribe(t, b, "met.>", func(ctx context.Context, e *Event) error {
		if e.Name == "met.fail" {
			return Permanent(errors.New("no"))
		}
		rec.add(ctx, e)
		return nil
	}, Durable("metered"))
	mustPublish(t, b, ev("met.ok", "", ""))
	mustPublish(t, b, ev("met.fail", "", ""))
	testwait.For(t, "handled", func() bool { return len(deadLetters(t, b, "metered")) == 1 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"herald_events_published_total", "herald_event_processing_duration_seconds",
		"herald_handler_errors_total", "herald_dead_lettered_total", "herald_subscription_lag", "herald_publish_backpressure_total"} {
		if !got[name] {
			t.Errorf("metric %s missing (have %v)", name, got)
		}
	}
	if _, err := New(WithRegisterer(reg)); err == nil {
		t.Fatal("a second bus on the same registry must fail")
	}
}

func TestHungHandlerIsAbandoned(t *testing.T) { synctest.Test(t, testHungHandlerIsAbandoned) }

func testHungHandlerIsAbandoned(t *testing.T) {
	b := newBus(t)
	release := make(chan struct{})
	defer close(release)
	var rec recorder
	mustSubscribe(t, b, "hang.>", func(ctx context.Context, e *Event) error {
		if e.Name == "hang.forever" {
			<-release // ignores ctx
			return nil
		}
		rec.add(ctx, e)
		return nil
	}, Durable("hanger"), Timeout(20*time.Millisecond), MaxAttempts(2), Backoff(time.Millisecond, time.Millisecond))
	mustPublish(t, b, ev("hang.forever", "", ""))
	mustPublish(t, b, ev("hang.ok", "", ""))
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "hanger")) == 1 })
	dl := deadLetters(t, b, "hanger")[0]
	if len(dl.Errors) != 2 || !strings.Contains(dl.Errors[0].Error, "did not return") {
		t.Fatalf("history %+v", dl.Errors)
	}
	testwait.For(t, "subscription moves on", func() bool { return rec.len() == 1 })
}

func TestLogsNameEventButNeverPayload(t *testing.T) {
	var out testlog.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := newBus(t, WithLogger(logger))
	s := mustSubscribe(t, b, "log.>", func(ctx context.Context, e *Event) error {
		if e.Name == "log.fail" {
			return errors.New("database went away") // unknown: logged with its stack
		}
		return nil
	}, Durable("logger"), MaxAttempts(1))
	bad := ev("log.fail", "", `{"password":"hunter2"}`)
	mustPublish(t, b, bad)
	mustPublish(t, b, ev("log.ok", "", `{"password":"hunter2"}`))
	testwait.For(t, "both handled", func() bool { st := s.Stats(); return st.Handled == 1 && st.DeadLettered == 1 })
	logs := out.String()
	if strings.Contains(logs, "hunter2") {
		t.Fatalf("payload logged:\n%s", logs)
	}
	for _, want := range []string{bad.ID, `"subscription":"logger"`, `"attempt":1`, `"correlation_id"`, `"duration"`,
		`"unexpected":true`, `"stack"`, `"dead_lettered":true`, "herald: event handled"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestCloseAbandonsHungHandler(t *testing.T) { synctest.Test(t, testCloseAbandonsHungHandler) }

func testCloseAbandonsHungHandler(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	mustSubscribe(t, b, "stuck.>", func(ctx context.Context, e *Event) error {
		<-release // ignores ctx
		return nil
	}, Timeout(20*time.Millisecond))
	mustPublish(t, b, ev("stuck.e", "", ""))
	testwait.For(t, "in flight", func() bool { return b.Subscriptions()[0].Stats.InFlight == 1 })
	start := time.Now()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The hung call is abandoned after its timeout plus a grace of 100 ms,
	// seen at the watcher's next 10 ms tick.
	if el := time.Since(start); el > 130*time.Millisecond {
		t.Fatalf("Close took %v, want at most 130ms", el)
	}
}

func TestExpectVersionAndBatchDuplicates(t *testing.T) {
	synctest.Test(t, testExpectVersionAndBatchDuplicates)
}

func testExpectVersionAndBatchDuplicates(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	if _, err := b.Publish(ctx, ev("acct.opened", "acct/1", ""), ExpectVersion(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, ev("acct.credited", "acct/1", ""), ExpectVersion(0)); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	var rec recorder
	mustSubscribe(t, b, "acct.>", rec.handler())
	e1, e2 := ev("acct.credited", "acct/1", ""), ev("acct.debited", "acct/1", "")
	res, err := b.PublishBatch(ctx, []*Event{e1, e2}, ExpectVersion(1))
	if err != nil || len(res) != 2 || res[0].Position != 2 || res[1].Position != 3 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	again := []*Event{{ID: e1.ID, Name: "acct.credited", Subject: "acct/1"}, ev("acct.closed", "acct/1", "")}
	res, err = b.PublishBatch(ctx, again, ExpectVersion(3))
	if err != nil || !res[0].Duplicate || res[0].Position != 2 || res[1].Duplicate || res[1].Position != 4 {
		t.Fatalf("batch with a duplicate: %+v %v", res, err)
	}
	testwait.For(t, "deliveries", func() bool { return rec.len() == 3 })
	synctest.Wait()
	if rec.len() != 3 {
		t.Fatalf("%d deliveries, want 3 (the duplicate is not delivered)", rec.len())
	}
}

func TestStartPositions(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var stamps []time.Time
	for i := range 6 {
		e := ev("st.e", "", "")
		e.Timestamp = time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC)
		stamps = append(stamps, e.Timestamp)
		mustPublish(t, b, e)
	}
	first := func(rec *recorder) uint64 { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.evs[0].Position }
	var earliest, latest, pos, at recorder
	mustSubscribe(t, b, "st.>", earliest.handler(), Durable("earliest"))
	mustSubscribe(t, b, "st.>", latest.handler(), Durable("latest"), StartAt(StartLatest))
	mustSubscribe(t, b, "st.>", pos.handler(), Durable("pos"), StartAt(StartPosition(4)))
	mustSubscribe(t, b, "st.>", at.handler(), Durable("at"), StartAt(StartTime(stamps[2])))
	mustPublish(t, b, ev("st.e", "", ""))
	testwait.For(t, "deliveries", func() bool {
		return earliest.len() == 7 && latest.len() == 1 && pos.len() == 4 && at.len() == 5
	})
	if first(&earliest) != 1 || first(&latest) != 7 || first(&pos) != 4 || first(&at) != 3 {
		t.Fatalf("first positions %d %d %d %d", first(&earliest), first(&latest), first(&pos), first(&at))
	}
	// Replay by time while running.
	if cp, err := b.Reset(ctx, "latest", StartTime(stamps[4])); err != nil || cp != 4 {
		t.Fatalf("Reset to a time = %d, %v; want checkpoint 4 (the event stamped then is at 5)", cp, err)
	}
	testwait.For(t, "replay from a time", func() bool { return latest.len() == 4 })
}
