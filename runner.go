package herald

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// runner makes the handler calls of a subscription: its workers take
// events from the scheduler, call the handler with a timeout and a context
// of its own, turn panics into errors, and settle each attempt (success,
// retry after a backoff, dead letter) with the committer; a watchdog
// abandons calls that ignore their timeout. Its fields are guarded by the
// subscription's lock, but h and bh (set once) and halted (atomic).
type runner struct {
	h                 Handler
	bh                BatchHandler
	workers           map[*worker]struct{}
	workersGone       chan struct{} // closed when stopping and no worker is left
	workersGoneClosed bool
	halted            atomic.Bool // set when Close starts: workers stop between events

	// redriving counts the redriven dead letters that workers have taken
	// and not yet settled; redrivesDone is closed when it falls to 0, so
	// that Bus.DeadLetters can wait for a redrive whose endpoint already
	// answered before it lists what is left.
	redriving    int
	redrivesDone chan struct{}
}

// takeRedrivesLocked counts the redrives among the items a worker took.
func (s *Subscription) takeRedrivesLocked(items []item) {
	for i := range items {
		if items[i].redriveID() != "" {
			if s.run.redriving == 0 {
				s.run.redrivesDone = make(chan struct{})
			}
			s.run.redriving++
		}
	}
}

// settleRedriveLocked marks a taken item settled (completed, or handed
// back to the queue).
func (s *Subscription) settleRedriveLocked(it *item) {
	if it.redriveID() == "" || s.run.redriving == 0 {
		return
	}
	if s.run.redriving--; s.run.redriving == 0 {
		close(s.run.redrivesDone)
	}
}

// waitRedrives waits, at most max or until ctx ends, until every redrive
// a worker took when it was called has settled.
func (s *Subscription) waitRedrives(ctx context.Context, max time.Duration) {
	s.mu.Lock()
	if s.run.redriving == 0 {
		s.mu.Unlock()
		return
	}
	done := s.run.redrivesDone
	s.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// worker is one of a subscription's handler goroutines.
type worker struct {
	buf  []item
	res  []result
	obs  map[string]prometheus.Observer
	evs  []*Event
	slow bool

	// What the watchdog looks at: the call in progress (buf[cur], or the
	// whole batch), when it started, and whether it still runs.
	cur     int
	started atomic.Int64
	state   atomic.Int32
}

const (
	callIdle int32 = iota
	callRunning
	callAbandoned
)

// idleYields is how many times an idle worker yields before it sleeps.
const idleYields = 4

// errHung is recorded for a call that did not return after its timeout.
var errHung = fmt.Errorf("handler did not return after its timeout and was abandoned: %w", context.DeadlineExceeded)

// watch abandons handler calls that ignore their context and run past
// their timeout (plus a grace period): their events are recorded as failed
// attempts (retried or dead-lettered as usual), the rest of their worker's
// events go back to the queue, and a new worker takes the place of the
// stuck one, whose goroutine ends whenever its handler returns.
func (s *Subscription) watch() {
	defer s.workerDone()
	tick := min(max(s.cfg.timeout/4, 10*time.Millisecond), time.Second)
	grace := min(max(s.cfg.timeout/10, 100*time.Millisecond), 5*time.Second)
	limit := int64(s.cfg.timeout + grace)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.run.workersGone:
			return // stopping, and every worker has ended
		}
		now := time.Now()
		var naks []*item
		s.mu.Lock()
		for w := range s.run.workers {
			if w.state.Load() == callRunning && now.UnixNano()-w.started.Load() > limit &&
				w.state.CompareAndSwap(callRunning, callAbandoned) {
				naks = s.abandonLocked(w, now, naks)
			}
		}
		s.roomLocked()
		s.mu.Unlock()
		s.nak(naks)
	}
}

// abandonLocked settles the items of a stuck worker and replaces it.
func (s *Subscription) abandonLocked(w *worker, now time.Time, naks []*item) []*item {
	s.dropWorkerLocked(w)
	stuck := func(j int) bool { return j == w.cur || s.run.bh != nil }
	for j := range w.buf {
		it := &w.buf[j]
		switch {
		case stuck(j):
			dur := now.Sub(time.Unix(0, w.started.Load()))
			r := result{err: errHung, dur: dur, end: now, ran: true}
			r.final = s.reportFailure(it, r.err, dur)
			if s.completeLocked(it, &r) {
				naks = append(naks, it)
			}
		case j < w.cur:
			if s.completeLocked(it, &w.res[j]) {
				naks = append(naks, it)
			}
		default: // taken but not started: back to the queue
			s.settleRedriveLocked(it)
			s.q.requeueLocked(*it)
		}
	}
	// The stuck goroutine no longer counts (the watchdog, counted, is
	// running, so this never reaches 0); a replacement takes its place.
	s.running--
	if !s.stopping {
		s.running++
		go s.work()
	}
	return naks
}

