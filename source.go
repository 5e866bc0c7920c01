package herald

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// source is where a subscription's events come from, one of three:
//
//   - ephemeral: the bus's publishers, which reserve room (reserve) before
//     they append and push the event after;
//   - durable: the log, read by readLoop from the checkpoint on;
//   - shared: a SharedStore's consumer, fetched by consumeLoop.
//
// Durable and shared sources also load the dead letters marked for
// redrive. Its fields are guarded by the subscription's lock, but reserved
// (atomic) and readCtx.
type source struct {
	// ephemeral
	spaceCh      chan struct{} // closed when room is made for waiting publishers
	spaceWaiters bool
	spaceNeed    int          // the smallest room a waiting publisher needs
	reserved     atomic.Int64 // room publishers reserved
	lastPos      uint64       // position of the last event taken in

	// durable and shared
	readCtx       context.Context // the reader's; cancelled when Close starts
	readCancel    context.CancelFunc
	readerCond    *sync.Cond // reader: room, redrive, reset or stopping
	readerWaiting bool
	redriveReq    bool
	wakeReader    context.CancelFunc
	consumer      Consumer // shared
	// nextSize is the size of the next event to read when it is known
	// not to fit the read-ahead bound (durable), or the largest event
	// fetched so far (shared): the reader waits until it fits.
	nextSize int64
}

// init readies the source of a subscription whose lock is mu.
func (src *source) init(mu *sync.Mutex) {
	src.spaceCh = make(chan struct{})
	src.readerCond = sync.NewCond(mu)
	src.readCtx, src.readCancel = context.WithCancel(context.Background())
}

// closeConsumer closes the shared consumer, if any, and returns its error.
func (src *source) closeConsumer() error {
	if src.consumer == nil {
		return nil
	}
	return src.consumer.Close()
}

// rewindLocked forgets the size of the next event a durable reader waits
// to fit: after a reset, the next event is another one.
func (src *source) rewindLocked() {
	if src.consumer == nil {
		src.nextSize = 0
	}
}

// wakeLocked wakes the reader: a durable one waiting for room, a redrive,
// a reset or the stop, and a shared one waiting in a fetch.
func (src *source) wakeLocked() {
	src.readerCond.Signal()
	if src.wakeReader != nil {
		src.wakeReader()
	}
}

// eventOverhead is what an Event held in memory takes besides its data,
// strings and metadata.
const eventOverhead = 256

// heldSize is what e counts against a durable subscription's read-ahead
// bound (WithReadAhead): about what it takes in memory.
func heldSize(e *Event) int64 {
	n := eventOverhead + len(e.Data) + len(e.ID) + len(e.Name) + len(e.CorrelationID) +
		len(e.CausationID) + len(e.SourcePlugin) + len(e.Subject)
	for k, v := range e.Metadata {
		n += len(k) + len(v) + 32
	}
	return int64(n)
}

// readRoomLocked reports whether a durable subscription's reader may read
// on: it holds nothing, or the next event fits its read-ahead bound and
// the bus's total.
func (s *Subscription) readRoomLocked() bool {
	held := s.q.heldLocked()
	next := max(s.src.nextSize, 1)
	return held == 0 || (held+next <= s.bus.readAheadBound() && next <= s.bus.readAheadFree())
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
	r := s.src.reserved.Add(n64)
	if d := s.q.depth.Load(); d+r <= int64(s.cfg.bufferSize) || d+r == n64 {
		return nil
	}
	s.src.reserved.Add(-n64)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		r := s.src.reserved.Add(n64)
		if s.stopping || int64(s.q.count)+r <= int64(s.cfg.bufferSize) || int64(s.q.count)+r == n64 {
			s.mu.Unlock()
			return nil
		}
		s.src.reserved.Add(-n64)
		used := s.q.count
		ch := s.src.spaceCh
		if !s.src.spaceWaiters || n < s.src.spaceNeed {
			s.src.spaceNeed = n
		}
		s.src.spaceWaiters = true
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
	s.src.reserved.Add(-int64(n))
	s.roomLocked()
	s.mu.Unlock()
}

