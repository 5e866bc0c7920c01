package herald

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// committer keeps a durable subscription's progress and commits it to the
// store: the outcomes, dead letters and resolved redrives of handled
// events, and the checkpoint — the position below which every event read
// from the log is done (on a SharedStore, the acks of its deliveries
// instead). It batches commits (flushLoop) and is what Bus.Reset and
// Bus.Discard change through its methods.
//
// Its fields but flushMu are guarded by the subscription's lock (mu); the
// methods named …Locked expect it held. An ephemeral subscription's
// committer is never started and records nothing.
type committer struct {
	mu     *sync.Mutex // the subscription's
	store  Store
	name   string
	log    *slog.Logger
	shared bool   // progress is acks of a SharedStore's deliveries
	signal func() // after a commit: publishers may find room in the store
	// counts reads the subscription's counters (under mu); sent is what
	// of them the store has: the next commit carries the difference.
	counts func() SubscriptionCounts
	sent   SubscriptionCounts

	// epoch counts resets: an item read before the last one is stale.
	epoch     uint32
	track     deque[trackEntry] // the events read and not yet done, in log order
	trackBase uint64            // seq of track's front
	nextSeq   uint64
	readPos   uint64 // the log is read through here
	committed uint64 // the checkpoint in the store

	outcomes    []Outcome
	deadLetters []DeadLetter
	resolved    []string
	acks        []Delivery
	maxDone     uint64 // shared: the highest position done
	redriving   map[string]bool
	discarded   map[string]bool // redrives under way whose dead letter was discarded

	flushKick chan struct{}
	flushFull chan struct{}
	flushMu   sync.Mutex
}

type trackEntry struct {
	pos  uint64
	done bool
}

// start readies the committer of a durable subscription resuming at cp.
func (c *committer) start(s *Subscription, cp uint64, shared bool) {
	c.mu, c.store, c.name, c.log, c.shared, c.signal = &s.mu, s.bus.store, s.name, s.log, shared, s.bus.signalRoom
	c.counts = s.counts
	c.flushKick = make(chan struct{}, 1)
	c.flushFull = make(chan struct{}, 1)
	c.redriving = make(map[string]bool)
	c.discarded = make(map[string]bool)
	c.trackBase = 1
	c.readPos, c.committed = cp, cp
}

// trackLocked registers an event read from the log and returns its seq.
func (c *committer) trackLocked(pos uint64) uint64 {
	c.nextSeq++
	c.track.push(trackEntry{pos: pos})
	return c.nextSeq
}

// doneLocked marks a tracked event done (seq 0: not tracked) and moves the
// watermark past the done events at the front.
func (c *committer) doneLocked(seq uint64) {
	if seq == 0 {
		return
	}
	c.track.at(int(seq - c.trackBase)).done = true
	for c.track.len() > 0 && c.track.front().done {
		c.track.pop()
		c.trackBase++
	}
	if c.track.len() == 0 {
		c.kickFlush()
	}
}

// readThroughLocked records that the log was read through pos (when it is
// further than before), kicks a commit when nothing read is pending, and
// returns where reading stands.
func (c *committer) readThroughLocked(pos uint64) uint64 {
	c.readPos = max(c.readPos, pos)
	if c.track.len() == 0 && c.readPos != c.committed {
		c.kickFlush()
	}
	return c.readPos
}

// readPosLocked is where the log was read through.
func (c *committer) readPosLocked() uint64 { return c.readPos }

// startRedriveLocked marks dead letter id as being redriven; it reports
// false when it is already.
func (c *committer) startRedriveLocked(id string) bool {
	if c.redriving[id] {
		return false
	}
	c.redriving[id] = true
	return true
}

// resolveLocked records that the redrive of dead letter id (none when "")
// succeeded: the next commit removes the dead letter.
func (c *committer) resolveLocked(id string) {
	if id == "" {
		return
	}
	c.resolved = append(c.resolved, id)
	delete(c.discarded, id)
}

