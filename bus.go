package herald

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bus publishes events to a store and delivers them to subscriptions.
//
// Publish validates an event, appends it to the store and hands it to the
// ephemeral subscriptions; durable subscriptions read it from the store.
// Handlers run on the subscriptions' own goroutines: a slow, failing or
// panicking handler affects only its own subscription.
//
// Durable subscriptions record an outcome for every event they handle and
// keep dead letters in the store (see Outcomes, Trace, DeadLetters).
// Ephemeral subscriptions record neither: their failures are logged and
// counted (SubscriptionStats, metrics) only; see Durable for why.
//
// A Bus is safe for concurrent use. Close stops it; after Close every
// method that publishes, subscribes or reads the store returns ErrClosed
// (Store, Schemas and Subscriptions keep working). The bus does not close a
// store given with WithStore; it closes the memory store it made itself.
type Bus struct {
	cfg       busConfig
	store     Store
	mem       *MemoryStore // store, when it is a memory store (fast path)
	ownsStore bool
	logger    *slog.Logger
	metrics   *metrics

	closed atomic.Bool
	// fan hands events to the ephemeral subscriptions in log order.
	fan fanout

	mu         sync.Mutex
	subs       map[*Subscription]struct{}
	durables   map[string]*Subscription
	ephemerals atomic.Pointer[[]*Subscription]
	nextEph    int
	// durableRunning counts the durable subscriptions in subs, which
	// share WithReadAhead's total; readAheadHeld is what they hold
	// together, and what their readers reserved (reserveReadAhead).
	durableRunning atomic.Int64
	readAheadHeld  atomic.Int64
	roomCh         chan struct{}
	roomUsed       bool

	forgetHooks forgetHooks

	// stopRetention ends the WithRetention schedule, which then closes
	// retentionDone; both are nil without a schedule.
	stopRetention context.CancelFunc
	retentionDone chan struct{}
}

// New returns a bus configured by opts. With no options it keeps events in
// a new memory store (see NewMemoryStore), logs nothing and registers no
// metrics. It fails when an option is invalid or the registerer already
// holds herald's metrics.
func New(opts ...Option) (*Bus, error) {
	cfg := busConfig{maxEventSize: DefaultMaxEventSize, publishTimeout: DefaultPublishTimeout,
		readAhead: DefaultReadAheadBytes, readAheadTotal: DefaultReadAheadTotal}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Bus{
		subs:     make(map[*Subscription]struct{}),
		durables: make(map[string]*Subscription),
		roomCh:   make(chan struct{}),
	}
	if cfg.store == nil {
		cfg.store = NewMemoryStore()
		b.ownsStore = true
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.schemas == nil {
		cfg.schemas = NewSchemas()
	}
	b.cfg, b.store, b.logger = cfg, cfg.store, cfg.logger
	b.mem, _ = cfg.store.(*MemoryStore)
	m, err := newMetrics(cfg.registerer, b)
	if err != nil {
		return nil, err
	}
	b.metrics = m
	b.ephemerals.Store(new([]*Subscription))
	if a, ok := cfg.codec.(CodecAttacher); ok {
		if err := a.AttachBus(b); err != nil {
			return nil, fmt.Errorf("herald: attaching the codec: %w", err)
		}
	}
	if cfg.pruneEvery > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		b.stopRetention, b.retentionDone = cancel, make(chan struct{})
		go b.retentionLoop(ctx)
	}
	return b, nil
}

// Store returns the bus's store, raw: reads from it are not decoded,
// appends to it skip validation, the codec and delivery, and deleting
// subscription state behind a running subscription undoes its progress.
// It is an escape hatch for tests and store tooling; herald's own packages
// never use it, and programs should use the Bus's methods (Read, Get,
// Head, Wait, SubjectVersion, KV, DeleteSubscription, Prune), which are
// the one door to the store. The memory store the bus made itself (no
// WithStore) is closed by Bus.Close; a store given with WithStore stays
// open.
//
// Deprecated: use the Bus's methods; Store remains for tests and tools
// that need the raw store.
func (b *Bus) Store() Store { return b.store }

// Schemas returns the JSON Schema registry the bus validates events
// against; schemas registered in it apply to the next Publish.
func (b *Bus) Schemas() *Schemas { return b.cfg.schemas }

