package herald

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEvents is how many events a MemoryStore holds by default.
const DefaultMaxEvents = 1 << 16

// MemoryStore is a Store that keeps everything in the process's memory: the
// zero-configuration default of New, and the store of tests. Nothing
// survives the process.
//
// It is bounded: it holds at most WithMaxEvents events (default
// DefaultMaxEvents). When an append would exceed that, it first forgets the
// oldest events that every durable subscription has committed past (with
// their outcomes; a store without durable subscriptions forgets the oldest
// events freely). When it cannot make room that way, because a durable
// subscription still needs them, Append returns ErrBackpressure and stores
// nothing, and Publish waits for room up to its deadline. A batch larger
// than the bound gets ErrStoreFull.
//
// WithSubject versions count every event ever stored for the subject and do not
// go down when events are forgotten, so optimistic concurrency stays correct
// for aggregates whose old events were pruned after a snapshot.
//
// A MemoryStore is safe for concurrent use. After Close every method returns
// ErrClosed.
type MemoryStore struct {
	mu     sync.Mutex
	closed bool
	max    int

	headPos     atomic.Uint64 // head, readable without the lock
	slots       []memSlot     // ring indexed by position & (len-1)
	first, head uint64        // positions held: first..head (first = head+1 when empty)
	ids         idIndex
	subjects    map[string]uint64

	notify     chan struct{} // closed and replaced on append when notifyUsed
	notifyUsed bool

	checkpoints map[string]uint64
	outBlock    []memOutcome           // where new slots' outcome slices are carved from
	orphans     map[outcomeKey]Outcome // outcomes of events the log does not hold
	dead        map[string]*memDead
	deadSeq     uint64
	kv          map[string]map[string]KVEntry
	kvRev       uint64 // the last KV revision given

	counts map[string]SubscriptionCounts // the subscriptions' totals (CountingStore)
}

type memSlot struct {
	ev   *Event
	outs []memOutcome
}

// memOutcome is an Outcome without what its slot's event already says.
type memOutcome struct {
	sub       string
	lastError string
	updatedAt time.Time
	dur       Duration
	attempts  int32
	status    uint8
	redriven  bool
	history   []AttemptError // the store's own copy; nil when no attempt failed
}

var outcomeStatuses = [...]OutcomeStatus{OutcomeSucceeded, OutcomeRetrying, OutcomeDeadLettered, OutcomeDiscarded}

func statusCode(st OutcomeStatus) (uint8, bool) {
	for i, v := range outcomeStatuses {
		if v == st {
			return uint8(i), true
		}
	}
	return 0, false
}

func (m *memOutcome) outcome(e *Event) Outcome {
	return Outcome{
		Subscription: m.sub, EventID: e.ID, EventName: e.Name, Position: e.Position,
		CorrelationID: e.CorrelationID, Status: outcomeStatuses[m.status], Attempts: int(m.attempts),
		LastError: m.lastError, Duration: m.dur, UpdatedAt: m.updatedAt, Redriven: m.redriven,
		History: slices.Clone(m.history),
	}
}

type memDead struct {
	dl  DeadLetter
	seq uint64
}

type outcomeKey struct{ sub, eventID string }

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// WithMemoryMaxEvents bounds how many events the store holds (default
// DefaultMaxEvents, 65,536); n <= 0 removes the bound.
func WithMemoryMaxEvents(n int) MemoryOption { return func(s *MemoryStore) { s.max = n } }

const maxOrphanOutcomes = 1 << 16

// NewMemoryStore returns an empty memory store.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	s := &MemoryStore{
		max:         DefaultMaxEvents,
		slots:       make([]memSlot, 64),
		first:       1,
		ids:         newIDIndex(),
		subjects:    make(map[string]uint64),
		notify:      make(chan struct{}),
		checkpoints: make(map[string]uint64),
		counts:      make(map[string]SubscriptionCounts),
		orphans:     make(map[outcomeKey]Outcome),
		dead:        make(map[string]*memDead),
		kv:          make(map[string]map[string]KVEntry),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

var _ Store = (*MemoryStore)(nil)

func (s *MemoryStore) slot(p uint64) *memSlot { return &s.slots[p&uint64(len(s.slots)-1)] }

