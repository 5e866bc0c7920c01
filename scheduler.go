package herald

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// deque is a growable ring of values.
type deque[T any] struct {
	buf  []T
	head int
	n    int
}

func (d *deque[T]) len() int { return d.n }

func (d *deque[T]) push(v T) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)&(len(d.buf)-1)] = v
	d.n++
}

func (d *deque[T]) grow() {
	nb := make([]T, max(16, 2*len(d.buf)))
	for i := range d.n {
		nb[i] = d.buf[(d.head+i)&(len(d.buf)-1)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque[T]) pop() T {
	var zero T
	v := d.buf[d.head]
	d.buf[d.head] = zero
	d.head = (d.head + 1) & (len(d.buf) - 1)
	d.n--
	return v
}

func (d *deque[T]) front() *T { return &d.buf[d.head] }

// insert puts v at index i (0 is the front), moving the i values before it
// one step towards the front.
func (d *deque[T]) insert(i int, v T) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1) & (len(d.buf) - 1)
	d.n++
	for k := range i {
		*d.at(k) = *d.at(k + 1)
	}
	*d.at(i) = v
}

func (d *deque[T]) at(i int) *T { return &d.buf[(d.head+i)&(len(d.buf)-1)] }

func (d *deque[T]) clear() {
	clear(d.buf)
	d.head, d.n = 0, 0
}

// item is one event queued in, or running in, a subscription.
type item struct {
	ev *Event
	// seq is the item's place in the durable tracker (0: not tracked).
	seq   uint64
	epoch uint32
	// attempt counts the attempts of this delivery round so far.
	attempt int32
	x       *itemExtra
	// size is what the event counts against the read-ahead bound of a
	// durable subscription (heldSize); 0 for an ephemeral one.
	size int64
}

// redriveID is the dead letter the item redrives, or "".
func (it *item) redriveID() string {
	if it.x == nil {
		return ""
	}
	return it.x.redriveID
}

// itemExtra holds what only retried, redriven or shared deliveries need.
type itemExtra struct {
	errs      []AttemptError // the failed attempts, those before a redrive included
	redriveID string
	prior     int // attempts made before a redrive
	delivery  Delivery
	permanent bool
}

// subjectQueue holds the events of one subject waiting behind its active one.
type subjectQueue struct {
	waiting deque[item]
}

// priority index: 0 = critical … 3 = low.
func prioIndex(p Priority) int {
	switch {
	case p >= PriorityCritical:
		return 0
	case p == PriorityHigh:
		return 1
	case p <= PriorityLow:
		return 3
	}
	return 2
}

// scheduler holds the events a subscription took in and has not finished
// — ready ones by priority, each priority in log order; ones waiting behind
// the active event of their subject; retries waiting out their backoff —
// and picks what a worker handles next: one event per subject at a time,
// the higher priority first, and with one worker the log order (takeLocked).
//
// It is guarded by the subscription's lock; its methods expect it held.
type scheduler struct {
	cond     *sync.Cond // workers: ready items or stopping
	one      bool       // a single worker
	ready    [4]deque[item]
	nready   int
	subjects map[string]*subjectQueue // subjects with an active event
	freeSubj []*subjectQueue
	count    int                   // queued items: ready, waiting behind a subject, or in backoff
	inflight int                   // items taken by workers
	timers   map[*time.Timer]*item // retries in backoff
	depth    atomic.Int64          // count, readable without the lock
	// The sizes of the items queued (qbytes) and taken by workers
	// (fbytes): what a durable subscription holds (heldLocked). total,
	// when set, is the bus's sum of them (WithReadAhead), kept in step.
	qbytes, fbytes int64
	total          *atomic.Int64
}

// heldLocked is the size of the items queued or taken by workers.
func (sc *scheduler) heldLocked() int64 { return sc.qbytes + sc.fbytes }