// Publish validates e, fills in what it lacks, appends it to the store and
// hands it to the ephemeral subscriptions whose pattern matches; it returns
// the event's position. Publishing an ID that is already stored stores
// nothing, delivers nothing and returns the first position; ReportDuplicate
// says when that happened. The stored event must have the same name,
// version, subject and data (as JSON values): an ID reused for other
// content returns an error wrapping ErrConflict.
//
// What Publish fills in: the ID (a UUIDv7), the timestamp, the version, the
// correlation id (its own ID), source_plugin (WithSource) and empty data.
// When ctx is a handler's context, the event is a response to the event
// being handled: it inherits its correlation id, its causation id is the
// handled event's ID, and its ID, when empty, is ChildID(parent,
// subscription, n) for the handler's n-th publish (n restarts at 0 on each
// attempt), so a retried handler publishes the same IDs and nothing twice —
// provided it publishes its events in the same order each time (not from
// several goroutines at once).
//
// An invalid event returns a *ValidationError (ErrInvalidEvent,
// ErrSchemaViolation or ErrTooLarge) and stores nothing. When the store or
// an ephemeral subscription has no room, Publish waits until ctx's deadline
// (WithPublishTimeout when it has none) and then returns an error wrapping
// ErrBackpressure; only the subscriptions that take e can hold it. When
// the store cannot tell whether it stored e (no acknowledgement in time
// from a NATS JetStream cluster without quorum), the error wraps
// ErrOutcomeUnknown instead: publish an event with the same ID again
// (e.ID holds the one Publish chose), never a new one. When
// ctx is cancelled while waiting, Publish returns ctx's error. (A handler
// that publishes to its own full ephemeral subscription therefore waits
// for that deadline: give such a subscription room, Concurrency above 1 or
// DropOldest.) With ExpectVersion a subject at another version returns
// ErrConflict. After Close it returns ErrClosed. e belongs to the bus once
// Publish is called and must not be modified.
//
// Concurrent publishers do not wait for each other's appends: no lock is
// held while the store writes. Ephemeral subscriptions still receive the
// events of this bus in log order: an event stored while an earlier
// append is still under way is handed off once that append returns.
func (b *Bus) Publish(ctx context.Context, e *Event, opts ...PublishOption) (uint64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	if e == nil {
		return 0, &ValidationError{Reason: "nil event", Err: ErrInvalidEvent}
	}
	pc := publishOptions(opts)
	hc := handlerFrom(ctx)
	freshID := e.ID == "" && hc == nil
	if err := b.prepare(ctx, hc, e, 0); err != nil {
		return 0, b.publishFailed(err)
	}
	var deadline time.Time
	subs := *b.ephemerals.Load()
	var match uint64
	if len(subs) > 0 {
		// Room in the subscriptions is reserved before the append; no
		// lock is held across it (see fanout).
		var err error
		if match, err = b.reserveOne(ctx, subs, e.Name, &deadline); err != nil {
			return 0, b.publishFailed(err)
		}
	}
	settled := false
	if len(subs) > 0 {
		defer func() {
			if !settled { // the store panicked
				unreserveOne(subs, e.Name)
			}
		}()
	}
	res, err := b.appendOne(ctx, e, pc.append, &deadline, freshID, subs, match)
	settled = true
	if err != nil || res.Duplicate {
		unreserveOne(subs, e.Name)
	}
	if err == nil && res.Duplicate {
		err = b.checkDuplicate(ctx, e, -1)
	}
	if err != nil {
		return 0, b.publishFailed(err)
	}
	if pc.duplicate != nil {
		*pc.duplicate = res.Duplicate
	}
	if !res.Duplicate && b.metrics != nil {
		b.metrics.published.Inc()
	}
	return res.Position, nil
}

// checkDuplicate returns an error wrapping ErrConflict when the event
// stored under e's ID differs from e in name, version, subject or data
// (its JSON value, decoded when the bus has a codec). Timestamp, metadata,
// correlation and the rest may differ: a retried publish carries a new
// trace context and time. An event no longer stored (pruned) is not
// compared. index is e's place in a batch, or -1.
func (b *Bus) checkDuplicate(ctx context.Context, e *Event, index int) error {
	var stored *Event
	var err error
	if b.mem != nil {
		stored, err = b.mem.Get(ctx, e.ID)
	} else {
		stored, err = b.store.Get(ctx, e.ID)
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("herald: reading the event stored as %q to compare: %w", e.ID, err)
	}
	field := ""
	switch {
	case stored.Name != e.Name:
		field = "name"
	case stored.Version != e.Version:
		field = "version"
	case stored.Subject != e.Subject:
		field = "subject"
	case !b.sameData(ctx, stored, e):
		field = "data"
	}
	if field == "" {
		return nil
	}
	at := ""
	if index >= 0 {
		at = fmt.Sprintf("event %d: ", index)
	}
	return fmt.Errorf("herald: %sid %q is already stored with another %s: %w", at, e.ID, field, ErrConflict)
}

// sameData reports whether two events carry the same JSON value. With a
// codec both are decoded first; one that cannot be decoded (a forgotten
// subject) is taken as the same.
func (b *Bus) sameData(ctx context.Context, x, y *Event) bool {
	if b.cfg.codec != nil {
		dx, errx := decodeEvent(ctx, b.cfg.codec, x)
		dy, erry := decodeEvent(ctx, b.cfg.codec, y)
		if errx != nil || erry != nil {
			return true
		}
		x, y = dx, dy
	}
	if bytes.Equal(x.Data, y.Data) {
		return true
	}
	var vx, vy any
	if json.Unmarshal(x.Data, &vx) != nil || json.Unmarshal(y.Data, &vy) != nil {
		return false
	}
	return reflect.DeepEqual(vx, vy)
}