// endDiscardedLocked reports whether the dead letter the item redrives
// (id, none when "") was discarded meanwhile, and forgets the redrive if
// so.
func (c *committer) endDiscardedLocked(id string) bool {
	if id == "" || !c.discarded[id] {
		return false
	}
	delete(c.discarded, id)
	delete(c.redriving, id)
	return true
}

// deadLetterLocked queues a dead letter for the next commit.
func (c *committer) deadLetterLocked(dl DeadLetter) {
	c.deadLetters = append(c.deadLetters, dl)
}

// damagedLocked queues, for the next commit, the permanent dead letter of
// a damaged event (ev stands in for it; see DamagedEventError) and its
// outcome: the dead letter id (a new one when ""; else a redrive of it
// found the event damaged, and the outcome is Redriven), with the attempt
// errors it had and one more saying msg. No handler was called.
func (c *committer) damagedLocked(ev *Event, id string, errs []AttemptError, msg string, now time.Time) {
	redriven := id != ""
	if !redriven {
		id = DeadLetterID(c.name, ev.ID)
	}
	errs = append(errs[:len(errs):len(errs)], AttemptError{At: now, Error: msg})
	c.outcomes = append(c.outcomes, Outcome{
		Subscription: c.name, EventID: ev.ID, EventName: ev.Name, Position: ev.Position,
		CorrelationID: ev.CorrelationID, Status: OutcomeDeadLettered, LastError: msg, UpdatedAt: now,
		Redriven: redriven, History: OutcomeHistory(errs),
	})
	c.deadLetters = append(c.deadLetters, DeadLetter{
		ID: id, Subscription: c.name, Event: ev, Errors: errs, Permanent: true, DeadAt: now,
	})
	c.kickFlush()
}

// ackLocked queues the ack of a shared delivery of the event at pos.
func (c *committer) ackLocked(d Delivery, pos uint64) {
	c.acks = append(c.acks, d)
	c.maxDone = max(c.maxDone, pos)
	c.kickFlush()
}

// watermarkLocked is the durable checkpoint: every tracked event up to it is done.
func (c *committer) watermarkLocked() uint64 {
	if c.track.len() > 0 {
		return c.track.front().pos - 1
	}
	return c.readPos
}

// checkpointLocked is the position progress stands at: the watermark, or
// on a SharedStore the highest position done.
func (c *committer) checkpointLocked() uint64 {
	if c.shared {
		return c.maxDone
	}
	return c.watermarkLocked()
}

// resetLocked moves the subscription to cp (Bus.Reset): what was tracked
// is forgotten, items read before are stale, and the next flush commits
// cp whatever was committed before.
func (c *committer) resetLocked(cp uint64) {
	c.epoch++
	c.track.clear()
	c.trackBase = c.nextSeq + 1
	c.readPos = cp
	c.committed = cp + 1 // differs from cp: the next flush commits
}

// discardLocked records the outcomes of dead letters Bus.Discard removed;
// a redrive of one of them under way ends at its next failure without a
// new dead letter.
func (c *committer) discardLocked(outs []Outcome) {
	for _, o := range outs {
		if id := DeadLetterID(c.name, o.EventID); c.redriving[id] {
			c.discarded[id] = true
		}
	}
	c.outcomes = append(c.outcomes, outs...)
}

// forgetRedriveLocked makes the redrive of dead letter id loadable again
// and reports whether one was under way.
func (c *committer) forgetRedriveLocked(id string) bool {
	if id == "" || !c.redriving[id] {
		return false
	}
	delete(c.redriving, id)
	// Discarded meanwhile: nothing left to load.
	delete(c.discarded, id)
	return true
}