func (s *MemoryStore) count() int { return int(s.head + 1 - s.first) }

// grow doubles the ring, keeping every position at its place.
func (s *MemoryStore) grow(need int) {
	n := len(s.slots)
	for n < need {
		n *= 2
	}
	if n == len(s.slots) {
		return
	}
	slots := make([]memSlot, n)
	for p := s.first; p <= s.head; p++ {
		slots[p&uint64(n-1)] = *s.slot(p)
	}
	s.slots = slots
}

// minCheckpoint returns the smallest durable checkpoint, or MaxUint64.
func (s *MemoryStore) minCheckpoint() uint64 {
	m := uint64(math.MaxUint64)
	if len(s.checkpoints) == 0 {
		return m // no durable subscription: skip starting a map iteration on every append
	}
	for _, c := range s.checkpoints {
		m = min(m, c)
	}
	return m
}

// forget drops the event at position p with its outcomes.
func (s *MemoryStore) forget(p uint64) {
	sl := s.slot(p)
	if sl.ev != nil {
		if p <= s.ids.through {
			s.ids.remove(s, sl.ev.ID, p)
		}
	}
	*sl = memSlot{}
}

// trimFront advances first past forgotten slots.
func (s *MemoryStore) trimFront() {
	for s.first <= s.head && s.slot(s.first).ev == nil {
		s.first++
	}
}

// makeRoom makes the ring able to take n more events, forgetting what it may.
func (s *MemoryStore) makeRoom(n int) error {
	if s.max > 0 && n > s.max {
		return fmt.Errorf("%w: a batch of %d events exceeds the memory store's bound of %d", ErrStoreFull, n, s.max)
	}
	if s.max > 0 && s.count()+n > s.max {
		floor := s.minCheckpoint()
		for s.count()+n > s.max && s.first <= s.head {
			if s.slot(s.first).ev != nil && s.first > floor {
				break
			}
			s.forget(s.first)
			s.first++
		}
		if s.count()+n > s.max {
			return fmt.Errorf("%w: the memory store holds %d events that a durable subscription still needs", ErrBackpressure, s.count())
		}
	}
	if need := s.count() + n; need > len(s.slots) {
		s.grow(need)
	}
	return nil
}

// Append implements EventLog.
func (s *MemoryStore) Append(ctx context.Context, events []*Event, opts AppendOptions) ([]AppendResult, error) {
	res := make([]AppendResult, len(events))
	if err := s.append(events, res, opts, false); err != nil {
		return nil, err
	}
	return res, nil
}

// appendOne appends a single event without allocating a result slice.
// fresh says that the event's ID was just generated (a new UUIDv7), so
// there is no duplicate to look for.
func (s *MemoryStore) appendOne(e *Event, opts AppendOptions, fresh bool) (AppendResult, error) {
	var evs = [1]*Event{e}
	var res [1]AppendResult
	err := s.append(evs[:], res[:], opts, fresh)
	return res[0], err
}

func (s *MemoryStore) append(events []*Event, res []AppendResult, opts AppendOptions, freshIDs bool) error {
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	fresh := 0
	var seen map[string]struct{} // IDs earlier in a large batch
	for i, e := range events {
		if e == nil {
			return fmt.Errorf("%w: event %d is nil", ErrInvalidEvent, i)
		}
		if freshIDs {
			res[i] = AppendResult{}
			fresh++
			continue
		}
		if p, ok := s.ids.find(s, e.ID); ok {
			res[i] = AppendResult{Position: p, Duplicate: true}
			continue
		}
		dupInBatch := false
		if len(events) > 16 {
			if seen == nil {
				seen = make(map[string]struct{}, len(events))
			}
			_, dupInBatch = seen[e.ID]
			seen[e.ID] = struct{}{}
		} else {
			for j := range i {
				if events[j].ID == e.ID {
					dupInBatch = true
					break
				}
			}
		}
		if dupInBatch {
			res[i] = AppendResult{Duplicate: true}
			continue
		}
		res[i] = AppendResult{}
		fresh++
	}
	if fresh == 0 {
		return nil
	}
	if opts.CheckVersion {
		subj := events[0].Subject
		for i, e := range events {
			if e.Subject == "" || e.Subject != subj {
				return fmt.Errorf("%w: event %d: a conditional append needs one non-empty subject for every event", ErrInvalidEvent, i)
			}
		}
		if v := s.subjects[subj]; v != opts.ExpectedVersion {
			return fmt.Errorf("%w: subject %q is at version %d, not %d", ErrConflict, subj, v, opts.ExpectedVersion)
		}
	}
	if err := s.makeRoom(fresh); err != nil {
		return err
	}
	for i, e := range events {
		if res[i].Duplicate {
			continue
		}
		s.head++
		e.Position = s.head
		*s.slot(s.head) = memSlot{ev: e}
		if !freshIDs {
			s.ids.add(s, e.ID, s.head)
			s.ids.through = s.head
		}
		if e.Subject != "" {
			s.subjects[e.Subject]++
		}
		res[i].Position = s.head
	}
	for i, e := range events {
		if res[i].Duplicate && res[i].Position == 0 {
			res[i].Position, _ = s.ids.find(s, e.ID)
		}
	}
	s.headPos.Store(s.head)
	if s.notifyUsed {
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyUsed = false
	}
	return nil
}