// reserveOne reserves room for an event named name in the subscriptions
// that take it and returns which of subs[:64] do.
func (b *Bus) reserveOne(ctx context.Context, subs []*Subscription, name string, deadline *time.Time) (uint64, error) {
	var match uint64
	for i, s := range subs {
		if !MatchName(s.pattern, name) {
			continue
		}
		if i < 64 {
			match |= 1 << i
		}
		if err := s.reserve(ctx, 1, deadline); err != nil {
			unreserveOne(subs[:i], name)
			return 0, err
		}
	}
	return match, nil
}

// unreserveOne gives back what reserveOne reserved.
func unreserveOne(subs []*Subscription, name string) {
	for _, s := range subs {
		if MatchName(s.pattern, name) {
			s.unreserve(1)
		}
	}
}

// PublishBatch publishes events atomically: all of them are stored or none.
// One invalid event rejects the batch with a *ValidationError whose Index
// says which. Results come in the order of events; an event already stored
// has Duplicate set and is not delivered again. An event whose ID is
// stored with other content (see Publish) makes it return the results with
// an error wrapping ErrConflict that names the event: the batch's new
// events are stored all the same. Otherwise it behaves like Publish.
func (b *Bus) PublishBatch(ctx context.Context, events []*Event, opts ...PublishOption) ([]AppendResult, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if len(events) == 0 {
		return nil, nil
	}
	pc := publishOptions(opts)
	hc := handlerFrom(ctx)
	freshIDs := hc == nil // every ID generated here: no duplicate to look for
	for i, e := range events {
		if e == nil {
			return nil, b.publishFailed(&ValidationError{Index: i, Reason: "nil event", Err: ErrInvalidEvent})
		}
		freshIDs = freshIDs && e.ID == ""
		if err := b.prepare(ctx, hc, e, i); err != nil {
			return nil, b.publishFailed(err)
		}
	}
	deadline := b.deadline(ctx)
	subs := *b.ephemerals.Load()
	var need []int // events each subscription takes, room reserved
	if len(subs) > 0 {
		need = make([]int, len(subs))
		for i, s := range subs {
			for _, e := range events {
				if MatchName(s.pattern, e.Name) {
					need[i]++
				}
			}
			if need[i] == 0 {
				continue
			}
			if err := s.reserve(ctx, need[i], &deadline); err != nil {
				unreserveBatch(subs[:i], need)
				return nil, b.publishFailed(err)
			}
		}
	}
	settled := false
	if len(subs) > 0 {
		defer func() {
			if !settled { // the store panicked
				unreserveBatch(subs, need)
			}
		}()
	}
	var res []AppendResult
	var err error
	for {
		res, err = b.appendBatch(ctx, events, pc.append, freshIDs, subs)
		if err == nil || !errors.Is(err, ErrBackpressure) || !b.waitRoom(ctx, deadline) {
			break
		}
	}
	settled = true
	if err != nil {
		unreserveBatch(subs, need)
		return nil, b.publishFailed(err)
	}
	var conflict error
	for i, e := range events {
		if res[i].Duplicate && conflict == nil {
			conflict = b.checkDuplicate(ctx, e, i)
		}
	}
	fresh := 0
	for i, e := range events {
		if res[i].Duplicate {
			for j, s := range subs {
				if need[j] > 0 && MatchName(s.pattern, e.Name) {
					s.unreserve(1)
				}
			}
			continue
		}
		fresh++
	}
	if b.metrics != nil {
		b.metrics.published.Add(float64(fresh))
	}
	if conflict != nil {
		return res, b.publishFailed(conflict)
	}
	return res, nil
}

// appendBatch appends events once and, when subs is not empty, under a
// fanout ticket that ends even when the store panics (see appendFanned),
// handing the new events to subs in log order.
func (b *Bus) appendBatch(ctx context.Context, events []*Event, opts AppendOptions, freshIDs bool, subs []*Subscription) (res []AppendResult, err error) {
	var t uint64
	ended := len(subs) == 0
	if !ended {
		t = b.fan.begin()
		defer func() {
			if !ended {
				b.fan.end(t, fanEntry{})
			}
		}()
	}
	if b.mem != nil && freshIDs {
		res = make([]AppendResult, len(events))
		err = b.mem.append(events, res, opts, true)
	} else {
		res, err = b.store.Append(ctx, events, opts)
		if err == nil && len(res) != len(events) {
			res, err = nil, fmt.Errorf("herald: store returned %d results for %d events", len(res), len(events))
		}
	}
	if ended {
		return res, err
	}
	var fe fanEntry
	if err == nil {
		for i := range res {
			if !res[i].Duplicate {
				fe = fanEntry{pos: res[i].Position, batch: events, res: res, subs: subs}
				break
			}
		}
	}
	ended = true
	b.fan.end(t, fe)
	return res, err
}

