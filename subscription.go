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
	h       Handler
	bh      BatchHandler
	log     *slog.Logger
	m       *subMetrics

	baseCtx    context.Context // parent of handler contexts; cancelled when Close gives up
	baseCancel context.CancelFunc
	readCtx    context.Context // the reader's; cancelled when Close starts
	readCancel context.CancelFunc

	mu            sync.Mutex
	q             scheduler  // the events taken in and not finished
	readerCond    *sync.Cond // reader: room, redrive, reset or stopping
	stopping      bool
	spaceCh       chan struct{}
	spaceWaiters  bool
	spaceNeed     int // the smallest room a waiting publisher needs
	readerWaiting bool
	lastPos       uint64       // ephemeral: position of the last event taken in
	reserved      atomic.Int64 // ephemeral: room publishers reserved (reserve)

	c committer // durable progress

	// durable and shared sources
	redriveReq bool
	wakeReader context.CancelFunc
	consumer   Consumer

	workers           map[*worker]struct{}
	workersGone       chan struct{} // closed when stopping and no worker is left
	workersGoneClosed bool
	halted            atomic.Bool // set when Close starts: workers stop between events
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
	pos, inflight, queued := s.lastPos, s.q.inflight, s.q.count
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
		go func() { defer s.workerDone(); s.c.flushLoop(s.readCtx.Done()) }()
		if s.consumer != nil {
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

// reserve makes room for n events that a publisher is about to append,
// waiting until the ephemeral subscription can queue them (or is empty and
// has nothing reserved), until the deadline (set from ctx when zero), or
// until it stops. A subscription that drops its oldest events reserves
// nothing. push takes the reservation up; unreserve gives it back.
func (s *Subscription) reserve(ctx context.Context, n int, deadline *time.Time) error {
	if s.cfg.dropOldest {
		return nil
	}
	n64 := int64(n)
	r := s.reserved.Add(n64)
	if d := s.q.depth.Load(); d+r <= int64(s.cfg.bufferSize) || d+r == n64 {
		return nil
	}
	s.reserved.Add(-n64)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		r := s.reserved.Add(n64)
		if s.stopping || int64(s.q.count)+r <= int64(s.cfg.bufferSize) || int64(s.q.count)+r == n64 {
			s.mu.Unlock()
			return nil
		}
		s.reserved.Add(-n64)
		used := s.q.count
		ch := s.spaceCh
		if !s.spaceWaiters || n < s.spaceNeed {
			s.spaceNeed = n
		}
		s.spaceWaiters = true
		s.mu.Unlock()
		if timer == nil {
			if deadline.IsZero() {
				*deadline = s.bus.deadline(ctx)
			}
			timer = time.NewTimer(time.Until(*deadline))
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("%w: subscription %s is %d events behind", ErrBackpressure, s.name, used)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: subscription %s is %d events behind", ErrBackpressure, s.name, used)
			}
			return ctx.Err()
		}
	}
}

// unreserve gives back room reserved for n events that were not stored.
func (s *Subscription) unreserve(n int) {
	if s.cfg.dropOldest {
		return
	}
	s.mu.Lock()
	s.reserved.Add(-int64(n))
	s.roomLocked()
	s.mu.Unlock()
}

// push hands a published event to an ephemeral subscription, taking up
// the room its publisher reserved.
func (s *Subscription) push(e *Event) {
	s.mu.Lock()
	if !s.cfg.dropOldest {
		s.reserved.Add(-1)
	}
	if s.stopping {
		s.mu.Unlock()
		return
	}
	if s.cfg.dropOldest && s.q.count >= s.cfg.bufferSize && !s.dropOldestLocked() {
		s.dropped.Add(1)
		if s.m != nil {
			s.m.dropped.Inc()
		}
		s.mu.Unlock()
		return
	}
	s.lastPos = e.Position
	s.q.enqueueLocked(item{ev: e})
	s.mu.Unlock()
}

