package herald

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// A redrive in flight when the subscription is reset still resolves its
// dead letter: Reset moves the log position, not the redrives.
func TestRedriveInFlightSurvivesReset(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var fixed atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	mustSubscribe(t, b, "job.run", func(ctx context.Context, e *Event) error {
		if !fixed.Load() {
			return Permanent(errors.New("broken"))
		}
		entered <- struct{}{}
		<-release
		return nil
	}, Durable("jobs"))
	e := ev("job.run", "", "")
	mustPublish(t, b, e)
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "jobs")) == 1 })

	fixed.Store(true)
	if n, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "jobs"}); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	<-entered
	if _, err := b.Reset(ctx, "jobs", StartLatest); err != nil {
		t.Fatal(err)
	}
	close(release)
	testwait.For(t, "dead letter resolved", func() bool { return len(deadLetters(t, b, "jobs")) == 0 })
}

// A redrive still queued when the subscription is reset is delivered
// afterwards: Reset drops queued log events, not requested redrives.
func TestRedriveQueuedSurvivesReset(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var fixed atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var redriven atomic.Int32
	s := mustSubscribe(t, b, "job.>", func(ctx context.Context, e *Event) error {
		switch {
		case e.Name == "job.block":
			entered <- struct{}{}
			<-release
			return nil
		case !fixed.Load():
			return Permanent(errors.New("broken"))
		}
		redriven.Add(1)
		return nil
	}, Durable("jobs"))
	mustPublish(t, b, ev("job.run", "", ""))
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "jobs")) == 1 })

	mustPublish(t, b, ev("job.block", "", ""))
	<-entered // the only worker is busy: the redrive waits in the queue
	fixed.Store(true)
	if n, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "jobs"}); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	testwait.For(t, "redrive queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.q.count == 1
	})
	if _, err := b.Reset(ctx, "jobs", StartLatest); err != nil {
		t.Fatal(err)
	}
	close(release)
	testwait.For(t, "dead letter resolved", func() bool { return len(deadLetters(t, b, "jobs")) == 0 })
	if n := redriven.Load(); n != 1 {
		t.Fatalf("redriven event handled %d times, want 1", n)
	}
}

// A publisher waiting behind another publisher that waits for room in a
// full ephemeral subscription gives up at its own deadline, not the other's.
func TestPublishDeadlineHoldsBehindAnotherPublisher(t *testing.T) {
	synctest.Test(t, testPublishDeadlineHoldsBehindAnotherPublisher)
}