// unreserveBatch gives back the room PublishBatch reserved.
func unreserveBatch(subs []*Subscription, need []int) {
	for i, s := range subs {
		if need[i] > 0 {
			s.unreserve(need[i])
		}
	}
}

// publishOptions applies opts; without options it allocates nothing.
func publishOptions(opts []PublishOption) publishConfig {
	if len(opts) == 0 {
		return publishConfig{}
	}
	pc := new(publishConfig)
	for _, o := range opts {
		o(pc)
	}
	return *pc
}

func (b *Bus) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(b.cfg.publishTimeout)
}

// appendOne appends one event, waiting for room while the store pushes
// back. When subs is not empty it hands the event to those of them that
// take it (match, see reserveOne), in log order.
func (b *Bus) appendOne(ctx context.Context, e *Event, opts AppendOptions, deadline *time.Time, freshID bool, subs []*Subscription, match uint64) (AppendResult, error) {
	for {
		var res AppendResult
		var err error
		if len(subs) > 0 {
			res, err = b.appendFanned(ctx, e, opts, freshID, subs, match)
		} else {
			res, err = b.storeAppendOne(ctx, e, opts, freshID)
		}
		if err == nil || !errors.Is(err, ErrBackpressure) {
			return res, err
		}
		if deadline.IsZero() {
			*deadline = b.deadline(ctx)
		}
		if !b.waitRoom(ctx, *deadline) {
			return res, err
		}
	}
}

// appendFanned appends e once under a fanout ticket and hands it to the
// ephemeral subscriptions subs in log order. The ticket ends even when the
// store panics, so that a caller that recovers (net/http does) leaves the
// hand-off of later events going.
func (b *Bus) appendFanned(ctx context.Context, e *Event, opts AppendOptions, freshID bool, subs []*Subscription, match uint64) (res AppendResult, err error) {
	t := b.fan.begin()
	ended := false
	defer func() {
		if !ended {
			b.fan.end(t, fanEntry{})
		}
	}()
	res, err = b.storeAppendOne(ctx, e, opts, freshID)
	var fe fanEntry
	if err == nil && !res.Duplicate {
		fe = fanEntry{pos: res.Position, one: e, subs: subs, match: match}
	}
	ended = true
	b.fan.end(t, fe)
	return res, err
}

// storeAppendOne appends one event to the store.
func (b *Bus) storeAppendOne(ctx context.Context, e *Event, opts AppendOptions, freshID bool) (AppendResult, error) {
	if b.mem != nil {
		return b.mem.appendOne(e, opts, freshID)
	}
	rs, err := b.store.Append(ctx, []*Event{e}, opts)
	if err == nil && len(rs) != 1 {
		err = fmt.Errorf("herald: store returned %d results for one event", len(rs))
	}
	if err != nil {
		return AppendResult{}, err
	}
	return rs[0], nil
}

// waitRoom waits until a subscription of this bus committed progress (the
// store may then have room), 10 ms, or the deadline. It reports false at
// the deadline or when ctx ends.
func (b *Bus) waitRoom(ctx context.Context, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 || ctx.Err() != nil || b.closed.Load() {
		return false
	}
	b.mu.Lock()
	ch := b.roomCh
	b.roomUsed = true
	b.mu.Unlock()
	t := time.NewTimer(min(d, 10*time.Millisecond))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// signalRoom wakes publishers waiting for the store to make room.
func (b *Bus) signalRoom() {
	b.mu.Lock()
	if b.roomUsed {
		close(b.roomCh)
		b.roomCh = make(chan struct{})
		b.roomUsed = false
	}
	b.mu.Unlock()
}

func (b *Bus) publishFailed(err error) error {
	if b.metrics != nil {
		reason := "error"
		switch {
		case errors.Is(err, ErrBackpressure):
			reason = "backpressure"
			b.metrics.backpressure.Inc()
		case errors.Is(err, ErrConflict):
			reason = "conflict"
		case errors.Is(err, ErrTooLarge):
			reason = "too_large"
		case errors.Is(err, ErrSchemaViolation):
			reason = "schema_violation"
		case errors.Is(err, ErrInvalidEvent):
			reason = "invalid"
		case errors.Is(err, ErrClosed):
			reason = "closed"
		}
		b.metrics.publishErrors.WithLabelValues(reason).Inc()
	}
	return err
}

// prepare fills e's defaults and validates it; index is its place in a batch.
func (b *Bus) prepare(ctx context.Context, hc *handlerCtx, e *Event, index int) error {
	if hc != nil {
		if generated(e) {
			// NewEvent generated it; a response event gets the bus's.
			e.ID = ""
		}
		if e.ID == "" {
			e.ID = ChildID(hc.ev.ID, hc.sub, int(hc.children.Add(1)-1))
		}
		if e.CorrelationID == "" {
			e.CorrelationID = hc.ev.CorrelationID
		}
		if e.CausationID == "" {
			e.CausationID = hc.ev.ID
		}
	}
	if e.SourcePlugin == "" {
		e.SourcePlugin = b.cfg.source
	}
	now := time.Now()
	if e.ID == "" {
		e.ID = newIDAt(now) // one clock reading for the id and the timestamp
	}
	fillDefaults(e, now)
	e.Position = 0
	if err := e.Validate(); err != nil {
		return atIndex(err, index)
	}
	if n := encodedSizeBound(e, b.cfg.maxEventSize); n > b.cfg.maxEventSize {
		// The bound can overestimate strings that need escaping: measure.
		if raw, err := json.Marshal(e); err != nil || len(raw) > b.cfg.maxEventSize {
			return &ValidationError{Index: index, Reason: fmt.Sprintf("encoded event is larger than %d bytes", b.cfg.maxEventSize), Err: ErrTooLarge}
		}
	}
	if err := b.cfg.schemas.Validate(e); err != nil {
		return atIndex(err, index)
	}
	for _, v := range b.cfg.validators {
		if err := v.Validate(ctx, e); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				c := *ve
				c.Index = index
				return &c
			}
			return &ValidationError{Index: index, Reason: err.Error(), Err: ErrInvalidEvent}
		}
	}
	if err := b.encode(ctx, e); err != nil {
		return atIndex(err, index)
	}
	return nil
}

