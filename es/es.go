// Package es builds event-sourced aggregates on a herald Bus.
//
// An event's subject is the aggregate's stream, and a subject's version is
// the number of events stored for it. A Repository rebuilds an aggregate's
// state by folding its events with an ApplyFunc, appends new events only
// at the version the caller saw (optimistic concurrency: herald.ErrConflict
// otherwise), keeps a snapshot every N events in the store's
// herald.SnapshotBucket so a rebuild reads only the events after it,
// upgrades old event versions on read with Upcasters, and keeps hot
// aggregates in a bounded cache whose concurrent loads of one subject share
// a single read (as PanottiServer's event-system architecture's
// EventCache.get_or_create does).
//
// A Repository reads and writes only through its Bus: events are saved
// with PublishBatch (validated, encoded by the bus's codec, delivered to
// subscriptions), read decoded, and snapshots kept in the bus's KV, sealed
// when the bus's codec is a Sealer. Forgetting a subject through the bus
// (Bus.Forget) drops it from every repository's cache.
package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/heraldhq/herald"
)

// ApplyFunc folds one event into an aggregate's state and returns the new
// state. It is called in log order, with events already upcast to their
// current version. An error stops the rebuild and is returned by Load.
//
// When the Repository caches states (the default), states are shared
// between callers: ApplyFunc must not modify the state it is given in place
// when S holds maps, slices or pointers, but return a modified copy.
type ApplyFunc[S any] func(state S, e *herald.Event) (S, error)

// Sealer encrypts snapshots at rest. When the bus's codec is also a Sealer
// (the sensitive package's Codec is), the repository seals each snapshot's
// state with it, so that a snapshot keeps sensitive data no more readable
// than the events it was folded from.
//
// Open returns an error wrapping herald.ErrNotFound when the key is gone
// for good (the subject was forgotten): the repository then starts from
// the zero state at the snapshot's version and position, since retention
// may have deleted the events before it, and folds the events after it.
// On any other error it ignores the snapshot and folds every event.
type Sealer interface {
	Seal(ctx context.Context, subject string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, subject string, sealed []byte) ([]byte, error)
}

// Defaults of a Repository.
const (
	// DefaultSnapshotEvery is how many events a subject gains between two
	// snapshots unless WithSnapshotEvery says otherwise.
	DefaultSnapshotEvery = 100
	// DefaultCacheSize is how many aggregates the cache keeps unless
	// WithCacheSize says otherwise.
	DefaultCacheSize = 1024
	// DefaultUpdateAttempts is how many times Update tries on a conflict
	// unless UpdateAttempts says otherwise.
	DefaultUpdateAttempts = 3
)

// Option configures a Repository.
type Option func(*config)

type config struct {
	snapshotEvery  int
	snapshotSchema int
	cacheSize      int
	updateAttempts int
	upcasters      *Upcasters
	upgrade        func(schema int, state []byte) ([]byte, error)
	logger         *slog.Logger
}

// WithSnapshotEvery sets how many events a subject gains between two
// snapshots (default DefaultSnapshotEvery); n <= 0 turns snapshots off.
func WithSnapshotEvery(n int) Option { return func(c *config) { c.snapshotEvery = n } }

// WithSnapshotSchema sets the version of the state's JSON form (default 0).
// A snapshot written under another version is upgraded with the function
// given with UpgradeSnapshot, when there is one; otherwise it is ignored
// and the state rebuilt from the subject's events. When retention has
// deleted events the ignored snapshot held, the state cannot be rebuilt:
// Load returns an error wrapping ErrIncomplete rather than a state that
// misses them (see UpgradeSnapshot).
func WithSnapshotSchema(v int) Option { return func(c *config) { c.snapshotSchema = v } }

// WithSnapshotUpgrade sets the function that turns the state of a snapshot
// written under an older SnapshotSchema (its JSON form, opened when it was
// sealed) into the JSON form of the current schema. Without it (the
// default), such snapshots are ignored, which needs every event of the
// subject still stored.
func WithSnapshotUpgrade(f func(schema int, state []byte) ([]byte, error)) Option {
	return func(c *config) { c.upgrade = f }
}

// ErrIncomplete is wrapped by Load's error when a subject's state cannot be
// rebuilt: retention deleted some of its events and no usable snapshot
// holds them. Loading it again fails the same way; give UpgradeSnapshot
// when a SnapshotSchema change caused it.
var ErrIncomplete = errors.New("es: the subject's history is incomplete")