func testPublishDeadlineHoldsBehindAnotherPublisher(t *testing.T) {
	b := newBus(t, WithPublishTimeout(3*time.Second))
	gate := make(chan struct{})
	s := mustSubscribe(t, b, "bp.>", func(ctx context.Context, e *Event) error {
		<-gate
		return nil
	}, BufferSize(1))
	defer close(gate)
	mustPublish(t, b, ev("bp.e", "", "")) // in flight
	testwait.For(t, "in flight", func() bool { return s.Stats().InFlight == 1 })
	mustPublish(t, b, ev("bp.e", "", "")) // queued: the subscription is full

	first := make(chan error, 1)
	go func() { _, err := b.Publish(context.Background(), ev("bp.e", "", "")); first <- err }()
	synctest.Wait()
	select {
	case err := <-first:
		t.Fatalf("first publisher did not wait for room: %v", err)
	default: // it waits for room, up to its 3 s publish timeout
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Publish(ctx, ev("bp.other", "", ""))
	if took := time.Since(start); !errors.Is(err, ErrBackpressure) || took != 50*time.Millisecond {
		t.Fatalf("second publisher: %v after %v, want ErrBackpressure after 50ms", err, took)
	}
	gate <- struct{}{} // the first publisher gets room
	if err := <-first; err != nil {
		t.Fatalf("first publisher: %v", err)
	}
}

// Reset of a subscription that is closing is not undone by the final commit
// of that subscription.
func TestResetWhileClosingIsNotOverwritten(t *testing.T) {
	synctest.Test(t, testResetWhileClosingIsNotOverwritten)
}

func testResetWhileClosingIsNotOverwritten(t *testing.T) {
	st := sharedStore(t)
	b := newBus(t, WithStore(st))
	ctx := context.Background()
	gate := make(chan struct{})
	entered := make(chan struct{})
	s := mustSubscribe(t, b, "c.>", func(ctx context.Context, e *Event) error {
		if e.Name == "c.last" {
			close(entered)
			<-gate
		}
		return nil
	}, Durable("closing"))
	for range 4 {
		mustPublish(t, b, ev("c.e", "", ""))
	}
	mustPublish(t, b, ev("c.last", "", ""))
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	testwait.For(t, "stopping", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.stopping })
	reset := make(chan error, 1)
	go func() { _, err := b.Reset(ctx, "closing", StartEarliest); reset <- err }()
	synctest.Wait() // the Reset waits for the closing subscription
	select {
	case err := <-reset:
		t.Fatalf("Reset returned while the subscription was closing: %v", err)
	default:
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-reset; err != nil {
		t.Fatal(err)
	}
	if cp, _, err := st.Checkpoint(ctx, "closing"); err != nil || cp != 0 {
		t.Fatalf("checkpoint %d (%v), want 0 after the reset", cp, err)
	}
}

// gatedStore holds its first Checkpoint call until gate is closed.
type gatedStore struct {
	Store
	entered chan struct{}
	gate    chan struct{}
	used    atomic.Bool
}

func (g *gatedStore) Checkpoint(ctx context.Context, sub string) (uint64, bool, error) {
	if !g.used.Swap(true) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.Checkpoint(ctx, sub)
}

// Discarding a dead letter of a durable subscription that is still reading
// its checkpoint does not move that checkpoint (which would replay the log).
func TestDiscardDuringSubscribeKeepsCheckpoint(t *testing.T) {
	synctest.Test(t, testDiscardDuringSubscribeKeepsCheckpoint)
}

func testDiscardDuringSubscribeKeepsCheckpoint(t *testing.T) {
	st := sharedStore(t)
	ctx := context.Background()
	b1 := newBus(t, WithStore(st))
	s1 := mustSubscribe(t, b1, "x.>", func(ctx context.Context, e *Event) error {
		return Permanent(errors.New("no"))
	}, Durable("x"))
	for range 3 {
		mustPublish(t, b1, ev("x.e", "", ""))
	}
	testwait.For(t, "dead letters", func() bool { return len(deadLetters(t, b1, "x")) == 3 })
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	g := &gatedStore{Store: st, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b2 := newBus(t, WithStore(g))
	var replayed atomic.Int32
	subscribed := make(chan error, 1)
	go func() {
		_, err := b2.Subscribe(ctx, "x.>", HandlerFunc(func(ctx context.Context, e *Event) error {
			replayed.Add(1)
			return nil
		}), Durable("x"))
		subscribed <- err
	}()
	<-g.entered
	discarded := make(chan error, 1)
	go func() {
		n, err := b2.Discard(ctx, DeadLetterQuery{Subscription: "x"})
		if err == nil && n != 3 {
			err = fmt.Errorf("discarded %d, want 3", n)
		}
		discarded <- err
	}()
	synctest.Wait() // the Discard runs, or waits, while Subscribe reads the checkpoint
	close(g.gate)
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	if err := <-discarded; err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if n := replayed.Load(); n != 0 {
		t.Fatalf("%d events replayed after the discard", n)
	}
	if cp, _, _ := st.Checkpoint(ctx, "x"); cp != 3 {
		t.Fatalf("checkpoint %d, want 3", cp)
	}
}

// flakyCommitStore fails the next fail Commit calls.
type flakyCommitStore struct {
	Store
	fail atomic.Int32
}

func (f *flakyCommitStore) Commit(ctx context.Context, sub string, p Progress) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("disk hiccup")
	}
	return f.Store.Commit(ctx, sub, p)
}