func atIndex(err error, index int) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		c := *ve
		c.Index = index
		return &c
	}
	return err
}

// encodedSizeBound returns an upper bound of the size of e's JSON form
// without encoding it: a quick one when that is within limit, else a
// tighter one.
func encodedSizeBound(e *Event, limit int) int {
	n := 256 + len(e.Data) // field names, punctuation, timestamp, numbers
	// Every string byte takes at most 6 bytes once escaped: when even that
	// fits, there is no need to look at the strings.
	strs := len(e.ID) + len(e.Name) + len(e.CorrelationID) + len(e.CausationID) + len(e.SourcePlugin) + len(e.Subject)
	if loose := n + 6*strs + 12; len(e.Metadata) == 0 && loose <= limit {
		return loose
	}
	n += jsonStringBound(e.ID) + jsonStringBound(e.Name) + jsonStringBound(e.CorrelationID) +
		jsonStringBound(e.CausationID) + jsonStringBound(e.SourcePlugin) + jsonStringBound(e.Subject)
	for k, v := range e.Metadata {
		n += jsonStringBound(k) + jsonStringBound(v) + 2
	}
	return n
}

func jsonStringBound(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '<', c == '>', c == '&':
			n += 5
		case c == '"', c == '\\':
			n++
		case c >= 0x80:
			n += 5 // invalid UTF-8 becomes \ufffd
		}
	}
	return n
}

// readAheadBound is how many bytes of events one durable subscription may
// hold (WithReadAhead): its own bound, or its share of the total.
func (b *Bus) readAheadBound() int64 {
	n := max(1, b.durableRunning.Load())
	return min(int64(b.cfg.readAhead), int64(b.cfg.readAheadTotal)/n)
}

// readAheadFree is how many bytes the durable subscriptions may still
// read ahead together.
func (b *Bus) readAheadFree() int64 {
	return int64(b.cfg.readAheadTotal) - b.readAheadHeld.Load()
}

// reserveReadAhead takes up to want bytes of the total for a reader about
// to read, and returns how many it took; the reader gives them back
// (releaseReadAhead) once what it read is queued, and so counted.
func (b *Bus) reserveReadAhead(want int64) int64 {
	for {
		cur := b.readAheadHeld.Load()
		g := min(want, int64(b.cfg.readAheadTotal)-cur)
		if g <= 0 {
			return 0
		}
		if b.readAheadHeld.CompareAndSwap(cur, cur+g) {
			return g
		}
	}
}

func (b *Bus) releaseReadAhead(n int64) {
	if n > 0 {
		b.readAheadHeld.Add(-n)
	}
}

// Subscribe calls h for every event whose name matches pattern ("a.b",
// "a.*", "a.>", ">"), on goroutines of the subscription, as the options
// say (Durable, Concurrency, Timeout, MaxAttempts, Backoff, StartAt,
// BufferSize, DropOldest). ctx bounds the setup only; the subscription runs
// until Close, Bus.Unsubscribe or Bus.Close.
//
// Delivery: events of one Subject are handled one at a time in log order
// (retries included, except on a SharedStore); other events run
// concurrently up to Concurrency. Among queued events the higher Priority
// is taken first, strictly: while higher-priority events keep coming,
// lower ones wait. A worker whose handler is fast (under 100 µs per event)
// takes up to 64 queued events at a time, so a more urgent event that
// arrives meanwhile waits behind those. Durable subscriptions record an
// outcome per event and keep dead letters in the store; ephemeral ones do
// not (see Durable).
//
// A durable name may run only once per bus at a time: a second Subscribe
// with the same name returns an error wrapping ErrConflict that says the
// name is already running. An invalid
// pattern or option returns an error and starts nothing; a store error
// while reading the durable checkpoint is returned wrapped. After Close it
// returns ErrClosed.
func (b *Bus) Subscribe(ctx context.Context, pattern string, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("herald: nil handler")
	}
	return b.subscribe(ctx, pattern, h, nil, opts)
}