// addHeldLocked adds n to the bus's total of held bytes.
func (sc *scheduler) addHeldLocked(n int64) {
	if n != 0 && sc.total != nil {
		sc.total.Add(n)
	}
}

// detachLocked gives back to the bus what the subscription still holds
// (items of handlers abandoned at Close never come back) and stops
// counting in its total.
func (sc *scheduler) detachLocked() {
	sc.addHeldLocked(-sc.heldLocked())
	sc.total = nil
}

// init readies the scheduler of a subscription whose lock is mu; total,
// when not nil, is the bus's sum of what durable subscriptions hold.
func (sc *scheduler) init(mu *sync.Mutex, one bool, total *atomic.Int64) {
	sc.cond = sync.NewCond(mu)
	sc.one = one
	sc.total = total
	sc.subjects = make(map[string]*subjectQueue)
	sc.timers = make(map[*time.Timer]*item)
}

// enqueueLocked adds a new item: to the ready lists, or behind the active
// event of its subject.
func (sc *scheduler) enqueueLocked(it item) {
	sc.count++
	sc.qbytes += it.size
	sc.addHeldLocked(it.size)
	sc.depth.Store(int64(sc.count))
	if subj := it.ev.Subject; subj != "" {
		if q, ok := sc.subjects[subj]; ok {
			if q == nil {
				q = sc.newSubjectQueue()
				sc.subjects[subj] = q
			}
			q.waiting.push(it)
			return
		}
		sc.subjects[subj] = nil // active, nothing waiting
	}
	sc.pushReadyLocked(it)
}

func (sc *scheduler) newSubjectQueue() *subjectQueue {
	if n := len(sc.freeSubj); n > 0 {
		q := sc.freeSubj[n-1]
		sc.freeSubj = sc.freeSubj[:n-1]
		return q
	}
	return &subjectQueue{}
}

// pushReadyLocked makes an item ready. Each priority's ready list is in
// log order: a new event goes last, an older one (a retry, an event that
// waited behind its subject, a redrive) before the newer ones.
func (sc *scheduler) pushReadyLocked(it item) {
	q := &sc.ready[prioIndex(it.ev.Priority)]
	if pos := it.ev.Position; q.len() == 0 || q.at(q.len()-1).ev.Position <= pos {
		q.push(it)
	} else {
		i := 0
		for q.at(i).ev.Position <= pos {
			i++
		}
		q.insert(i, it)
	}
	sc.nready++
	sc.cond.Signal()
}

// releaseLocked ends the active event of subj: the next one waiting, if
// any, becomes ready.
func (sc *scheduler) releaseLocked(subj string) {
	if subj == "" {
		return
	}
	q, ok := sc.subjects[subj]
	if !ok {
		return
	}
	if q != nil && q.waiting.len() > 0 {
		sc.pushReadyLocked(q.waiting.pop())
		return
	}
	delete(sc.subjects, subj)
	if q != nil && len(sc.freeSubj) < 64 {
		sc.freeSubj = append(sc.freeSubj, q)
	}
}

// returnedLocked counts an item a worker took back from it, done or not.
func (sc *scheduler) returnedLocked(it *item) {
	sc.inflight--
	sc.fbytes -= it.size
	sc.addHeldLocked(-it.size)
}

// requeueLocked puts an item a worker took but did not start back among
// the ready ones.
func (sc *scheduler) requeueLocked(it item) {
	sc.inflight--
	sc.count++
	sc.fbytes -= it.size
	sc.qbytes += it.size
	sc.depth.Store(int64(sc.count))
	sc.pushReadyLocked(it)
}

// retryLocked holds an item that failed until its backoff delay is over;
// it keeps its subject meanwhile, and then becomes ready again.
func (sc *scheduler) retryLocked(it item, delay time.Duration) {
	sc.count++
	sc.qbytes += it.size
	sc.addHeldLocked(it.size)
	sc.depth.Store(int64(sc.count))
	retry := it
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		sc.cond.L.Lock()
		defer sc.cond.L.Unlock()
		if _, ok := sc.timers[t]; !ok {
			return
		}
		delete(sc.timers, t)
		sc.pushReadyLocked(retry)
	})
	sc.timers[t] = &retry
}