// dropWorkerLocked forgets a worker; the watchdog ends once the
// subscription is stopping and no worker is left.
func (s *Subscription) dropWorkerLocked(w *worker) {
	delete(s.run.workers, w)
	if s.stopping && len(s.run.workers) == 0 && !s.run.workersGoneClosed {
		s.run.workersGoneClosed = true
		close(s.run.workersGone)
	}
}

func (s *Subscription) nak(naks []*item) {
	for _, it := range naks {
		delay := backoffDelay(s.cfg.backoffInit, s.cfg.backoffMax, int(it.attempt))
		if err := it.x.delivery.Nak(context.Background(), delay); err != nil {
			s.log.Warn("herald: nak failed", "event_id", it.ev.ID, "error", err)
		}
	}
}

type result struct {
	err   error
	dur   time.Duration
	end   time.Time
	final bool // no more attempts: dead-letter
	ran   bool
}

func (s *Subscription) work() {
	w := &worker{}
	if s.m != nil {
		w.obs = make(map[string]prometheus.Observer)
	}
	s.mu.Lock()
	s.run.workers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		if w.state.Load() == callAbandoned {
			return // the watchdog took over this worker's items and its place
		}
		s.mu.Lock()
		s.dropWorkerLocked(w)
		s.mu.Unlock()
		s.workerDone()
	}()
	for {
		// Before sleeping, yield a few times: a publisher is likely about
		// to queue more, and a wake-up costs more than a yield.
		for range idleYields {
			if s.q.depth.Load() > 0 || s.run.halted.Load() {
				break
			}
			runtime.Gosched()
		}
		s.mu.Lock()
		for s.q.nready == 0 && !s.stopping {
			s.q.cond.Wait()
		}
		if s.stopping {
			s.mu.Unlock()
			return
		}
		n := 1
		switch {
		case s.run.bh != nil:
			n = s.cfg.batchSize
		case s.cfg.concurrency == 1 && !w.slow:
			n = 64
		case !w.slow:
			n = min(64, max(1, s.q.nready/s.cfg.concurrency))
		}
		w.buf = s.q.takeLocked(w.buf[:0], n)
		s.takeRedrivesLocked(w.buf)
		s.roomLocked()
		s.mu.Unlock()

		if cap(w.res) < len(w.buf) {
			w.res = make([]result, len(w.buf))
		}
		w.res = w.res[:len(w.buf)]
		clear(w.res)
		start := time.Now()
		if s.run.bh != nil {
			if s.runBatch(w); w.state.Load() == callAbandoned {
				return
			}
		} else {
			at := start
			for i := range w.buf {
				if s.run.halted.Load() {
					break
				}
				w.res[i] = s.runOne(w, i, at)
				if w.state.Load() == callAbandoned {
					return
				}
				if w.res[i].ran {
					at = w.res[i].end
				}
			}
			w.slow = len(w.buf) > 0 && at.Sub(start)/time.Duration(len(w.buf)) > 100*time.Microsecond
		}

		var naks []*item
		s.mu.Lock()
		for i := range w.buf {
			if it := &w.buf[i]; s.completeLocked(it, &w.res[i]) {
				naks = append(naks, it)
			}
		}
		s.roomLocked() // what it held may make room to read on
		s.mu.Unlock()
		s.nak(naks)
		clear(w.buf)
	}
}

// handlerContext makes the context of one attempt: one allocation of its
// own, so that a handler that keeps it pins nothing else.
func (s *Subscription) handlerContext(it *item, start time.Time) *handlerCtx {
	return &handlerCtx{parent: s.baseCtx, deadline: start.Add(s.cfg.timeout), ev: it.ev, sub: s.name, attempt: it.attempt}
}