// readLoop feeds a durable subscription from the log.
func (s *Subscription) readLoop() {
	defer s.workerDone()
	st := s.bus.store
	var buf []*Event
	for {
		s.mu.Lock()
		for !s.stopping && !s.redriveReq && s.q.count >= s.cfg.bufferSize {
			s.readerWaiting = true
			s.readerCond.Wait()
		}
		s.readerWaiting = false
		if s.stopping {
			s.mu.Unlock()
			return
		}
		room := max(1, s.cfg.bufferSize-s.q.count)
		after, epoch, redrive := s.c.readPosLocked(), s.c.epoch, s.redriveReq
		s.redriveReq = false
		s.mu.Unlock()

		if redrive {
			s.loadRedrives()
		}
		var head uint64
		var err error
		if mem := s.bus.mem; mem != nil {
			head = mem.headPos.Load() // no lock
		} else {
			head, err = st.Head(s.readCtx)
		}
		if err == nil {
			buf = buf[:0]
			for e, rerr := range st.Read(s.readCtx, after, Filter{Name: s.pattern, Limit: room}) {
				if rerr != nil {
					err = rerr
					break
				}
				buf = append(buf, e)
			}
		}
		if err != nil {
			if s.readCtx.Err() != nil || errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			s.log.Error("herald: reading the log failed", "subscription", s.name, "error", err)
			s.sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.c.epoch != epoch || s.stopping {
			s.mu.Unlock()
			clear(buf)
			continue
		}
		for _, e := range buf {
			s.q.enqueueLocked(item{ev: e, seq: s.c.trackLocked(e.Position), epoch: s.c.epoch})
		}
		var through uint64
		if len(buf) < room {
			through = head
		}
		if len(buf) > 0 {
			through = max(through, buf[len(buf)-1].Position)
		}
		pos := s.c.readThroughLocked(through)
		caughtUp := len(buf) < room
		var wctx context.Context
		var cancel context.CancelFunc
		if caughtUp && len(buf) == 0 {
			// The wait ends now and then to look for dead letters that
			// another process marked for redrive.
			wctx, cancel = context.WithTimeout(s.readCtx, redrivePoll)
			s.wakeReader = cancel
			if s.redriveReq {
				cancel()
			}
		}
		s.mu.Unlock()
		clear(buf)
		if cancel == nil {
			continue
		}
		_, err = st.Wait(wctx, pos)
		s.mu.Lock()
		s.wakeReader = nil
		s.mu.Unlock()
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && s.readCtx.Err() == nil {
			s.mu.Lock()
			s.redriveReq = true
			s.mu.Unlock()
			continue
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			if errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			s.log.Error("herald: waiting for the log failed", "subscription", s.name, "error", err)
			s.sleep(100 * time.Millisecond)
		}
	}
}

// redrivePoll is how often an idle durable subscription looks for dead
// letters marked for redrive by another process (this process's Redrive
// wakes it at once).
const redrivePoll = 10 * time.Second

// idleUntilStopped parks the reader of a subscription whose store is gone
// until the subscription is closed.
func (s *Subscription) idleUntilStopped() { <-s.readCtx.Done() }

func (s *Subscription) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.readCtx.Done():
	}
}

// consumeLoop feeds a durable subscription from a shared store's consumer.
func (s *Subscription) consumeLoop() {
	defer s.workerDone()
	for {
		s.mu.Lock()
		for !s.stopping && !s.redriveReq && s.q.count >= s.cfg.bufferSize {
			s.readerWaiting = true
			s.readerCond.Wait()
		}
		s.readerWaiting = false
		if s.stopping {
			s.mu.Unlock()
			return
		}
		room := max(1, s.cfg.bufferSize-s.q.count)
		redrive := s.redriveReq
		s.redriveReq = false
		s.mu.Unlock()
		if redrive {
			s.loadRedrives()
		}
		fctx, cancel := context.WithTimeout(s.readCtx, redrivePoll)
		s.mu.Lock()
		s.wakeReader = cancel // a Redrive in this process wakes it at once
		if s.redriveReq || s.stopping {
			cancel() // asked for while the wake-up was not set yet
		}
		s.mu.Unlock()
		ds, err := s.consumer.Fetch(fctx, room)
		s.mu.Lock()
		s.wakeReader = nil
		s.mu.Unlock()
		cancel()
		if err != nil {
			if errors.Is(err, context.Canceled) && s.readCtx.Err() == nil {
				continue // woken for a redrive
			}
			if s.readCtx.Err() != nil || errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				s.mu.Lock()
				s.redriveReq = true // look for redrives marked by another process
				s.mu.Unlock()
			} else {
				s.log.Error("herald: fetching from the shared consumer failed", "subscription", s.name, "error", err)
				s.sleep(100 * time.Millisecond)
			}
			continue
		}
		s.mu.Lock()
		for _, d := range ds {
			e := d.Event()
			if e == nil {
				continue
			}
			if s.stopping {
				continue // redelivered after the ack wait
			}
			s.q.enqueueLocked(item{ev: e, epoch: s.c.epoch, attempt: int32(max(0, d.Attempt()-1)), x: &itemExtra{delivery: d}})
		}
		s.mu.Unlock()
	}
}