// WithCacheSize sets how many aggregates the read-through cache keeps, least
// recently used evicted first (default DefaultCacheSize); n <= 0 turns the
// cache off, and every Load reads the store.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithUpdateAttempts sets how many times Update decides and saves when saves
// conflict (default DefaultUpdateAttempts).
func WithUpdateAttempts(n int) Option { return func(c *config) { c.updateAttempts = n } }

// WithUpcasters sets the upcasters applied to every event read (default
// none).
func WithUpcasters(u *Upcasters) Option { return func(c *config) { c.upcasters = u } }

// WithLogger sets the logger for failures that do not fail a call, such as
// a snapshot that could not be written (default: discard). Event data is
// never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Stats counts what a Repository did since it was made.
type Stats struct {
	// Loads counts Load calls, CacheHits those served from the cache and
	// StoreLoads the rebuilds that read the store (concurrent misses of
	// one subject share one rebuild).
	Loads, CacheHits, StoreLoads uint64
	// EventsRead counts events folded while rebuilding from the store.
	EventsRead uint64
	// SnapshotsRead and SnapshotsWritten count snapshots used and saved.
	SnapshotsRead, SnapshotsWritten uint64
	// Conflicts counts saves refused with herald.ErrConflict.
	Conflicts uint64
	// Cached is how many aggregates the cache holds now.
	Cached int
}

// Repository loads and saves the aggregates of one kind, whose state is S.
// It is safe for concurrent use. It does not own the bus: a Repository
// whose bus is closed returns herald.ErrClosed. Close unregisters it from
// the bus.
//
// The cache is exact as long as every write to the repository's subjects,
// and every Forget of them, goes through this Repository and its Bus. A subject written elsewhere is seen on the
// next Load after its cached entry is evicted or after a Save of it fails
// with herald.ErrConflict (which drops the entry), so a decide-and-save
// loop such as Update always converges.
type Repository[S any] struct {
	bus    *herald.Bus
	sealer Sealer // the bus's codec, when it seals
	apply  ApplyFunc[S]
	remove func() // unregisters the forget hook
	cfg    config
	cache  *lru[S]
	flight flight[entry[S]]

	loads, hits, storeLoads, eventsRead atomic.Uint64
	snapsRead, snapsWritten, conflicts  atomic.Uint64
}