// runOne makes one attempt at it, outside the lock.
// start is when the previous call ended (one clock read per event).
func (s *Subscription) runOne(w *worker, i int, start time.Time) result {
	it := &w.buf[i]
	it.attempt++
	hc := s.handlerContext(it, start)
	w.cur = i
	w.started.Store(start.UnixNano())
	w.state.Store(callRunning)
	err := s.call(hc, it.ev)
	hc.release()
	if !w.state.CompareAndSwap(callRunning, callIdle) {
		return result{} // abandoned by the watchdog, which recorded the attempt
	}
	if err != nil && s.closedUnder(err) {
		// Not a failure of the event, which is left for the next run.
		return result{}
	}
	// The monotonic clock alone (start carries a monotonic reading): one
	// clock read per event instead of the wall and monotonic pair.
	dur := time.Since(start)
	end := start.Add(dur)
	r := result{err: err, dur: dur, end: end, ran: true}
	if s.m != nil {
		s.m.observer(w.obs, s.name, it.ev.Name).Observe(r.dur.Seconds())
	}
	if err != nil {
		r.final = s.reportFailure(it, err, r.dur)
	} else if s.debugEnabled() {
		s.log.Debug("herald: event handled", "subscription", s.name, "event_id", it.ev.ID,
			"event_name", it.ev.Name, "correlation_id", it.ev.CorrelationID, "attempt", it.attempt, "duration", r.dur)
	}
	return r
}

// call runs the handler, turning a panic into an error.
func (s *Subscription) call(ctx *handlerCtx, e *Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	if e, err = decodeEvent(ctx, s.bus.cfg.codec, e); err != nil {
		return err
	}
	return s.run.h.Handle(ctx, e)
}

// closedUnder reports whether a handler's error comes from the
// subscription closing under it: Close cancelled its context, or the bus
// (or store) was closed while the subscription was stopping.
func (s *Subscription) closedUnder(err error) bool {
	return s.baseCtx.Err() != nil ||
		((s.run.halted.Load() || s.bus.closed.Load()) && errors.Is(err, ErrClosed))
}

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.value) }

// reportFailure logs and counts a failed attempt and reports whether it was
// the last one.
func (s *Subscription) reportFailure(it *item, err error, dur time.Duration) bool {
	permanent := IsPermanent(err)
	final := permanent || int(it.attempt) >= s.cfg.maxAttempts
	if s.m != nil {
		s.m.handlerErrors.Inc()
	}
	s.failed.Add(1)
	attrs := []any{
		"subscription", s.name, "event_id", it.ev.ID, "event_name", it.ev.Name,
		"correlation_id", it.ev.CorrelationID, "attempt", it.attempt,
		"duration", dur, "error", errorText(err),
	}
	var pe *panicError
	switch {
	case asPanic(err, &pe):
		attrs = append(attrs, "panic", true, "stack", string(pe.stack))
	case !permanent && !IsTemporary(err) && !errors.Is(err, context.DeadlineExceeded):
		attrs = append(attrs, "unexpected", true, "detail", clipText(fmt.Sprintf("%+v", err)), "stack", string(debug.Stack()))
	}
	if final {
		attrs = append(attrs, "dead_lettered", true, "permanent", permanent)
		s.log.Error("herald: handler failed", attrs...)
	} else {
		s.log.Warn("herald: handler failed, will retry", attrs...)
	}
	return final
}

func asPanic(err error, pe **panicError) bool {
	p, ok := err.(*panicError)
	if ok {
		*pe = p
	}
	return ok
}