const memReadChunk = 256

// Read implements EventLog.
func (s *MemoryStore) Read(ctx context.Context, after uint64, f Filter) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		var buf [memReadChunk]*Event
		pos, n := after, 0
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			want := memReadChunk
			if f.Limit > 0 {
				want = min(want, f.Limit-n)
			}
			got, scanned := 0, 0
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				yield(nil, ErrClosed)
				return
			}
			if pos < s.first-1 {
				pos = s.first - 1
			}
			for pos < s.head && got < want && scanned < 16*memReadChunk {
				pos++
				scanned++
				if e := s.slot(pos).ev; e != nil && f.Match(e) {
					buf[got] = e
					got++
				}
			}
			atHead := pos >= s.head
			s.mu.Unlock()
			for i := range got {
				if !yield(buf[i], nil) {
					return
				}
				buf[i] = nil
				n++
			}
			if (f.Limit > 0 && n >= f.Limit) || (atHead && got < want) {
				return
			}
		}
	}
}

// Get implements EventLog.
func (s *MemoryStore) Get(ctx context.Context, id string) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	p, ok := s.ids.find(s, id)
	if !ok {
		return nil, fmt.Errorf("%w: event %q", ErrNotFound, id)
	}
	return s.slot(p).ev, nil
}

// Head implements EventLog.
func (s *MemoryStore) Head(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.head, nil
}

// Wait implements EventLog.
func (s *MemoryStore) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, ErrClosed
		}
		if s.head > after {
			h := s.head
			s.mu.Unlock()
			return h, nil
		}
		ch := s.notify
		s.notifyUsed = true
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// SubjectVersion implements EventLog.
func (s *MemoryStore) SubjectVersion(ctx context.Context, subject string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.subjects[subject], nil
}

// Checkpoint implements SubscriptionState.
func (s *MemoryStore) Checkpoint(ctx context.Context, sub string) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, false, ErrClosed
	}
	p, ok := s.checkpoints[sub]
	return p, ok, nil
}

// Checkpoints implements SubscriptionState.
func (s *MemoryStore) Checkpoints(ctx context.Context) (map[string]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return maps.Clone(s.checkpoints), nil
}