// NewRepository returns a Repository of aggregates whose events bus
// stores, rebuilt with apply. It registers with bus (Bus.OnForget) so that
// a subject forgotten through bus leaves its cache (a forget in another
// process does not reach it: see the Repository's cache rules). It returns an error when bus or
// apply is nil.
func NewRepository[S any](bus *herald.Bus, apply ApplyFunc[S], opts ...Option) (*Repository[S], error) {
	if bus == nil {
		return nil, errors.New("es: NewRepository: nil bus")
	}
	if apply == nil {
		return nil, errors.New("es: NewRepository: nil apply function")
	}
	cfg := config{
		snapshotEvery:  DefaultSnapshotEvery,
		cacheSize:      DefaultCacheSize,
		updateAttempts: DefaultUpdateAttempts,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.updateAttempts < 1 {
		cfg.updateAttempts = 1
	}
	r := &Repository[S]{bus: bus, apply: apply, cfg: cfg}
	r.sealer, _ = bus.Codec().(Sealer)
	if cfg.cacheSize > 0 {
		r.cache = newLRU[S](cfg.cacheSize)
		// The hook holds the cache weakly, and is removed when the
		// repository is collected, so a repository never closed does not
		// live as long as the bus.
		cache := weak.Make(r.cache)
		r.remove = sync.OnceFunc(bus.OnForget(func(subject string) {
			if c := cache.Value(); c != nil {
				c.remove(subject)
			}
		}))
		runtime.AddCleanup(r, func(remove func()) { remove() }, r.remove)
	} else {
		r.remove = func() {}
	}
	return r, nil
}

// Close unregisters the repository from its bus (a repository that is
// garbage collected is unregistered too). It is safe to call more than
// once; the repository keeps working, but a subject forgotten after Close
// may stay in its cache.
func (r *Repository[S]) Close() { r.remove() }

// Load returns subject's current state and version (0 and the zero S for
// a subject without events). It serves the state from the cache when it
// holds it; otherwise it starts from the subject's snapshot, when there is
// one, and folds only the events after it. Concurrent Loads of a subject
// not in the cache share one rebuild. Errors from the store, the decoder,
// an upcaster or apply are returned wrapped.
func (r *Repository[S]) Load(ctx context.Context, subject string) (S, uint64, error) {
	e, err := r.load(ctx, subject)
	return e.state, e.version, err
}

func (r *Repository[S]) load(ctx context.Context, subject string) (entry[S], error) {
	r.loads.Add(1)
	if subject == "" {
		return entry[S]{}, errors.New("es: Load: empty subject")
	}
	if r.cache == nil {
		return r.rebuild(ctx, subject)
	}
	if e, ok := r.cache.get(subject); ok {
		r.hits.Add(1)
		return e, nil
	}
	for {
		epoch := r.cache.currentEpoch()
		e, shared, err := r.flight.do(ctx, subject, func() (entry[S], error) {
			e, err := r.rebuild(ctx, subject)
			if err == nil {
				r.cache.put(subject, e, epoch)
			}
			return e, err
		})
		// A shared rebuild that ended with the leader's context is retried
		// while our own context is alive.
		if shared && err != nil && ctx.Err() == nil &&
			(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return e, err
	}
}

// snapshot is the JSON form of a snapshot in herald.SnapshotBucket.
type snapshot struct {
	// Position is the position of the last event folded into State;
	// retention keeps every event of the subject after it.
	Position uint64 `json:"position"`
	// Version is the subject's version at Position.
	Version uint64 `json:"version"`
	// Schema is the version of State's JSON form (SnapshotSchema).
	Schema int `json:"schema,omitempty"`
	// State is the state's JSON form, or Sealed that form sealed by the
	// repository's Sealer.
	State  json.RawMessage `json:"state,omitempty"`
	Sealed []byte          `json:"sealed,omitempty"`
	At     time.Time       `json:"at"`
}

// rebuild folds subject's events from its snapshot on, and writes a new
// snapshot when WithSnapshotEvery events or more were folded. It fails with
// ErrIncomplete when it ends below the subject's version as it stood
// before the read: events it needed are gone.
func (r *Repository[S]) rebuild(ctx context.Context, subject string) (entry[S], error) {
	r.storeLoads.Add(1)
	want, err := r.bus.SubjectVersion(ctx, subject)
	if err != nil {
		return entry[S]{}, fmt.Errorf("es: load %s: %w", subject, err)
	}
	var e entry[S]
	snapSchema, snapIgnored := 0, false
	if r.cfg.snapshotEvery > 0 {
		if s, schema, ok := r.readSnapshot(ctx, subject); ok {
			e = s
		} else if schema >= 0 {
			snapSchema, snapIgnored = schema, true
		}
	}
	for ev, err := range r.bus.Read(ctx, e.position, herald.Filter{Subject: subject}) {
		if err != nil {
			return entry[S]{}, fmt.Errorf("es: load %s: %w", subject, err)
		}
		r.eventsRead.Add(1)
		if err := r.fold(ctx, &e, ev, false); err != nil {
			return entry[S]{}, err
		}
	}
	if e.version < want {
		why := "no snapshot holds them"
		if snapIgnored {
			why = fmt.Sprintf("its snapshot is of schema %d, not %d (give UpgradeSnapshot)", snapSchema, r.cfg.snapshotSchema)
		}
		return entry[S]{}, fmt.Errorf("%w: %s is at version %d but only %d of its events can be folded: retention deleted the others and %s",
			ErrIncomplete, subject, want, e.version, why)
	}
	r.maybeSnapshot(ctx, subject, &e)
	return e, nil
}

// fold applies one event to e, decoding it first when it is as stored.
func (r *Repository[S]) fold(ctx context.Context, e *entry[S], ev *herald.Event, decode bool) error {
	pos := ev.Position
	if decode {
		d, err := r.bus.Decode(ctx, ev)
		if err != nil {
			return fmt.Errorf("es: decode event %s of %s: %w", ev.ID, ev.Subject, err)
		}
		ev = d
	}
	ev, err := r.cfg.upcasters.Upcast(ev)
	if err != nil {
		return err
	}
	s, err := r.apply(e.state, ev)
	if err != nil {
		return fmt.Errorf("es: apply event %s (%s) of %s at position %d: %w", ev.ID, ev.Name, ev.Subject, pos, err)
	}
	e.state = s
	e.version++
	e.position = pos
	return nil
}

// readSnapshot returns subject's snapshot as an entry. When there is a
// snapshot it cannot use because of its schema, it also returns that
// schema (else -1).
func (r *Repository[S]) readSnapshot(ctx context.Context, subject string) (entry[S], int, bool) {
	b, err := r.bus.KV().GetValue(ctx, herald.SnapshotBucket, subject)
	if err != nil {
		// A subject no KV key can name (herald.ValidateKVName) has none.
		if !errors.Is(err, herald.ErrNotFound) && !errors.Is(err, herald.ErrInvalidEvent) {
			r.cfg.logger.WarnContext(ctx, "es: snapshot not readable, rebuilding from events", "subject", subject, "error", err)
		}
		return entry[S]{}, -1, false
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return entry[S]{}, -1, false
	}
	if s.Schema != r.cfg.snapshotSchema && r.cfg.upgrade == nil {
		return entry[S]{}, s.Schema, false
	}
	state := []byte(s.State)
	if r.sealer != nil && s.Sealed != nil {
		if state, err = r.sealer.Open(ctx, subject, s.Sealed); errors.Is(err, herald.ErrNotFound) {
			// Forgotten: the state is gone for good, but the events up to
			// the snapshot may be too, so keep its version and position.
			r.snapsRead.Add(1)
			return entry[S]{version: s.Version, position: s.Position, snapVersion: s.Version}, -1, true
		} else if err != nil {
			r.cfg.logger.WarnContext(ctx, "es: snapshot does not open, rebuilding from events", "subject", subject, "error", err)
			return entry[S]{}, -1, false
		}
	}
	if s.Schema != r.cfg.snapshotSchema {
		if state, err = r.cfg.upgrade(s.Schema, state); err != nil {
			r.cfg.logger.WarnContext(ctx, "es: snapshot does not upgrade, rebuilding from events", "subject", subject, "schema", s.Schema, "error", err)
			return entry[S]{}, s.Schema, false
		}
	}
	var e entry[S]
	if err := json.Unmarshal(state, &e.state); err != nil {
		r.cfg.logger.WarnContext(ctx, "es: snapshot state does not decode, rebuilding from events", "subject", subject, "error", err)
		return entry[S]{}, -1, false
	}
	e.version, e.position, e.snapVersion = s.Version, s.Position, s.Version
	r.snapsRead.Add(1)
	return e, -1, true
}

// maybeSnapshot writes e as subject's snapshot when it is WithSnapshotEvery or
// more events past the last one. A failure is logged, not returned: the
// state is right, only the next rebuild is longer.
func (r *Repository[S]) maybeSnapshot(ctx context.Context, subject string, e *entry[S]) {
	if r.cfg.snapshotEvery <= 0 || e.version < e.snapVersion+uint64(r.cfg.snapshotEvery) {
		return
	}
	state, err := json.Marshal(e.state)
	snap := snapshot{Position: e.position, Version: e.version, Schema: r.cfg.snapshotSchema, State: state, At: time.Now().UTC()}
	if r.sealer != nil && err == nil {
		snap.State = nil
		snap.Sealed, err = r.sealer.Seal(ctx, subject, state)
	}
	if err == nil {
		var b []byte
		b, err = json.Marshal(snap)
		if err == nil {
			err = r.bus.KV().PutValue(ctx, herald.SnapshotBucket, subject, b)
		}
	}
	if err != nil {
		r.cfg.logger.WarnContext(ctx, "es: snapshot not written", "subject", subject, "version", e.version, "error", err)
		return
	}
	e.snapVersion = e.version
	r.snapsWritten.Add(1)
}

// Save appends events to subject's stream, provided the subject is still
// at version expected, and returns its new version. Each event's Subject
// is set to subject (an event naming another subject is an error). When
// the subject has moved on, nothing is stored and the error wraps
// herald.ErrConflict: Load again and decide again (see Update). Saving no
// events returns expected.
//
// Save publishes the events through the bus (PublishBatch with
// herald.ExpectVersion): they are validated, encoded and delivered like
// any other. It takes ownership of the events, as Publish does. When the
// cache holds the subject at version expected, Save folds the new events
// into it; otherwise it drops the entry. Either way, when the save brings
// the subject WithSnapshotEvery events or more past its snapshot, Save writes
// a new one (rebuilding the state when the cache does not hold it), so
// that a subject only ever saved is snapshotted too.
func (r *Repository[S]) Save(ctx context.Context, subject string, expected uint64, events ...*herald.Event) (uint64, error) {
	if subject == "" {
		return 0, errors.New("es: Save: empty subject")
	}
	if len(events) == 0 {
		return expected, nil
	}
	for i, ev := range events {
		if ev == nil {
			return 0, &herald.ValidationError{Index: i, Reason: "nil event", Err: herald.ErrInvalidEvent}
		}
		if ev.Subject != "" && ev.Subject != subject {
			return 0, &herald.ValidationError{Index: i, Field: "subject", Reason: fmt.Sprintf("event is for %q, not %q", ev.Subject, subject), Err: herald.ErrInvalidEvent}
		}
		ev.Subject = subject
	}

	res, err := r.bus.PublishBatch(ctx, events, herald.ExpectVersion(expected))
	if err != nil {
		if errors.Is(err, herald.ErrConflict) {
			r.conflicts.Add(1)
		}
		if r.cache != nil {
			r.cache.remove(subject)
		}
		return 0, fmt.Errorf("es: save %s at version %d: %w", subject, expected, err)
	}
	version := expected + uint64(len(events))
	dup := false
	for _, x := range res {
		dup = dup || x.Duplicate
	}
	if r.cache != nil {
		if cached, ok := r.cache.get(subject); ok && cached.version == expected && !dup && len(res) == len(events) {
			// Fold the events as stored (prepared and encoded by the bus),
			// decoded as a rebuild reads them.
			next := cached
			folded := true
			for i, ev := range events {
				c := *ev
				c.Position = res[i].Position
				if err := r.fold(ctx, &next, &c, true); err != nil {
					folded = false // the events are stored; only the cached state is in doubt
					break
				}
			}
			if folded {
				r.maybeSnapshot(ctx, subject, &next)
				if r.cache.replace(subject, expected, next) {
					return version, nil
				}
			}
		}
		r.cache.remove(subject)
	}
	if every := uint64(r.cfg.snapshotEvery); every > 0 && !dup && version/every > expected/every {
		// Not folded in the cache: rebuild to snapshot. The events are
		// stored; a failure here only delays the snapshot.
		if _, err := r.rebuild(ctx, subject); err != nil {
			r.cfg.logger.WarnContext(ctx, "es: snapshot after save not written", "subject", subject, "version", version, "error", err)
		}
	}
	return version, nil
}

// Update loads subject, calls decide with its state and version, and saves
// the events decide returns at that version. On herald.ErrConflict it
// loads again and decides again, up to UpdateAttempts times in all, so
// decide must be free of side effects and return new events each time. It
// returns the new version, or the version loaded when decide returns no
// events. An error from decide is returned as is.
func (r *Repository[S]) Update(ctx context.Context, subject string, decide func(state S, version uint64) ([]*herald.Event, error)) (uint64, error) {
	var err error
	for range r.cfg.updateAttempts {
		var e entry[S]
		e, err = r.load(ctx, subject)
		if err != nil {
			return 0, err
		}
		var events []*herald.Event
		events, err = decide(e.state, e.version)
		if err != nil {
			return 0, err
		}
		var v uint64
		v, err = r.Save(ctx, subject, e.version, events...)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, herald.ErrConflict) {
			return 0, err
		}
	}
	return 0, err
}

// Evict drops subject from the cache, so the next Load rebuilds it from
// the store. It does not delete anything stored.
func (r *Repository[S]) Evict(subject string) {
	if r.cache != nil {
		r.cache.remove(subject)
	}
}

// Stats returns counters of what the repository did.
func (r *Repository[S]) Stats() Stats {
	s := Stats{
		Loads:            r.loads.Load(),
		CacheHits:        r.hits.Load(),
		StoreLoads:       r.storeLoads.Load(),
		EventsRead:       r.eventsRead.Load(),
		SnapshotsRead:    r.snapsRead.Load(),
		SnapshotsWritten: r.snapsWritten.Load(),
		Conflicts:        r.conflicts.Load(),
	}
	if r.cache != nil {
		s.Cached = r.cache.len()
	}
	return s
}