// completeLocked applies the result of an attempt. It reports whether the
// shared delivery must be nak'ed (outside the lock).
func (s *Subscription) completeLocked(it *item, r *result) (nak bool) {
	s.settleRedriveLocked(it)
	s.q.returnedLocked(it)
	if !r.ran {
		// Taken but not started because the subscription stopped, or
		// cancelled by Close: left for the next run (its checkpoint stays
		// below it).
		return false
	}
	// A stale item was taken before a Reset: its result no longer counts
	// toward the checkpoint. A redrive does not depend on the log position,
	// so its result is recorded all the same.
	stale := it.epoch != s.c.epoch
	redriveID := it.redriveID()
	record := s.durable && (!stale || redriveID != "")
	if r.err == nil {
		s.handled.Add(1)
		if record {
			s.c.recordLocked(it, r, OutcomeSucceeded)
			s.c.resolveLocked(redriveID)
		}
		s.finishLocked(it, stale)
		return false
	}
	if it.x == nil {
		it.x = &itemExtra{}
	}
	x := it.x
	x.errs = append(x.errs, AttemptError{Attempt: x.prior + int(it.attempt), At: r.end, Duration: Duration(r.dur), Error: errorText(r.err)})
	if s.c.endDiscardedLocked(redriveID) {
		// Its dead letter was discarded during the redrive: give up
		// without bringing it back.
		if record {
			s.c.recordLocked(it, r, OutcomeDiscarded)
		}
		s.finishLocked(it, stale)
		return false
	}
	if r.final {
		x.permanent = IsPermanent(r.err)
		s.deadLettered.Add(1)
		if s.m != nil {
			s.m.deadLettered.Inc()
		}
		if record {
			s.c.recordLocked(it, r, OutcomeDeadLettered)
			id := x.redriveID
			if id == "" {
				id = DeadLetterID(s.name, it.ev.ID)
			}
			s.c.deadLetterLocked(DeadLetter{
				ID: id, Subscription: s.name, Event: it.ev, Errors: DeadLetterHistory(x.errs),
				Permanent: x.permanent, DeadAt: r.end,
			})
		}
		s.finishLocked(it, stale)
		return false
	}
	s.retried.Add(1)
	if s.m != nil {
		s.m.retried.Inc()
	}
	if record {
		s.c.recordLocked(it, r, OutcomeRetrying)
	}
	if x.delivery != nil {
		s.q.releaseLocked(it.ev.Subject)
		return true
	}
	if s.stopping {
		return false
	}
	if stale && redriveID == "" {
		// Taken before a Reset: the reset position decides whether it is
		// delivered again. (A redrive is retried all the same.)
		s.q.releaseLocked(it.ev.Subject)
		return false
	}
	s.q.retryLocked(*it, backoffDelay(s.cfg.backoffInit, s.cfg.backoffMax, int(it.attempt)))
	return false
}

// finishLocked ends an item for good: its subject moves on and the
// committer learns it is done. (A stale item still owns its subject:
// Reset keeps the subjects of the items in flight.)
func (s *Subscription) finishLocked(it *item, stale bool) {
	s.q.releaseLocked(it.ev.Subject)
	switch {
	case it.x != nil && it.x.delivery != nil:
		s.c.ackLocked(it.x.delivery, it.ev.Position)
	case !stale:
		s.c.doneLocked(it.seq)
	}
}

// runBatch hands the worker's items to the batch handler in one call.
func (s *Subscription) runBatch(w *worker) {
	if s.run.halted.Load() {
		return
	}
	w.evs = w.evs[:0]
	for i := range w.buf {
		w.buf[i].attempt++
		w.evs = append(w.evs, w.buf[i].ev)
	}
	start := time.Now()
	hc := &handlerCtx{parent: s.baseCtx, deadline: start.Add(s.cfg.timeout), sub: s.name}
	w.cur = 0
	w.started.Store(start.UnixNano())
	w.state.Store(callRunning)
	errs := s.callBatch(hc, w.evs)
	hc.release()
	if !w.state.CompareAndSwap(callRunning, callIdle) {
		return
	}
	end := time.Now()
	dur := end.Sub(start)
	per := dur / time.Duration(max(1, len(w.buf)))
	for i := range w.buf {
		it := &w.buf[i]
		r := result{dur: per, end: end, ran: true}
		switch {
		case errs.all != nil:
			r.err = errs.all
		case errs.each != nil:
			r.err = errs.each[i]
		}
		if r.err != nil && s.closedUnder(r.err) {
			w.res[i] = result{} // left for the next run
			continue
		}
		if s.m != nil {
			s.m.observer(w.obs, s.name, it.ev.Name).Observe(per.Seconds())
		}
		if r.err != nil {
			r.final = s.reportFailure(it, r.err, per)
		}
		w.res[i] = r
	}
	w.evs = w.evs[:0]
}

type batchErrs struct {
	all  error
	each []error
}

func (s *Subscription) callBatch(ctx *handlerCtx, evs []*Event) (r batchErrs) {
	defer func() {
		if p := recover(); p != nil {
			r = batchErrs{all: &panicError{value: p, stack: debug.Stack()}}
		}
	}()
	if evs, r.all = decodeEvents(ctx, s.bus.cfg.codec, evs); r.all != nil {
		return r
	}
	errs := s.run.bh.HandleBatch(ctx, evs)
	switch {
	case len(errs) == 0:
		return batchErrs{}
	case len(errs) != len(evs):
		return batchErrs{all: fmt.Errorf("batch handler returned %d results for %d events", len(errs), len(evs))}
	}
	return batchErrs{each: errs}
}

// debugEnabled reports whether the logger wants a record per handled event.
func (s *Subscription) debugEnabled() bool {
	return s.log.Enabled(context.Background(), slog.LevelDebug)
}