// Progress whose commit failed is committed again without waiting for more
// events: an idle subscription does not sit on its outcomes and checkpoint.
func TestFailedCommitIsRetried(t *testing.T) { synctest.Test(t, testFailedCommitIsRetried) }

func testFailedCommitIsRetried(t *testing.T) {
	st := sharedStore(t)
	f := &flakyCommitStore{Store: st}
	b := newBus(t, WithStore(f))
	ctx := context.Background()
	var rec recorder
	mustSubscribe(t, b, "f.>", rec.handler(), Durable("flaky"))
	f.fail.Store(3)
	e := ev("f.e", "", "")
	p := mustPublish(t, b, e)
	testwait.For(t, "handled", func() bool { return rec.len() == 1 })
	testwait.For(t, "outcome and checkpoint committed", func() bool {
		outs, _ := st.Outcomes(ctx, OutcomeQuery{EventID: e.ID})
		cp, _, _ := st.Checkpoint(ctx, "flaky")
		return len(outs) == 1 && cp == p
	})
}

// A handler whose context Close cancelled has not failed: its event is not
// dead-lettered but left for the subscription's next run.
func TestCloseCancelledHandlerIsNotDeadLettered(t *testing.T) {
	synctest.Test(t, testCloseCancelledHandlerIsNotDeadLettered)
}

func testCloseCancelledHandlerIsNotDeadLettered(t *testing.T) {
	st := sharedStore(t)
	b := newBus(t, WithStore(st))
	entered := make(chan struct{})
	s := mustSubscribe(t, b, "k.>", func(ctx context.Context, e *Event) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}, Durable("k"), MaxAttempts(1))
	mustPublish(t, b, ev("k.e", "", ""))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		// The handler returns at once when cancelled, but a loaded machine
		// may take longer than Close's grace period: what is checked below
		// holds either way.
		t.Logf("Close: %v", err)
	}
	bg := context.Background()
	if dls, err := st.DeadLetters(bg, DeadLetterQuery{Subscription: "k"}); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters after Close: %v %v", dls, err)
	}
	if cp, _, _ := st.Checkpoint(bg, "k"); cp != 0 {
		t.Fatalf("checkpoint %d, want 0: the event is not done", cp)
	}
	var rec recorder
	mustSubscribe(t, b, "k.>", rec.handler(), Durable("k"))
	testwait.For(t, "redelivered", func() bool { return rec.len() == 1 })
}

// A Reset does not let the replay of a subject overtake (or run alongside)
// that subject's event still in flight from before the Reset.
func TestResetKeepsSubjectOrderWithInFlightEvent(t *testing.T) {
	synctest.Test(t, testResetKeepsSubjectOrderWithInFlightEvent)
}

func testResetKeepsSubjectOrderWithInFlightEvent(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	var active, overlap, calls atomic.Int32
	mustSubscribe(t, b, "o.>", func(ctx context.Context, e *Event) error {
		if active.Add(1) > 1 {
			overlap.Add(1)
		}
		defer active.Add(-1)
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-gate
		}
		return nil
	}, Durable("ordered"), Concurrency(4))
	mustPublish(t, b, ev("o.e", "agg-1", ""))
	<-entered
	if _, err := b.Reset(ctx, "ordered", StartEarliest); err != nil {
		t.Fatal(err)
	}
	// The replay of agg-1 is read and queued while its first event is
	// still in flight; it waits for that event instead of running now.
	synctest.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("the replay ran while the event before it was in flight (%d calls)", n)
	}
	close(gate)
	testwait.For(t, "replayed", func() bool { return calls.Load() == 2 })
	if n := overlap.Load(); n != 0 {
		t.Fatalf("the replay ran alongside the in-flight event of its subject %d times", n)
	}
}