// Commit implements SubscriptionState.
func (s *MemoryStore) Commit(ctx context.Context, sub string, p Progress) error {
	if sub == "" {
		return fmt.Errorf("%w: empty subscription name", ErrInvalidEvent)
	}
	// Check everything before changing anything: a Commit is all or nothing.
	for _, d := range p.DeadLetters {
		if d.Event == nil {
			return fmt.Errorf("%w: dead letter without an event", ErrInvalidEvent)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, o := range p.Outcomes {
		o.Subscription = sub
		s.putOutcome(o)
	}
	for _, d := range p.DeadLetters {
		d.Subscription = sub
		if d.ID == "" {
			d.ID = DeadLetterID(sub, d.Event.ID)
		}
		d.Errors = slices.Clone(d.Errors)
		s.deadSeq++
		s.dead[d.ID] = &memDead{dl: d, seq: s.deadSeq}
	}
	for _, id := range p.Resolved {
		delete(s.dead, id)
	}
	if !p.Counts.IsZero() {
		s.counts[sub] = s.counts[sub].Add(p.Counts)
	}
	s.checkpoints[sub] = p.Checkpoint
	return nil
}

func (s *MemoryStore) putOutcome(o Outcome) {
	// The position, when the caller gave the right one, saves the lookup.
	p, ok := o.Position, o.Position >= s.first && o.Position <= s.head &&
		s.slot(o.Position).ev != nil && s.slot(o.Position).ev.ID == o.EventID
	if !ok {
		p, ok = s.ids.find(s, o.EventID)
	}
	o.History = slices.Clone(o.History) // the store's own
	if len(o.History) == 0 {
		o.History = nil
	}
	code, known := statusCode(o.Status)
	if ok && known && s.slot(p).ev.Name == o.EventName && s.slot(p).ev.CorrelationID == o.CorrelationID {
		sl := s.slot(p)
		m := memOutcome{sub: o.Subscription, lastError: o.LastError, updatedAt: o.UpdatedAt,
			dur: o.Duration, attempts: int32(o.Attempts), status: code, redriven: o.Redriven, history: o.History}
		for i := range sl.outs {
			if sl.outs[i].sub == o.Subscription {
				sl.outs[i] = m
				return
			}
		}
		if sl.outs == nil {
			// Room for every durable subscription at once, carved from a
			// larger block so that recording outcomes rarely allocates.
			n := min(max(2, len(s.checkpoints)), 64)
			if len(s.outBlock) < n {
				s.outBlock = make([]memOutcome, 64*n)
			}
			sl.outs = s.outBlock[:0:n]
			s.outBlock = s.outBlock[n:]
		}
		sl.outs = append(sl.outs, m)
		return
	}
	if ok {
		o.Position = p
	}
	k := outcomeKey{o.Subscription, o.EventID}
	if _, ok := s.orphans[k]; !ok && len(s.orphans) >= maxOrphanOutcomes {
		for k := range s.orphans {
			delete(s.orphans, k)
			break
		}
	}
	s.orphans[k] = o
}

// DeleteSubscription implements SubscriptionState.
func (s *MemoryStore) DeleteSubscription(ctx context.Context, sub string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	delete(s.checkpoints, sub)
	for p := s.first; p <= s.head && s.head > 0; p++ {
		if sl := s.slot(p); len(sl.outs) > 0 {
			sl.outs = slices.DeleteFunc(sl.outs, func(o memOutcome) bool { return o.sub == sub })
		}
	}
	for k := range s.orphans {
		if k.sub == sub {
			delete(s.orphans, k)
		}
	}
	delete(s.counts, sub)
	return nil
}

// Outcomes implements SubscriptionState.
func (s *MemoryStore) Outcomes(ctx context.Context, q OutcomeQuery) ([]Outcome, error) {
	if q.EventID == "" && q.CorrelationID == "" && q.Subscription == "" {
		return nil, fmt.Errorf("%w: an outcome query needs an event id, a correlation id or a subscription", ErrInvalidEvent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	match := func(o *Outcome) bool {
		return (q.EventID == "" || o.EventID == q.EventID) &&
			(q.CorrelationID == "" || o.CorrelationID == q.CorrelationID) &&
			(q.Subscription == "" || o.Subscription == q.Subscription)
	}
	var out []Outcome
	collect := func(sl *memSlot) {
		for i := range sl.outs {
			if o := sl.outs[i].outcome(sl.ev); match(&o) {
				out = append(out, o)
			}
		}
	}
	if q.EventID != "" {
		if p, ok := s.ids.find(s, q.EventID); ok {
			collect(s.slot(p))
		}
	} else {
		for p := s.first; p <= s.head; p++ {
			if sl := s.slot(p); len(sl.outs) > 0 {
				collect(sl)
			}
		}
	}
	for _, o := range s.orphans {
		if match(&o) {
			o.History = slices.Clone(o.History)
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Outcome) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Subscription, b.Subscription))
	})
	if limit := OutcomeLimit(q.Limit); len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (q *DeadLetterQuery) match(d *DeadLetter) bool {
	return (q.Subscription == "" || d.Subscription == q.Subscription) &&
		(len(q.IDs) == 0 || slices.Contains(q.IDs, d.ID)) &&
		(q.EventID == "" || d.Event.ID == q.EventID) &&
		(!q.OnlyRedrive || d.Redrive)
}

func (s *MemoryStore) deadMatching(q DeadLetterQuery) []*memDead {
	var ds []*memDead
	for _, d := range s.dead {
		if q.match(&d.dl) {
			ds = append(ds, d)
		}
	}
	slices.SortFunc(ds, func(a, b *memDead) int {
		return cmp.Or(a.dl.DeadAt.Compare(b.dl.DeadAt), cmp.Compare(a.seq, b.seq))
	})
	return ds
}

// DeadLetters implements SubscriptionState.
func (s *MemoryStore) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ds := s.deadMatching(q)
	if q.Limit > 0 && len(ds) > q.Limit {
		ds = ds[:q.Limit]
	}
	out := make([]DeadLetter, len(ds))
	for i, d := range ds {
		out[i] = d.dl
		out[i].Errors = slices.Clone(d.dl.Errors)
	}
	return out, nil
}

// DeadLetterCounts implements SubscriptionState.
func (s *MemoryStore) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	n := make(map[string]int)
	for _, d := range s.dead {
		n[d.dl.Subscription]++
	}
	return n, nil
}