// takeLocked moves up to n ready items, highest priority first, into buf.
// With one worker it stops before an item that comes, in the log, after an
// event waiting behind the subject of an item it took: that event becomes
// ready when the item ends, and is handed first (see pushReadyLocked), so
// that one worker hands events over in log order.
func (sc *scheduler) takeLocked(buf []item, n int) []item {
	one := sc.one
	bound := uint64(math.MaxUint64)
take:
	for i := 0; i < len(sc.ready) && len(buf) < n; i++ {
		for sc.ready[i].len() > 0 && len(buf) < n {
			if one && sc.ready[i].front().ev.Position > bound {
				break take
			}
			it := sc.ready[i].pop()
			buf = append(buf, it)
			sc.qbytes -= it.size
			sc.fbytes += it.size
			if subj := it.ev.Subject; one && subj != "" {
				if q := sc.subjects[subj]; q != nil && q.waiting.len() > 0 {
					bound = min(bound, q.waiting.front().ev.Position)
				}
			}
		}
	}
	sc.nready -= len(buf)
	sc.count -= len(buf)
	sc.depth.Store(int64(sc.count))
	sc.inflight += len(buf)
	return buf
}

// dropOldestLocked drops the oldest queued event that is not running or
// waiting for a retry. It reports false when there is none.
func (sc *scheduler) dropOldestLocked() bool {
	best := -1
	for i := range sc.ready {
		if sc.ready[i].len() > 0 && (best < 0 || sc.ready[i].front().ev.Position < sc.ready[best].front().ev.Position) {
			best = i
		}
	}
	var bestQ *subjectQueue
	if best < 0 {
		for _, q := range sc.subjects {
			if q != nil && q.waiting.len() > 0 && (bestQ == nil || q.waiting.front().ev.Position < bestQ.waiting.front().ev.Position) {
				bestQ = q
			}
		}
	}
	switch {
	case best >= 0:
		it := sc.ready[best].pop()
		sc.nready--
		sc.count--
		sc.qbytes -= it.size
		sc.addHeldLocked(-it.size)
		sc.releaseLocked(it.ev.Subject)
	case bestQ != nil:
		it := bestQ.waiting.pop()
		sc.count--
		sc.qbytes -= it.size
		sc.addHeldLocked(-it.size)
		sc.depth.Store(int64(sc.count))
	default:
		return false
	}
	return true
}

// dropQueuedLocked forgets every queued item: ready, waiting behind its
// subject, or waiting for a retry. The redrives among them are forgotten
// too, so that the reader loads them again (their dead letters are still
// marked for redrive in the store). With keepActive, the subjects of the
// items in flight stay theirs, so that what is queued next for those
// subjects waits until they end.
func (sc *scheduler) dropQueuedLocked(keepActive bool, forget func(redriveID string)) {
	for _, q := range sc.subjects {
		if q != nil {
			for j := range q.waiting.len() {
				forget(q.waiting.at(j).redriveID())
			}
			q.waiting.clear()
		}
	}
	for t, it := range sc.timers {
		t.Stop()
		forget(it.redriveID())
		delete(sc.subjects, it.ev.Subject)
	}
	clear(sc.timers)
	for i := range sc.ready {
		for j := range sc.ready[i].len() {
			it := sc.ready[i].at(j)
			forget(it.redriveID())
			delete(sc.subjects, it.ev.Subject)
		}
		sc.ready[i].clear()
	}
	if !keepActive {
		clear(sc.subjects)
	}
	sc.addHeldLocked(-sc.qbytes)
	sc.nready, sc.count, sc.qbytes = 0, 0, 0
	sc.depth.Store(0)
}