// A handler that fails because the bus closed under it (its follow-up
// publish returns ErrClosed) has not failed its event: no dead letter, and
// the event is delivered again on the next run.
func TestHandlerFailingWithErrClosedDuringCloseIsNotDeadLettered(t *testing.T) {
	st := sharedStore(t)
	ctx := context.Background()
	b, err := New(WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	gate := make(chan struct{})
	mustSubscribe(t, b, "p.in", func(ctx context.Context, e *Event) error {
		close(entered)
		<-gate
		_, err := b.Publish(ctx, ev("p.out", "", ""))
		return err
	}, Durable("p"), MaxAttempts(1))
	mustPublish(t, b, ev("p.in", "", ""))
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	testwait.For(t, "closing", func() bool { return b.closed.Load() })
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if dls, _ := st.DeadLetters(ctx, DeadLetterQuery{}); len(dls) != 0 {
		t.Fatalf("dead-lettered during Close: %+v", dls[0].Errors)
	}
	if cp, _, _ := st.Checkpoint(ctx, "p"); cp != 0 {
		t.Fatalf("checkpoint %d, want 0", cp)
	}
}

// A publisher held by a full ephemeral subscription goes on as soon as
// there is room for its event, even when the rest of the queue is waiting
// for retries and cannot drain.
func TestPublisherWakesWhenRoomAppears(t *testing.T) {
	synctest.Test(t, testPublisherWakesWhenRoomAppears)
}

func testPublisherWakesWhenRoomAppears(t *testing.T) {
	b := newBus(t)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := mustSubscribe(t, b, "w.>", func(ctx context.Context, e *Event) error {
		switch e.Name {
		case "w.fail":
			return Temporary(errors.New("later"))
		case "w.block":
			entered <- struct{}{}
			<-gate
		}
		return nil
	}, BufferSize(4), Backoff(time.Hour, time.Hour), MaxAttempts(2))
	for range 3 {
		mustPublish(t, b, ev("w.fail", "", ""))
	}
	testwait.For(t, "retries pending", func() bool { return s.Stats().Retried == 3 })
	mustPublish(t, b, ev("w.block", "", ""))
	<-entered
	mustPublish(t, b, ev("w.x", "", "")) // the queue is full: 3 retries and this one
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := b.Publish(ctx, ev("w.y", "", ""))
		done <- err
	}()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("publish to a full queue returned at once: %v", err)
	default: // it waits for room
	}
	close(gate) // w.x is taken: there is room for w.y
	if err := <-done; err != nil {
		t.Fatalf("publish with room in the queue: %v", err)
	}
}

// A durable subscription whose read-ahead is mostly events waiting for
// retries keeps reading and delivering what comes after them.
func TestDurableReadsOnPastPendingRetries(t *testing.T) {
	b := newBus(t)
	var ok atomic.Int32
	mustSubscribe(t, b, "r.>", func(ctx context.Context, e *Event) error {
		if e.Name == "r.fail" {
			return Temporary(errors.New("later"))
		}
		ok.Add(1)
		return nil
	}, Durable("reader"), BufferSize(4), Backoff(time.Hour, time.Hour), MaxAttempts(2))
	for range 3 {
		mustPublish(t, b, ev("r.fail", "", ""))
	}
	for range 10 {
		mustPublish(t, b, ev("r.ok", "", ""))
	}
	// Stalled, they would wait an hour for the retries.
	testwait.For(t, "the 10 events after the pending retries", func() bool { return ok.Load() == 10 })
}

// slowRedriveList returns the second listing of dead letters to redrive
// late: only once the listed entries are resolved (or after 500 ms). It
// simulates a slow store, so it waits on the real clock.
type slowRedriveList struct {
	Store
	calls   atomic.Int32
	entered chan struct{}
}