// RedriveDeadLetters implements SubscriptionState.
func (s *MemoryStore) RedriveDeadLetters(ctx context.Context, q DeadLetterQuery) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n := 0
	for _, d := range s.dead {
		if q.match(&d.dl) {
			d.dl.Redrive = true
			n++
		}
	}
	return n, nil
}

// DeleteDeadLetters implements SubscriptionState.
func (s *MemoryStore) DeleteDeadLetters(ctx context.Context, q DeadLetterQuery) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n := 0
	for id, d := range s.dead {
		if q.match(&d.dl) {
			delete(s.dead, id)
			n++
		}
	}
	return n, nil
}

// PutValue implements KV.
func (s *MemoryStore) PutValue(ctx context.Context, bucket, key string, value []byte) error {
	_, err := s.writeValue(bucket, key, value, func(KVEntry, bool) error { return nil })
	return err
}

// CreateValue implements KV.
func (s *MemoryStore) CreateValue(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	return s.writeValue(bucket, key, value, func(_ KVEntry, exists bool) error {
		if exists {
			return fmt.Errorf("%w: kv %s/%s exists", ErrConflict, bucket, key)
		}
		return nil
	})
}

// UpdateValue implements KV.
func (s *MemoryStore) UpdateValue(ctx context.Context, bucket, key string, value []byte, rev uint64) (uint64, error) {
	return s.writeValue(bucket, key, value, func(cur KVEntry, exists bool) error {
		if !exists || cur.Revision != rev {
			return fmt.Errorf("%w: kv %s/%s is not at revision %d", ErrConflict, bucket, key, rev)
		}
		return nil
	})
}