// SubscribeBatch is Subscribe for a handler that takes up to BatchSize
// events (default 100) per call. Its results are per event: each failed
// event is retried or dead-lettered on its own. The batch handler's context
// carries no single event (FromContext reports false), so events it
// publishes are not response events: they get fresh IDs on every attempt
// and no inherited correlation; give them IDs of your own (for instance
// ChildID) when a retried batch must not publish twice.
func (b *Bus) SubscribeBatch(ctx context.Context, pattern string, h BatchHandler, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("herald: nil batch handler")
	}
	return b.subscribe(ctx, pattern, nil, h, opts)
}

func (b *Bus) subscribe(ctx context.Context, pattern string, h Handler, bh BatchHandler, opts []SubscribeOption) (*Subscription, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	cfg := defaultSubConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Subscription{
		bus: b, pattern: pattern, durable: cfg.durable != "", cfg: cfg,
		run:    runner{h: h, bh: bh, workers: make(map[*worker]struct{}), workersGone: make(chan struct{})},
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	var total *atomic.Int64
	if s.durable {
		total = &b.readAheadHeld
	}
	s.q.init(&s.mu, cfg.concurrency == 1, total)
	s.src.init(&s.mu)
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())

	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		s.cancelContexts()
		return nil, ErrClosed
	}
	if s.durable {
		s.name = cfg.durable
		if _, dup := b.durables[s.name]; dup {
			b.mu.Unlock()
			s.cancelContexts()
			return nil, &nameTakenError{name: s.name}
		}
		b.durables[s.name] = s // claimed; removed again on failure
	} else {
		b.nextEph++
		s.name = "ephemeral-" + strconv.Itoa(b.nextEph)
	}
	b.mu.Unlock()
	s.log = b.logger
	s.m = b.metrics.forSub(s.name)

	if s.durable {
		if err := s.setupDurable(ctx); err != nil {
			b.metrics.forget(s.name)
			b.mu.Lock()
			delete(b.durables, s.name)
			b.mu.Unlock()
			s.cancelContexts()
			return nil, err
		}
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.metrics.forget(s.name)
		delete(b.durables, s.name)
		b.mu.Unlock()
		s.cancelContexts()
		s.src.closeConsumer()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	if s.durable {
		b.durableRunning.Add(1)
	} else {
		old := *b.ephemerals.Load()
		next := append(slices.Clip(old), s)
		b.ephemerals.Store(&next)
	}
	s.start()
	b.mu.Unlock()
	return s, nil
}

// nameTakenError is Subscribe's error for a durable name that already runs
// in the bus. It wraps ErrConflict.
type nameTakenError struct{ name string }

func (e *nameTakenError) Error() string {
	return "herald: durable subscription " + e.name + " is already running in this bus"
}

func (e *nameTakenError) Unwrap() error { return ErrConflict }

func (s *Subscription) cancelContexts() {
	s.baseCancel()
	s.src.readCancel()
}

// Unsubscribe stops s as Subscription.Close does. It returns an error
// wrapping ErrNotFound when s belongs to another bus.
func (b *Bus) Unsubscribe(ctx context.Context, s *Subscription) error {
	if s == nil || s.bus != b {
		return fmt.Errorf("herald: subscription of another bus: %w", ErrNotFound)
	}
	return s.Close(ctx)
}

func (b *Bus) removeSub(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok && s.durable {
		b.durableRunning.Add(-1)
	}
	delete(b.subs, s)
	if b.durables[s.name] == s {
		delete(b.durables, s.name)
	}
	if !s.durable {
		old := *b.ephemerals.Load()
		next := slices.DeleteFunc(slices.Clone(old), func(x *Subscription) bool { return x == s })
		b.ephemerals.Store(&next)
	}
}

func (b *Bus) subscriptionList() []*Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *Subscription) int {
		switch {
		case x.name < y.name:
			return -1
		case x.name > y.name:
			return 1
		}
		return 0
	})
	return out
}

// Subscriptions describes the bus's running subscriptions, by name. It is
// empty after Close.
func (b *Bus) Subscriptions() []SubscriptionInfo {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	head, _ := b.store.Head(ctx)
	subs := b.subscriptionList()
	out := make([]SubscriptionInfo, len(subs))
	for i, s := range subs {
		out[i] = SubscriptionInfo{Name: s.name, Pattern: s.pattern, Durable: s.durable, Stats: s.stats(head)}
	}
	return out
}