// recordLocked queues the outcome of the attempt that gave r for the
// next commit: its duration, and the item's failed attempts so far as
// history.
func (c *committer) recordLocked(it *item, r *result, status OutcomeStatus) {
	attempts, last := int(it.attempt), ""
	var history []AttemptError
	if it.x != nil {
		attempts += it.x.prior
		if n := len(it.x.errs); n > 0 && status != OutcomeSucceeded {
			last = it.x.errs[n-1].Error
		}
		history = OutcomeHistory(it.x.errs)
	}
	c.outcomes = append(c.outcomes, Outcome{
		Subscription: c.name, EventID: it.ev.ID, EventName: it.ev.Name,
		Position: it.ev.Position, CorrelationID: it.ev.CorrelationID, Status: status,
		Attempts: attempts, LastError: last, Duration: Duration(r.dur), UpdatedAt: r.end,
		Redriven: it.redriveID() != "", History: history,
	})
	switch n := len(c.outcomes); {
	case n == 1:
		c.kickFlush()
	case n >= 64:
		select {
		case c.flushFull <- struct{}{}:
		default:
		}
	}
}

func (c *committer) kickFlush() {
	if c.flushKick == nil {
		return
	}
	select {
	case c.flushKick <- struct{}{}:
	default:
	}
}

// flushLoop commits outcomes and the checkpoint in batches: at most 20 ms
// after the first pending change, or at once when 64 outcomes wait. A
// commit that failed is tried again after a backoff (100 ms doubling up to
// 5 s), whether or not more changes come. It returns when ctx ends, which
// also cancels a commit in flight (Subscription.stop commits what is left).
func (c *committer) flushLoop(ctx context.Context) {
	stop := ctx.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var retry time.Duration
	for {
		full := c.flushFull
		if retry == 0 {
			select {
			case <-c.flushKick:
			case <-c.flushFull:
			case <-stop:
				return
			}
			t.Reset(20 * time.Millisecond)
		} else {
			t.Reset(retry)
			full = nil // the store is failing: do not hurry
		}
		select {
		case <-t.C:
		case <-full:
			t.Stop()
		case <-stop:
			t.Stop()
			return
		}
		if err := c.flush(ctx); err != nil {
			retry = min(max(2*retry, 100*time.Millisecond), 5*time.Second)
		} else {
			retry = 0
		}
	}
}

// flush commits what is pending. It is safe to call concurrently.
func (c *committer) flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	cp := c.checkpointLocked()
	p := Progress{Checkpoint: cp, Outcomes: c.outcomes, DeadLetters: c.deadLetters, Resolved: c.resolved}
	var counted SubscriptionCounts
	if c.counts != nil {
		counted = c.counts()
		p.Counts = counted.sub(c.sent)
	}
	acks := c.acks
	if cp == c.committed && len(p.Outcomes) == 0 && len(p.DeadLetters) == 0 && len(p.Resolved) == 0 && len(acks) == 0 && p.Counts.IsZero() {
		c.mu.Unlock()
		return nil
	}
	c.outcomes, c.deadLetters, c.resolved, c.acks = nil, nil, nil, nil
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := c.store.Commit(ctx, c.name, p)
	c.mu.Lock()
	if err != nil {
		// Keep everything for the next flush, ahead of what came since.
		c.outcomes = append(p.Outcomes, c.outcomes...)
		c.deadLetters = append(p.DeadLetters, c.deadLetters...)
		c.resolved = append(p.Resolved, c.resolved...)
		c.acks = append(acks, c.acks...)
		c.mu.Unlock()
		c.log.Error("herald: committing progress failed", "subscription", c.name, "error", err)
		return err
	}
	c.committed = cp
	c.sent = counted
	for _, id := range p.Resolved {
		delete(c.redriving, id)
	}
	for _, d := range p.DeadLetters {
		delete(c.redriving, d.ID)
	}
	if _, mem := c.store.(*MemoryStore); mem && c.outcomes == nil {
		// The memory store copies outcomes: reuse the slice.
		clear(p.Outcomes)
		c.outcomes = p.Outcomes[:0]
	}
	c.mu.Unlock()
	for _, d := range acks {
		if err := d.Ack(ctx); err != nil {
			c.log.Warn("herald: ack failed", "subscription", c.name, "event_id", d.Event().ID, "error", err)
		}
	}
	c.signal()
	return nil
}