// push hands a published event to an ephemeral subscription, taking up
// the room its publisher reserved.
func (s *Subscription) push(e *Event) {
	s.mu.Lock()
	switch {
	case s.stopping:
	case s.cfg.dropOldest && s.q.count >= s.cfg.bufferSize && !s.dropOldestLocked():
		s.dropped.Add(1)
		if s.m != nil {
			s.m.dropped.Inc()
		}
	default:
		s.src.lastPos = e.Position
		s.q.enqueueLocked(item{ev: e})
	}
	if !s.cfg.dropOldest {
		// After the enqueue: a publisher reserving meanwhile never sees
		// this room free before it is taken.
		s.src.reserved.Add(-1)
	}
	s.mu.Unlock()
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

// readLoop feeds a durable subscription from the log.
func (s *Subscription) readLoop() {
	defer s.workerDone()
	st := s.bus.store
	var buf []*Event
	var fail readFailures
	var sizes []int64
	for {
		s.mu.Lock()
		for !s.stopping && !s.src.redriveReq && (s.q.count >= s.cfg.bufferSize || !s.readRoomLocked()) {
			s.src.readerWaiting = true
			s.src.readerCond.Wait()
		}
		s.src.readerWaiting = false
		if s.stopping {
			s.mu.Unlock()
			return
		}
		room := max(1, s.cfg.bufferSize-s.q.count)
		// The bytes it may read, taken from the bus's total until what it
		// reads is queued: an event that does not fit is left for later,
		// unless it holds nothing (then it takes that one alone).
		held := s.q.heldLocked()
		budget := s.bus.reserveReadAhead(s.bus.readAheadBound() - held)
		reserved := budget
		after, epoch, redrive := s.c.readPosLocked(), s.c.epoch, s.src.redriveReq
		s.src.redriveReq = false
		s.mu.Unlock()

		if redrive {
			s.loadRedrives()
		}
		var head uint64
		var err error
		if mem := s.bus.mem; mem != nil {
			head = mem.headPos.Load() // no lock
		} else {
			head, err = st.Head(s.src.readCtx)
		}
		var damaged *DamagedEventError
		full := false // stopped before an event that did not fit
		var next int64
		if err == nil {
			buf, sizes = buf[:0], sizes[:0]
			for e, rerr := range st.Read(s.src.readCtx, after, Filter{Name: s.pattern, Limit: room}) {
				if rerr != nil {
					err = rerr
					break
				}
				n := heldSize(e)
				if n > budget && (held > 0 || len(buf) > 0) {
					full, next = true, n
					break
				}
				budget -= n
				buf = append(buf, e)
				sizes = append(sizes, n)
			}
			// A damaged event ends the read: the events before it are
			// in buf, and it is dead-lettered below.
			if errors.As(err, &damaged) && damaged.Position > after &&
				(len(buf) == 0 || damaged.Position > buf[len(buf)-1].Position) {
				err = nil
			} else {
				damaged = nil
			}
		}
		if err != nil {
			s.bus.releaseReadAhead(reserved)
			if s.src.readCtx.Err() != nil || errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			s.sleep(fail.record(s, "herald: reading the log failed", err))
			continue
		}
		fail.reset()
		s.mu.Lock()
		if s.c.epoch != epoch || s.stopping {
			s.mu.Unlock()
			s.bus.releaseReadAhead(reserved)
			clear(buf)
			continue
		}
		for i, e := range buf {
			s.q.enqueueLocked(item{ev: e, seq: s.c.trackLocked(e.Position), epoch: s.c.epoch, size: sizes[i]})
		}
		s.bus.releaseReadAhead(reserved) // counted now that they are queued
		s.src.nextSize = next
		caughtUp := len(buf) < room && !full && damaged == nil
		var through uint64
		if caughtUp {
			through = head
		}
		if len(buf) > 0 {
			through = max(through, buf[len(buf)-1].Position)
		}
		if damaged != nil {
			s.deadLetterDamagedLocked(damaged, nil)
			through = damaged.Position
		}
		pos := s.c.readThroughLocked(through)
		var wctx context.Context
		var cancel context.CancelFunc
		if caughtUp && len(buf) == 0 {
			// The wait ends now and then to look for dead letters that
			// another process marked for redrive.
			wctx, cancel = context.WithTimeout(s.src.readCtx, redrivePoll)
			s.src.wakeReader = cancel
			if s.src.redriveReq {
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
		s.src.wakeReader = nil
		s.mu.Unlock()
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && s.src.readCtx.Err() == nil {
			s.mu.Lock()
			s.src.redriveReq = true
			s.mu.Unlock()
			continue
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			if errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			s.sleep(fail.record(s, "herald: waiting for the log failed", err))
		}
	}
}

// readFailures paces a reader whose store keeps failing: it waits 100 ms
// after the first failure, doubling up to 5 s, and logs the first failure
// and then at most one line a minute, counting the failures since.
type readFailures struct {
	n       int
	logged  time.Time
	skipped int
}

// record counts a failure, logs it when its turn has come, and returns how
// long to wait before trying again.
func (f *readFailures) record(s *Subscription, msg string, err error) time.Duration {
	f.n++
	if now := time.Now(); f.n == 1 || now.Sub(f.logged) >= time.Minute {
		s.log.Error(msg, "subscription", s.name, "error", err, "failures", f.n, "not_logged", f.skipped)
		f.logged, f.skipped = now, 0
	} else {
		f.skipped++
	}
	return min(100*time.Millisecond<<min(f.n-1, 6), 5*time.Second)
}

// reset forgets the failures once a read succeeds.
func (f *readFailures) reset() { f.n, f.skipped = 0, 0 }

// deadLetterDamagedLocked records a damaged event the reader met (see
// DamagedEventError) as a permanent dead letter, without calling the
// handler, and moves the subscription past it: d, the shared delivery
// that brought it (nil when read from the log), is acknowledged with the
// commit. A damaged event whose name is known and does not match the
// subscription's pattern is only passed.
func (s *Subscription) deadLetterDamagedLocked(de *DamagedEventError, d Delivery) {
	ev := de.standIn()
	var seq uint64
	if d == nil {
		seq = s.c.trackLocked(ev.Position)
	}
	if ev.Name == "" || MatchName(s.pattern, ev.Name) {
		s.log.Error("herald: a stored event is damaged; it is dead-lettered without calling the handler (restore the store from a backup to get it back)",
			"subscription", s.name, "position", ev.Position, "event_id", ev.ID, "event_name", ev.Name, "error", de.Error())
		s.deadLettered.Add(1)
		if s.m != nil {
			s.m.deadLettered.Inc()
		}
		s.c.damagedLocked(ev, "", nil, de.Error(), time.Now())
	}
	if d != nil {
		s.c.ackLocked(d, ev.Position)
		return
	}
	s.c.doneLocked(seq)
}

// redrivePoll is how often an idle durable subscription looks for dead
// letters marked for redrive by another process (this process's Redrive
// wakes it at once).
const redrivePoll = 10 * time.Second

// idleUntilStopped parks the reader of a subscription whose store is gone
// until the subscription is closed.
func (s *Subscription) idleUntilStopped() { <-s.src.readCtx.Done() }

func (s *Subscription) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.src.readCtx.Done():
	}
}

// consumeLoop feeds a durable subscription from a shared store's consumer.
func (s *Subscription) consumeLoop() {
	defer s.workerDone()
	var fail readFailures
	for {
		s.mu.Lock()
		for !s.stopping && !s.src.redriveReq && (s.q.count >= s.cfg.bufferSize || !s.readRoomLocked()) {
			s.src.readerWaiting = true
			s.src.readerCond.Wait()
		}
		s.src.readerWaiting = false
		if s.stopping {
			s.mu.Unlock()
			return
		}
		room := max(1, s.cfg.bufferSize-s.q.count)
		// A fetch cannot stop at a byte count: it fetches as many as fit
		// its bound and the bus's total if each is as large as the
		// largest seen so far (one at first). Unlike a read from the log,
		// it reserves nothing, as a fetch waits for new events: fetches
		// racing each other may take the total past its bound.
		if largest := s.src.nextSize; largest == 0 {
			room = 1
		} else {
			free := min(s.bus.readAheadBound()-s.q.heldLocked(), s.bus.readAheadFree())
			room = int(min(int64(room), max(1, free/largest)))
		}
		redrive := s.src.redriveReq
		s.src.redriveReq = false
		s.mu.Unlock()
		if redrive {
			s.loadRedrives()
		}
		fctx, cancel := context.WithTimeout(s.src.readCtx, redrivePoll)
		s.mu.Lock()
		s.src.wakeReader = cancel // a Redrive in this process wakes it at once
		if s.src.redriveReq || s.stopping {
			cancel() // asked for while the wake-up was not set yet
		}
		s.mu.Unlock()
		ds, err := s.src.consumer.Fetch(fctx, room)
		s.mu.Lock()
		s.src.wakeReader = nil
		s.mu.Unlock()
		cancel()
		if err != nil {
			if errors.Is(err, context.Canceled) && s.src.readCtx.Err() == nil {
				continue // woken for a redrive
			}
			if s.src.readCtx.Err() != nil || errors.Is(err, ErrClosed) {
				s.idleUntilStopped()
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				s.mu.Lock()
				s.src.redriveReq = true // look for redrives marked by another process
				s.mu.Unlock()
			} else {
				s.sleep(fail.record(s, "herald: fetching from the shared consumer failed", err))
			}
			continue
		}
		fail.reset()
		s.mu.Lock()
		for _, d := range ds {
			e := d.Event()
			if e == nil {
				continue
			}
			if s.stopping {
				continue // redelivered after the ack wait
			}
			if dd, ok := d.(DamagedDelivery); ok {
				if de := dd.Damaged(); de != nil {
					s.deadLetterDamagedLocked(de, d)
					continue
				}
			}
			n := heldSize(e)
			s.src.nextSize = max(s.src.nextSize, n)
			s.q.enqueueLocked(item{ev: e, epoch: s.c.epoch, attempt: int32(max(0, d.Attempt()-1)), x: &itemExtra{delivery: d}, size: n})
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
	dls, err := s.bus.store.DeadLetters(s.src.readCtx, DeadLetterQuery{Subscription: s.name, OnlyRedrive: true})
	if err != nil {
		if s.src.readCtx.Err() == nil {
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
		if isStandIn(dl.Event) {
			// A damaged event: nothing to deliver. Its dead letter stays,
			// no longer marked for redrive, saying why.
			s.c.damagedLocked(dl.Event, dl.ID, dl.Errors,
				"the stored event is damaged and cannot be redriven: restore the store from a backup to get it back", time.Now())
			continue
		}
		s.q.enqueueLocked(item{ev: dl.Event, epoch: s.c.epoch, size: heldSize(dl.Event), x: &itemExtra{
			redriveID: dl.ID, prior: dl.Attempts(), errs: dl.Errors,
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
	s.src.redriveReq = true
	s.src.readerCond.Signal()
	if s.src.wakeReader != nil {
		s.src.wakeReader()
	}
}

// dropQueuedLocked forgets every queued item (see scheduler.dropQueuedLocked);
// the redrives among them are loaded again.
func (s *Subscription) dropQueuedLocked(keepActive bool) {
	s.q.dropQueuedLocked(keepActive, func(id string) {
		if s.c.forgetRedriveLocked(id) {
			s.src.redriveReq = true
		}
	})
}

// roomLocked wakes the publishers waiting for room as soon as one of them
// fits, and the reader once the queue is down to half its bound, and what
// it holds to half its read-ahead bound (so that it reads in large steps),
// or nothing is left to take (what is queued waits for retries or behind
// busy subjects: reading on is the only way forward).
func (s *Subscription) roomLocked() {
	if used := s.q.count + int(s.src.reserved.Load()); s.src.spaceWaiters && (used == 0 || used+s.src.spaceNeed <= s.cfg.bufferSize) {
		close(s.src.spaceCh)
		s.src.spaceCh = make(chan struct{})
		s.src.spaceWaiters = false
	}
	if !s.src.readerWaiting || s.q.count >= s.cfg.bufferSize || !s.readRoomLocked() {
		return
	}
	idle := s.q.nready == 0
	if (s.q.count <= s.cfg.bufferSize/2 || idle) && (idle || s.q.heldLocked() <= s.bus.readAheadBound()/2) {
		s.src.readerCond.Signal()
	}
}

// setupDurable finds where a durable subscription resumes, committing its
// starting checkpoint when it has none so the store keeps its events.
func (s *Subscription) setupDurable(ctx context.Context) error {
	st := s.bus.store
	s.src.redriveReq = true // pick up redrives requested while it was away
	start := StartEarliest
	if s.cfg.startSet {
		start = s.cfg.start
	}
	if ss, ok := st.(SharedStore); ok {
		c, err := ss.Consume(ctx, s.name, s.pattern, start, ConsumeOptions{
			AckWait: s.cfg.timeout + 30*time.Second, MaxInFlight: s.cfg.bufferSize + s.cfg.concurrency*64,
			MaxBytes: int64(s.bus.cfg.readAhead),
		})
		if err != nil {
			return fmt.Errorf("herald: joining shared consumer %s: %w", s.name, err)
		}
		s.src.consumer = c
		s.c.start(s, 0, true)
		return nil
	}
	cp, ok, err := st.Checkpoint(ctx, s.name)
	if err != nil {
		return fmt.Errorf("herald: reading checkpoint of %s: %w", s.name, err)
	}
	if !ok {
		if cp, err = start.resolve(ctx, st); err != nil {
			return fmt.Errorf("herald: resolving start of %s: %w", s.name, err)
		}
		if err := st.Commit(ctx, s.name, Progress{Checkpoint: cp}); err != nil {
			return fmt.Errorf("herald: saving checkpoint of %s: %w", s.name, err)
		}
	}
	s.c.start(s, cp, false)
	return nil
}