// Close stops the bus: new calls return ErrClosed at once, every
// subscription stops as Subscription.Close says (handlers in progress may
// finish until ctx ends, durable progress is committed), and the memory
// store the bus made itself is closed. It returns ctx's error when handlers
// were still running at its end. Calling it again, or concurrently, returns
// nil at once without waiting for the first call. Like Subscription.Close,
// it must not be called from a handler with a context that does not end.
func (b *Bus) Close(ctx context.Context) error {
	if b.closed.Swap(true) {
		return nil
	}
	if b.stopRetention != nil {
		b.stopRetention()
		<-b.retentionDone
	}
	b.signalRoom()
	subs := b.subscriptionList()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.Close(ctx) })
	}
	wg.Wait()
	if b.ownsStore {
		errs = append(errs, b.store.Close())
	}
	return errors.Join(errs...)
}

// DeadLetters lists the dead letters matching q, oldest first, their
// events decoded with the bus's codec (an event that does not decode, as
// when that is why it was dead-lettered, is listed as stored). Only
// durable subscriptions have dead letters. It first commits what the matching durable subscriptions
// running in this bus have pending, so an entry whose redrive has
// succeeded here is not listed. After Close it returns ErrClosed.
func (b *Bus) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := b.flushRunning(ctx, q.Subscription); err != nil {
		return nil, err
	}
	dls, err := b.store.DeadLetters(ctx, q)
	if err != nil {
		return nil, err
	}
	b.decodeDeadLetters(ctx, dls)
	return dls, nil
}

// DeadLetterCounts counts the dead letters waiting, by subscription (a
// subscription with none is absent), as DeadLetters would list them: it
// first commits what the durable subscriptions running in this bus have
// pending, so an entry whose redrive has succeeded is not counted. Safe
// for concurrent use; after Close it returns ErrClosed.
func (b *Bus) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := b.flushRunning(ctx, ""); err != nil {
		return nil, err
	}
	return b.deadLetterCounts(ctx)
}

// deadLetterCounts counts the stored dead letters by subscription, without
// committing first.
func (b *Bus) deadLetterCounts(ctx context.Context) (map[string]int, error) {
	return b.store.DeadLetterCounts(ctx)
}

// Redrive marks the dead letters matching q for redrive and returns how
// many it marked. The durable subscription owning each entry delivers its
// event again (with fresh attempts) and removes the entry when it succeeds;
// when it fails again, the entry comes back with the longer error history.
// Entries of a subscription that is not running are redriven when it runs
// again; a subscription running in another process sharing the store finds
// them within 10 s. After Close it returns ErrClosed.
func (b *Bus) Redrive(ctx context.Context, q DeadLetterQuery) (int, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	n, err := b.store.RedriveDeadLetters(ctx, q)
	if err != nil || n == 0 {
		return n, err
	}
	for _, s := range b.subscriptionList() {
		if s.durable && (q.Subscription == "" || q.Subscription == s.name) {
			s.wakeForRedrive()
		}
	}
	return n, nil
}