// loadRedrives queues the subscription's dead letters marked for redrive.
// It holds the flush lock, so that no redrive is resolved (and forgotten)
// between the listing and the queueing: a stale listing would deliver it
// again.
func (s *Subscription) loadRedrives() {
	s.c.flushMu.Lock()
	defer s.c.flushMu.Unlock()
	dls, err := s.bus.store.DeadLetters(s.readCtx, DeadLetterQuery{Subscription: s.name, OnlyRedrive: true})
	if err != nil {
		if s.readCtx.Err() == nil {
			s.log.Error("herald: listing dead letters to redrive failed", "subscription", s.name, "error", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dl := range dls {
		if dl.Event == nil || s.stopping || !s.c.startRedriveLocked(dl.ID) {
			continue
		}
		s.q.enqueueLocked(item{ev: dl.Event, epoch: s.c.epoch, x: &itemExtra{
			redriveID: dl.ID, prior: len(dl.Errors), errs: dl.Errors,
		}})
	}
}

// wakeForRedrive asks the reader to look for dead letters to redrive.
func (s *Subscription) wakeForRedrive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakeForRedriveLocked()
}

func (s *Subscription) wakeForRedriveLocked() {
	s.redriveReq = true
	s.readerCond.Signal()
	if s.wakeReader != nil {
		s.wakeReader()
	}
}

// dropOldestLocked drops the oldest queued event that is not running or
// waiting for a retry, and counts it. It reports false when there is none.
func (s *Subscription) dropOldestLocked() bool {
	if !s.q.dropOldestLocked() {
		return false
	}
	s.dropped.Add(1)
	if s.m != nil {
		s.m.dropped.Inc()
	}
	return true
}

// dropQueuedLocked forgets every queued item (see scheduler.dropQueuedLocked);
// the redrives among them are loaded again.
func (s *Subscription) dropQueuedLocked(keepActive bool) {
	s.q.dropQueuedLocked(keepActive, func(id string) {
		if s.c.forgetRedriveLocked(id) {
			s.redriveReq = true
		}
	})
}

// Close stops delivery: no new event is handed to the handler, handler
// calls in progress are allowed to finish until ctx ends (their contexts
// are then cancelled), and a durable subscription commits its outcomes and
// checkpoint. Events that were queued, waiting for a retry, or whose call
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
	s.halted.Store(true)
	s.mu.Lock()
	s.stopping = true
	s.dropQueuedLocked(false)
	if s.spaceWaiters {
		close(s.spaceCh)
		s.spaceCh = make(chan struct{})
		s.spaceWaiters = false
	}
	s.q.cond.Broadcast()
	s.readerCond.Broadcast()
	if len(s.workers) == 0 && !s.workersGoneClosed {
		s.workersGoneClosed = true
		close(s.workersGone)
	}
	s.mu.Unlock()
	s.readCancel()

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
	s.baseCancel()
	if s.durable {
		fctx := context.Background()
		if ferr := s.c.flush(fctx); ferr != nil && err == nil && !errors.Is(ferr, ErrClosed) {
			err = ferr
		}
		if s.consumer != nil {
			if cerr := s.consumer.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}
	// Forget the series before the name is free: a new subscription of
	// the same name keeps its own.
	s.bus.metrics.forget(s.name)
	s.bus.removeSub(s)
	close(s.done)
	return err
}