func (s *slowRedriveList) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	dls, err := s.Store.DeadLetters(ctx, q)
	if !q.OnlyRedrive || len(dls) == 0 || s.calls.Add(1) != 2 {
		return dls, err
	}
	close(s.entered)
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if now, _ := s.Store.DeadLetters(ctx, DeadLetterQuery{IDs: []string{dls[0].ID}}); len(now) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return dls, err
}

// A redrive that succeeds while the subscription is listing redrives again
// is not delivered a second time from that stale listing.
//
// It runs on the real clock: the subscription holds its flush lock while it
// lists redrives, and a bubble's clock does not move while a goroutine waits
// for a mutex.
func TestRedriveNotRepeatedFromStaleListing(t *testing.T) {
	st := sharedStore(t)
	slow := &slowRedriveList{Store: st, entered: make(chan struct{})}
	b := newBus(t, WithStore(slow))
	ctx := context.Background()
	var fixed atomic.Bool
	var calls atomic.Int32
	entered := make(chan struct{})
	gate := make(chan struct{})
	// The id is chosen here: Publish fills in the event it is given, which
	// the handler must not read.
	const sentinelID = "q-sentinel"
	sentinel := ev("q.sentinel", "", "")
	sentinel.ID = sentinelID
	var sentinelSeen atomic.Bool
	mustSubscribe(t, b, "q.>", func(ctx context.Context, e *Event) error {
		if e.ID == sentinelID {
			sentinelSeen.Store(true)
			return nil
		}
		if !fixed.Load() {
			return Permanent(errors.New("broken"))
		}
		if calls.Add(1) == 1 {
			close(entered)
			<-gate
		}
		return nil
	}, Durable("q"))
	mustPublish(t, b, ev("q.e", "", ""))
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "q")) == 1 })
	fixed.Store(true)
	if _, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "q"}); err != nil {
		t.Fatal(err)
	}
	<-entered
	if _, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "q"}); err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	close(gate)
	testwait.For(t, "resolved", func() bool { return len(deadLetters(t, b, "q")) == 0 })
	// A second delivery from the stale listing is queued before anything
	// read from the log after it: once a later event is handled, it would
	// have been too.
	mustPublish(t, b, sentinel)
	testwait.For(t, "the sentinel event", sentinelSeen.Load)
	if n := calls.Load(); n != 1 {
		t.Fatalf("redriven event handled %d times, want 1", n)
	}
}

// A dead letter discarded while its redrive is in flight stays discarded
// when that redrive fails again.
func TestDiscardDuringFailingRedriveStaysDiscarded(t *testing.T) {
	synctest.Test(t, testDiscardDuringFailingRedriveStaysDiscarded)
}

func testDiscardDuringFailingRedriveStaysDiscarded(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var redriving atomic.Bool
	entered := make(chan struct{})
	gate := make(chan struct{})
	mustSubscribe(t, b, "d.e", func(ctx context.Context, e *Event) error {
		if redriving.Load() {
			close(entered)
			<-gate
		}
		return Permanent(errors.New("still broken"))
	}, Durable("disc"))
	e := ev("d.e", "", "")
	mustPublish(t, b, e)
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "disc")) == 1 })
	redriving.Store(true)
	if _, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "disc"}); err != nil {
		t.Fatal(err)
	}
	<-entered
	if n, err := b.Discard(ctx, DeadLetterQuery{Subscription: "disc"}); err != nil || n != 1 {
		t.Fatalf("discard: %d %v", n, err)
	}
	close(gate)
	testwait.For(t, "discarded outcome", func() bool {
		outs, _ := b.Outcomes(ctx, OutcomeQuery{EventID: e.ID})
		return len(outs) == 1 && outs[0].Status == OutcomeDiscarded && outs[0].Attempts == 2
	})
	synctest.Wait()
	if dls := deadLetters(t, b, "disc"); len(dls) != 0 {
		t.Fatalf("discarded dead letter came back: %+v", dls[0].Errors)
	}
}