// Discard removes the dead letters matching q, records their outcome as
// discarded, and returns how many it removed. The outcome is recorded
// through the owning subscription when it runs here (waiting, until ctx
// ends, for one that is starting or closing), else directly in the store
// when the subscription has a checkpoint. A redrive under way in this bus
// when its entry is discarded ends at its next failure, without a new
// dead letter. After Close it returns ErrClosed.
func (b *Bus) Discard(ctx context.Context, q DeadLetterQuery) (int, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	dls, err := b.store.DeadLetters(ctx, q)
	if err != nil {
		return 0, err
	}
	n, err := b.store.DeleteDeadLetters(ctx, q)
	if err != nil {
		return n, err
	}
	now := time.Now().UTC()
	bySub := map[string][]Outcome{}
	for _, d := range dls {
		last := lastAttempt(d.Errors)
		bySub[d.Subscription] = append(bySub[d.Subscription], Outcome{
			Subscription: d.Subscription, EventID: d.Event.ID, EventName: d.Event.Name,
			Position: d.Event.Position, CorrelationID: d.Event.CorrelationID,
			Status: OutcomeDiscarded, Attempts: d.Attempts(), LastError: last.Error, UpdatedAt: now,
			Duration: last.Duration, History: OutcomeHistory(d.Errors),
		})
	}
	for sub, outs := range bySub {
		s, err := b.lockRunningDurable(ctx, sub)
		if err != nil {
			return n, err
		}
		if s != nil {
			s.c.discardLocked(outs)
			s.mu.Unlock()
			if err := s.c.flush(ctx); err != nil {
				return n, err
			}
			continue
		}
		cp, ok, err := b.store.Checkpoint(ctx, sub)
		if err != nil {
			return n, err
		}
		if ok {
			if err := b.store.Commit(ctx, sub, Progress{Checkpoint: cp, Outcomes: outs}); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// lockRunningDurable returns the durable subscription name running in this
// bus with its lock held, or nil when none runs. One that is still reading
// its checkpoint or is closing (its last commit would undo what the caller
// commits) is waited for, until ctx ends.
func (b *Bus) lockRunningDurable(ctx context.Context, name string) (*Subscription, error) {
	for {
		b.mu.Lock()
		s := b.durables[name]
		_, started := b.subs[s]
		b.mu.Unlock()
		if s == nil {
			return nil, nil
		}
		var tick <-chan time.Time
		wait := s.done
		if started {
			s.mu.Lock()
			if !s.stopping {
				return s, nil
			}
			s.mu.Unlock()
		} else {
			wait, tick = nil, time.After(time.Millisecond)
		}
		select {
		case <-wait:
		case <-tick:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lastAttempt is the last of errs, or the zero AttemptError.
func lastAttempt(errs []AttemptError) AttemptError {
	if len(errs) == 0 {
		return AttemptError{}
	}
	return errs[len(errs)-1]
}

// Outcomes returns the outcomes matching q (set at least one field), as
// Store.Outcomes orders them. Only durable subscriptions record outcomes.
// After Close it returns ErrClosed.
func (b *Bus) Outcomes(ctx context.Context, q OutcomeQuery) ([]Outcome, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.store.Outcomes(ctx, q)
}

// maxTraceEvents bounds a Trace.
const maxTraceEvents = 10000

// Trace returns the events of correlationID in log order (at most 10,000),
// decoded with the bus's codec, each with the outcomes recorded for it (by
// durable subscriptions). It
// returns ErrNotFound when the store holds no event of that correlation,
// and ErrClosed after Close.
func (b *Bus) Trace(ctx context.Context, correlationID string) (*Trace, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if correlationID == "" {
		return nil, fmt.Errorf("%w: empty correlation id", ErrNotFound)
	}
	t := &Trace{CorrelationID: correlationID}
	idx := map[string]int{}
	for e, err := range b.Read(ctx, 0, Filter{CorrelationID: correlationID, Limit: maxTraceEvents}) {
		if err != nil {
			return nil, err
		}
		idx[e.ID] = len(t.Events)
		t.Events = append(t.Events, TraceEvent{Event: e})
	}
	if len(t.Events) == 0 {
		return nil, fmt.Errorf("%w: correlation %q", ErrNotFound, correlationID)
	}
	outs, err := b.store.Outcomes(ctx, OutcomeQuery{CorrelationID: correlationID, Limit: 100 * maxTraceEvents})
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		if i, ok := idx[o.EventID]; ok {
			t.Events[i].Outcomes = append(t.Events[i].Outcomes, o)
		}
	}
	return t, nil
}

// Reset moves the durable subscription durableName to start (replay when
// it moves back), whether it is running in this bus or not. A running
// subscription drops what it had queued, lets handler calls in progress
// finish without counting them toward the new checkpoint (events of their
// subjects wait for them, so subject order holds), and continues from the
// new position. Redrives it had queued are loaded again. It returns the
// new checkpoint: the subscription delivers again every event after that
// position. It returns ErrNotFound for a name that is not
// running here and has no checkpoint; a shared store (SharedStore) does not
// support it. A subscription of that name that is closing is waited for
// (until ctx ends), so that its last commit does not undo the reset. Reset
// is safe to call concurrently with everything else, but concurrent resets
// of one subscription end in an unspecified one of their positions.
func (b *Bus) Reset(ctx context.Context, durableName string, to Start) (uint64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	if _, shared := b.store.(SharedStore); shared {
		return 0, errors.New("herald: reset is not supported by a shared store")
	}
	cp, err := to.resolve(ctx, b.store)
	if err != nil {
		return 0, err
	}
	var s *Subscription
	for {
		if s, err = b.lockRunningDurable(ctx, durableName); err != nil {
			return 0, err
		}
		if s != nil {
			break // s.mu held
		}
		if _, ok, err := b.store.Checkpoint(ctx, durableName); err != nil {
			return 0, err
		} else if !ok {
			return 0, fmt.Errorf("%w: durable subscription %q", ErrNotFound, durableName)
		}
		if err := b.store.Commit(ctx, durableName, Progress{Checkpoint: cp}); err != nil {
			return 0, err
		}
		// A Subscribe of that name may have read the checkpoint before
		// this commit: reset it too.
		b.mu.Lock()
		_, again := b.durables[durableName]
		b.mu.Unlock()
		if !again {
			return cp, nil
		}
	}
	s.resetLocked(cp)
	s.mu.Unlock()
	return cp, s.c.flush(ctx)
}

// resetLocked moves a running durable subscription to cp (Bus.Reset): it
// drops what it queued (queued redrives are loaded again), its committer
// forgets what it tracked and commits cp next, and its reader reads on
// from cp.
func (s *Subscription) resetLocked(cp uint64) {
	s.dropQueuedLocked(true)
	s.c.resetLocked(cp)
	s.src.rewindLocked()
	s.roomLocked()
	s.src.wakeLocked()
}
