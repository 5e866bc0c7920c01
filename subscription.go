package herald

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Subscription is a running subscription of a Bus, returned by Subscribe
// and SubscribeBatch. Its methods are safe for concurrent use, and keep
// working once it has stopped (Close then returns nil).
type Subscription struct {
	bus     *Bus
	name    string
	pattern string
	durable bool
	cfg     subConfig
	log     *slog.Logger
	m       *subMetrics

	baseCtx    context.Context // parent of handler contexts; cancelled when Close gives up
	baseCancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	src      source    // where events come from
	q        scheduler // the events taken in and not finished
	c        committer // durable progress
	run      runner    // the handler calls

	// goroutines
	running int
	exited  chan struct{} // closed when the last goroutine ends
	done    chan struct{}
	once    sync.Once

	handled, failed, retried, deadLettered, dropped atomic.Uint64
}

// Name returns the subscription's name: its durable name, or a name the
// bus made up for an ephemeral one.
func (s *Subscription) Name() string { return s.name }

// Done is closed once the subscription has stopped (by Close,
// Bus.Unsubscribe or Bus.Close).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Stats returns the subscription's counters. It may be called at any time,
// also after Close (the counters keep their last values).
func (s *Subscription) Stats() SubscriptionStats {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	head, _ := s.bus.store.Head(ctx)
	return s.stats(head)
}

func (s *Subscription) stats(head uint64) SubscriptionStats {
	s.mu.Lock()
	pos, inflight, queued := s.src.lastPos, s.q.inflight, s.q.count
	if s.durable {
		pos = s.c.checkpointLocked()
	}
	s.mu.Unlock()
	st := SubscriptionStats{
		Position: pos, Head: head, InFlight: inflight,
		Handled: s.handled.Load(), Failed: s.failed.Load(), Retried: s.retried.Load(),
		DeadLettered: s.deadLettered.Load(), Dropped: s.dropped.Load(),
	}
	switch {
	case !s.durable:
		// An ephemeral subscription is behind by what it holds.
		st.Lag = uint64(queued + inflight)
		st.Position = head - min(head, st.Lag)
	case head > pos:
		st.Lag = head - pos
	}
	return st
}

// start launches the subscription's goroutines.
func (s *Subscription) start() {
	n := s.cfg.concurrency + 1 // workers and watchdog
	if s.durable {
		n += 2 // reader and flusher
	}
	s.running = n
	for range s.cfg.concurrency {
		go s.work()
	}
	go s.watch()
	if s.durable {
		go func() { defer s.workerDone(); s.c.flushLoop(s.src.readCtx) }()
		if s.src.consumer != nil {
			go s.consumeLoop()
		} else {
			go s.readLoop()
		}
	}
}

func (s *Subscription) workerDone() {
	s.mu.Lock()
	s.running--
	last := s.running == 0
	s.mu.Unlock()
	if last {
		close(s.exited)
	}
}

// finalCommitGrace is how long Close gives a durable subscription's last
// commit once Close's context has ended.
const finalCommitGrace = time.Second

// Close stops delivery: no new event is handed to the handler, handler
// calls in progress are allowed to finish until ctx ends (their contexts
// are then cancelled), and a durable subscription commits its outcomes and
// checkpoint, before ctx ends or, when ctx has ended by then, within
// finalCommitGrace (progress it could not commit is delivered again when
// the subscription runs again, and Close returns the commit's error). Events that were queued, waiting for a retry, or whose call
// failed because of the Close (see Handler), are not delivered (nor
// dead-lettered) by this subscription: a durable one delivers them when it
// runs again, an ephemeral one drops them. Close waits for the
// subscription's goroutines and returns an error wrapping ctx's error if
// handlers were still running 100 ms after ctx ended (they are abandoned:
// their goroutines end whenever the handlers return). Calling it again, or
// concurrently, returns nil at once without waiting.
//
// Close must not be called from the subscription's own handler with a
// context that does not end: it waits for that very handler to return.
// Call it from another goroutine instead.
func (s *Subscription) Close(ctx context.Context) error {
	var err error
	first := false
	s.once.Do(func() {
		first = true
		err = s.stop(ctx)
	})
	if !first {
		return nil
	}
	return err
}

func (s *Subscription) stop(ctx context.Context) error {
	s.run.halted.Store(true)
	s.mu.Lock()
	s.stopping = true
	s.dropQueuedLocked(false)
	if s.src.spaceWaiters {
		close(s.src.spaceCh)
		s.src.spaceCh = make(chan struct{})
		s.src.spaceWaiters = false
	}
	s.q.cond.Broadcast()
	s.src.readerCond.Broadcast()
	if len(s.run.workers) == 0 && !s.run.workersGoneClosed {
		s.run.workersGoneClosed = true
		close(s.run.workersGone)
	}
	s.mu.Unlock()
	s.src.readCancel()

	var err error
	select {
	case <-s.exited:
	case <-ctx.Done():
		s.baseCancel()
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.exited:
		case <-t.C:
			err = fmt.Errorf("herald: subscription %s: handlers still running: %w", s.name, ctx.Err())
		}
		t.Stop()
	}
	s.mu.Lock()
	s.q.detachLocked()
	s.mu.Unlock()
	s.baseCancel()
	if s.durable {
		// The last commit keeps to ctx; once ctx has ended it gets a
		// second more. What it could not store is delivered again when
		// the subscription runs again.
		fctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finalCommitGrace)
			defer cancel()
		}
		if ferr := s.c.flush(fctx); ferr != nil && err == nil && !errors.Is(ferr, ErrClosed) {
			err = ferr
		}
		if cerr := s.src.closeConsumer(); cerr != nil && err == nil {
			err = cerr
		}
	}
	// Forget the series before the name is free: a new subscription of
	// the same name keeps its own.
	s.bus.metrics.forget(s.name)
	s.bus.removeSub(s)
	close(s.done)
	return err
}