// writeValue stores value under bucket/key with a new revision when check,
// given the current entry, allows it.
func (s *MemoryStore) writeValue(bucket, key string, value []byte, check func(cur KVEntry, exists bool) error) (uint64, error) {
	if err := ValidateKVName(bucket, key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	cur, exists := s.kv[bucket][key]
	if err := check(cur, exists); err != nil {
		return 0, err
	}
	b := s.kv[bucket]
	if b == nil {
		b = make(map[string]KVEntry)
		s.kv[bucket] = b
	}
	v := slices.Clone(value)
	if v == nil {
		v = []byte{}
	}
	s.kvRev++
	b[key] = KVEntry{Value: v, Revision: s.kvRev}
	return s.kvRev, nil
}

// GetValue implements KV.
func (s *MemoryStore) GetValue(ctx context.Context, bucket, key string) ([]byte, error) {
	e, err := s.GetEntry(ctx, bucket, key)
	return e.Value, err
}

// GetEntry implements KV.
func (s *MemoryStore) GetEntry(ctx context.Context, bucket, key string) (KVEntry, error) {
	if err := ValidateKVName(bucket, key); err != nil {
		return KVEntry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return KVEntry{}, ErrClosed
	}
	e, ok := s.kv[bucket][key]
	if !ok {
		return KVEntry{}, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	e.Value = slices.Clone(e.Value)
	return e, nil
}

// DeleteValue implements KV.
func (s *MemoryStore) DeleteValue(ctx context.Context, bucket, key string) error {
	if err := ValidateKVName(bucket, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if e, ok := s.kv[bucket][key]; ok {
		clear(e.Value) // key material does not linger in memory the store held
		delete(s.kv[bucket], key)
	}
	return nil
}

// ListValues implements KV.
func (s *MemoryStore) ListValues(ctx context.Context, bucket string) (map[string][]byte, error) {
	if err := ValidateKVBucket(bucket); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make(map[string][]byte, len(s.kv[bucket]))
	for k, e := range s.kv[bucket] {
		out[k] = slices.Clone(e.Value)
	}
	return out, nil
}

// DeleteEvents implements EventLog.
func (s *MemoryStore) DeleteEvents(ctx context.Context, positions []uint64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	var gone map[string]bool
	for _, p := range positions {
		e := s.live(p)
		if e == nil {
			continue
		}
		if gone == nil {
			gone = make(map[string]bool, len(positions))
		}
		gone[e.ID] = true
		s.forget(p)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	for id, d := range s.dead {
		if gone[d.dl.Event.ID] {
			delete(s.dead, id)
		}
	}
	for k := range s.orphans {
		if gone[k.eventID] {
			delete(s.orphans, k)
		}
	}
	s.trimFront()
	return len(gone), nil
}

// Close implements Store. It is safe to call more than once.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
	}
	return nil
}

// idIndex maps event IDs to positions. It keys a map by a 64-bit hash of
// the ID, which is smaller and faster than keying by the string; the event
// in the ring at the position found confirms the ID, and the rare ID whose
// hash collides with a live one goes to a map keyed by the string.
type idIndex struct {
	through    uint64 // every event up to this position is indexed
	hash       func(string) uint64
	byHash     map[uint64]uint64
	collisions map[string]uint64
}

func newIDIndex() idIndex {
	seed := maphash.MakeSeed()
	return idIndex{
		hash:       func(id string) uint64 { return maphash.String(seed, id) },
		byHash:     make(map[uint64]uint64),
		collisions: make(map[string]uint64),
	}
}

// live returns the event at p, or nil when the ring does not hold one.
func (s *MemoryStore) live(p uint64) *Event {
	if p < s.first || p > s.head {
		return nil
	}
	return s.slot(p).ev
}

// catchUp indexes the events appended since the index was last used:
// events published with IDs the bus just generated are indexed only when
// someone looks an ID up, and not at all when they leave the store first.
func (x *idIndex) catchUp(s *MemoryStore) {
	for p := max(x.through+1, s.first); p <= s.head; p++ {
		if e := s.slot(p).ev; e != nil {
			x.add(s, e.ID, p)
		}
	}
	x.through = s.head
}

func (x *idIndex) find(s *MemoryStore, id string) (uint64, bool) {
	if x.through < s.head {
		x.catchUp(s)
	}
	if p, ok := x.byHash[x.hash(id)]; ok {
		if e := s.live(p); e != nil && e.ID == id {
			return p, true
		}
	}
	if len(x.collisions) > 0 {
		p, ok := x.collisions[id]
		return p, ok
	}
	return 0, false
}

func (x *idIndex) add(s *MemoryStore, id string, p uint64) {
	h := x.hash(id)
	n := len(x.byHash)
	x.byHash[h] = p
	if len(x.byHash) != n {
		return // the common case: one map operation
	}
	// h belonged to another live ID (entries leave with their events): give
	// it back to its owner and keep id by its string.
	for q := s.first; q <= s.head; q++ {
		e := s.slot(q).ev
		if e == nil || q == p || e.ID == id || x.hash(e.ID) != h {
			continue
		}
		if _, aside := x.collisions[e.ID]; !aside {
			x.byHash[h] = q
			x.collisions[id] = p
			return
		}
	}
}

func (x *idIndex) remove(s *MemoryStore, id string, p uint64) {
	h := x.hash(id)
	if len(x.collisions) == 0 {
		delete(x.byHash, h) // every live ID owns its hash
		return
	}
	if q, ok := x.byHash[h]; ok && q == p {
		delete(x.byHash, h)
		return
	}
	delete(x.collisions, id)
}