// A Reset that finds no subscription running, racing with a Subscribe of
// that name, still moves the subscription that then runs.
func TestResetRacingSubscribe(t *testing.T) {
	st := sharedStore(t)
	ctx := context.Background()
	b1 := newBus(t, WithStore(st))
	var rec recorder
	s1 := mustSubscribe(t, b1, "z.>", rec.handler(), Durable("z"))
	for range 3 {
		mustPublish(t, b1, ev("z.e", "", ""))
	}
	testwait.For(t, "first pass", func() bool { return rec.len() == 3 })
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	g := &gatedStore{Store: st, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b2 := newBus(t, WithStore(g))
	reset := make(chan error, 1)
	go func() { _, err := b2.Reset(ctx, "z", StartEarliest); reset <- err }()
	<-g.entered // the Reset found nothing running and reads the checkpoint
	mustSubscribe(t, b2, "z.>", rec.handler(), Durable("z"))
	close(g.gate)
	if err := <-reset; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "replay", func() bool { return rec.len() == 6 })
}

// stuckCommitStore is a store whose disk stops answering: once stuck,
// Commit waits until its context ends.
type stuckCommitStore struct {
	Store
	stuck   atomic.Bool
	waiting atomic.Int32 // commits waiting now
}

func (s *stuckCommitStore) Commit(ctx context.Context, sub string, p Progress) error {
	if s.stuck.Load() {
		s.waiting.Add(1)
		defer s.waiting.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.Commit(ctx, sub, p)
}

// Close keeps to its context: a durable subscription whose last commit
// does not finish returns about when ctx ends (a second later at most),
// with an error, instead of waiting on the store for as long as each
// commit may take. A graceful stop of many subscriptions overran its
// shutdown timeout that way.
func TestCloseKeepsToItsContextWhenCommitsHang(t *testing.T) {
	synctest.Test(t, testCloseKeepsToItsContextWhenCommitsHang)
}

func testCloseKeepsToItsContextWhenCommitsHang(t *testing.T) {
	st := &stuckCommitStore{Store: sharedStore(t)}
	b := newBus(t, WithStore(st))
	var rec recorder
	s := mustSubscribe(t, b, "h.>", rec.handler(), Durable("hung"))
	mustPublish(t, b, ev("h.e", "", ""))
	testwait.For(t, "handled", func() bool { return rec.len() == 1 })
	st.stuck.Store(true)
	mustPublish(t, b, ev("h.e", "", ""))
	testwait.For(t, "handled", func() bool { return rec.len() == 2 })
	testwait.For(t, "the batching commit of that outcome under way, and stuck", func() bool { return st.waiting.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v with a 2 s context", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want an error wrapping the deadline", err)
	}
}

// unreadableDeadLetters is a store whose dead letters cannot be listed
// (as if each were too large to read back at once).
type unreadableDeadLetters struct{ Store }

func (unreadableDeadLetters) DeadLetters(context.Context, DeadLetterQuery) ([]DeadLetter, error) {
	return nil, errors.New("dead letters read in full")
}

// Counting dead letters (GET /v1/subscriptions, every /metrics scrape)
// asks the store for counts: it read every dead letter, event and all,
// so a queue of large events cost its whole size in memory at each
// scrape.
func TestDeadLetterCountsDoNotReadDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := sharedStore(t)
		b := newBus(t, WithStore(unreadableDeadLetters{st}))
		ctx := context.Background()
		e := ev("c.e", "", "")
		mustPublish(t, b, e)
		if err := st.Commit(ctx, "c", Progress{DeadLetters: []DeadLetter{{Event: e, Errors: []AttemptError{{Attempt: 1, Error: "x"}}}}}); err != nil {
			t.Fatal(err)
		}
		n, err := b.DeadLetterCounts(ctx)
		if err != nil || n["c"] != 1 {
			t.Fatalf("DeadLetterCounts = %v, %v; want c: 1", n, err)
		}
	})
}
