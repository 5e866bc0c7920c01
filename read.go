package herald

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"time"
)

// The Bus is the one door to the store: packages built on herald (server,
// es, sensitive, the CLI) read, administer and configure through the
// methods in this file, never through the Store itself, so that what is
// policy — decoding with the codec, the rules of sensitive names, the
// subscriptions running here — applies on every path.

// ReadOption changes what a read of the bus returns.
type ReadOption func(*readConfig)

type readConfig struct {
	raw bool
}

// Raw makes a read return events as stored: encoded by the bus's codec
// (sensitive fields sealed), not decoded. It is meant for exports and
// backups that must keep what they copy no more readable than the store.
// Events returned raw are shared with the store: do not modify them.
func Raw() ReadOption { return func(c *readConfig) { c.raw = true } }

func readOptions(opts []ReadOption) readConfig {
	var c readConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Read yields the events after position after (exclusive) that match f, in
// log order, up to f.Limit (0: no limit), as the store's Read does. Events
// are decoded with the bus's codec (see WithCodec) unless opts include
// Raw; an event that does not decode ends the iteration with the error. A
// decoded event is the caller's; a raw one is shared. The iterator's error,
// if any, comes as its last pair; after Close it yields ErrClosed.
func (b *Bus) Read(ctx context.Context, after uint64, f Filter, opts ...ReadOption) iter.Seq2[*Event, error] {
	rc := readOptions(opts)
	return func(yield func(*Event, error) bool) {
		if b.closed.Load() {
			yield(nil, ErrClosed)
			return
		}
		for e, err := range b.store.Read(ctx, after, f) {
			if err != nil {
				yield(nil, err)
				return
			}
			if !rc.raw {
				if e, err = b.decode(ctx, e); err != nil {
					yield(nil, err)
					return
				}
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Get returns the event with the given id, decoded unless opts include
// Raw, or an error wrapping ErrNotFound. After Close it returns ErrClosed.
func (b *Bus) Get(ctx context.Context, id string, opts ...ReadOption) (*Event, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	e, err := b.store.Get(ctx, id)
	if err != nil || readOptions(opts).raw {
		return e, err
	}
	return b.decode(ctx, e)
}

// Decode returns e as handlers see it: a decoded copy when the bus has a
// codec, e itself otherwise. It is for events obtained raw (Raw). An event
// that does not decode (tampered with) returns the codec's error.
func (b *Bus) Decode(ctx context.Context, e *Event) (*Event, error) {
	if e == nil {
		return nil, nil
	}
	return b.decode(ctx, e)
}

func (b *Bus) decode(ctx context.Context, e *Event) (*Event, error) {
	if b.cfg.codec == nil {
		return e, nil
	}
	d := *e
	if err := b.cfg.codec.Decode(ctx, &d); err != nil {
		return nil, fmt.Errorf("herald: decoding event %s: %w", e.ID, err)
	}
	return &d, nil
}

// decodeDeadLetters decodes the events of dls in place. An event that does
// not decode (which is how it may have become a dead letter) stays as
// stored: its sealed values open for nobody, and the entry must stay
// visible to be discarded.
func (b *Bus) decodeDeadLetters(ctx context.Context, dls []DeadLetter) {
	if b.cfg.codec == nil {
		return
	}
	for i := range dls {
		if dls[i].Event == nil {
			continue
		}
		if e, err := b.decode(ctx, dls[i].Event); err == nil {
			dls[i].Event = e
		}
	}
}

// Head returns the position of the last event stored (0 when the log is
// empty). After Close it returns ErrClosed.
func (b *Bus) Head(ctx context.Context) (uint64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	return b.store.Head(ctx)
}

// Wait blocks until the log's head is past after, and returns the head.
// It returns ctx's error when ctx ends first, and ErrClosed when the bus
// or its store is closed. Read the new events with Read.
func (b *Bus) Wait(ctx context.Context, after uint64) (uint64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	return b.store.Wait(ctx, after)
}

// SubjectVersion returns how many events were ever stored for subject (0
// before the first); retention does not lower it. After Close it returns
// ErrClosed.
func (b *Bus) SubjectVersion(ctx context.Context, subject string) (uint64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	return b.store.SubjectVersion(ctx, subject)
}

// Subject describes subject: its version (SubjectVersion) and the
// positions of its first and last events the log still holds (0 when it
// holds none). It reads the subject's events, so its cost grows with their
// number. After Close it returns ErrClosed.
func (b *Bus) Subject(ctx context.Context, subject string) (SubjectInfo, error) {
	info := SubjectInfo{Subject: subject}
	v, err := b.SubjectVersion(ctx, subject)
	if err != nil {
		return info, err
	}
	info.Version = v
	if subject == "" || v == 0 {
		return info, nil
	}
	for e, err := range b.Read(ctx, 0, Filter{Subject: subject}, Raw()) {
		if err != nil {
			return info, err
		}
		if info.FirstPosition == 0 {
			info.FirstPosition = e.Position
		}
		info.LastPosition = e.Position
	}
	return info, nil
}

// SubjectVersionAt returns the version subject had just after its event at
// position was appended: how many events were stored for subject up to
// and including it. The event must be of subject. It counts the subject's
// events after position against its version, and tries again when an
// append to the subject comes between; it returns an error wrapping
// ErrConflict when appends keep coming. After Close it returns ErrClosed.
func (b *Bus) SubjectVersionAt(ctx context.Context, subject string, position uint64) (uint64, error) {
	if subject == "" {
		return 0, fmt.Errorf("herald: subject version of an event without a subject: %w", ErrInvalidEvent)
	}
	for range 5 {
		before, err := b.SubjectVersion(ctx, subject)
		if err != nil {
			return 0, err
		}
		var later uint64
		for _, err := range b.Read(ctx, position, Filter{Subject: subject}, Raw()) {
			if err != nil {
				return 0, err
			}
			later++
		}
		after, err := b.SubjectVersion(ctx, subject)
		if err != nil {
			return 0, err
		}
		if before == after && later < after {
			return after - later, nil
		}
	}
	return 0, fmt.Errorf("herald: subject %q keeps changing: %w", subject, ErrConflict)
}

// Checkpoint returns the position through which the durable subscription
// name has handled every event, as last committed to the store, and false
// when it never committed. After Close it returns ErrClosed.
func (b *Bus) Checkpoint(ctx context.Context, name string) (uint64, bool, error) {
	if b.closed.Load() {
		return 0, false, ErrClosed
	}
	return b.store.Checkpoint(ctx, name)
}

// DeleteSubscription removes the state of the durable subscription name —
// its checkpoint, so that it no longer holds back retention, and its
// outcomes, so that a later subscription of the name does not show them
// as its own, and its counts (see SubscriptionCounts) — and keeps its dead
// letters (Discard them). A subscription of that name running in
// this bus is refused with an error wrapping ErrConflict: close it first.
// After Close it returns ErrClosed.
func (b *Bus) DeleteSubscription(ctx context.Context, name string) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.mu.Lock()
	_, running := b.durables[name]
	b.mu.Unlock()
	if running {
		return fmt.Errorf("herald: durable subscription %s is running: close it before deleting its state: %w", name, ErrConflict)
	}
	return b.store.DeleteSubscription(ctx, name)
}

// Shared reports whether the bus's store shares durable subscriptions
// between processes (SharedStore, such as NATS JetStream). Such a store
// does not support Reset.
func (b *Bus) Shared() bool {
	_, ok := b.store.(SharedStore)
	return ok
}

// KV returns the key-value space of the bus's store, where herald keeps its
// own configuration (schemas, tokens, push subscriptions, snapshots, keys).
// It holds no events: events are read and written through the bus.
func (b *Bus) KV() KV { return b.store }

// Codec returns the codec given with WithCodec, or nil.
func (b *Bus) Codec() Codec { return b.cfg.codec }

// Forgetter is a codec that can forget a subject (crypto-shredding), such
// as the sensitive package's Codec: after Forget the subject's sensitive
// values never decode again.
type Forgetter interface {
	Forget(ctx context.Context, subject string) error
}

// ErrNoForgetter is returned by Bus.Forget when the bus's codec cannot
// forget (or there is none): nothing is encrypted, so nothing can be
// forgotten.
var ErrNoForgetter = errors.New("herald: the bus's codec keeps no keys: nothing to forget")

// Forget forgets subject through the bus's codec (see Forgetter), then
// tells every hook registered with OnForget, so that caches built on the
// bus (es repositories) drop what they hold of it. Forget the subject
// here rather than on the codec itself: the codec alone does not reach
// those caches. It returns ErrNoForgetter when the codec cannot forget,
// and ErrClosed after Close.
func (b *Bus) Forget(ctx context.Context, subject string) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if subject == "" {
		return &ValidationError{Field: "subject", Reason: "is empty", Err: ErrInvalidEvent}
	}
	f, ok := b.cfg.codec.(Forgetter)
	if !ok {
		return ErrNoForgetter
	}
	// Caches drop the subject before and after: a load racing the forget
	// may read the old key, and must not leave what it read cached.
	b.forgotten(subject)
	err := f.Forget(ctx, subject)
	b.forgotten(subject)
	return err
}

// forgetHooks are the functions OnForget registered.
type forgetHooks struct {
	mu    sync.Mutex
	next  int
	hooks map[int]func(subject string)
}

// OnForget registers fn to be called with the subject of every Forget of
// the bus (before and after the codec forgets it), and returns a function
// that unregisters it. fn must be quick and must not call the bus.
func (b *Bus) OnForget(fn func(subject string)) (remove func()) {
	h := &b.forgetHooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hooks == nil {
		h.hooks = map[int]func(string){}
	}
	id := h.next
	h.next++
	h.hooks[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.hooks, id)
		h.mu.Unlock()
	}
}

func (b *Bus) forgotten(subject string) {
	h := &b.forgetHooks
	h.mu.Lock()
	fns := make([]func(string), 0, len(h.hooks))
	for _, fn := range h.hooks {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(subject)
	}
}

// encode applies the rules of sensitive names and the codec to a prepared
// event: an event whose name has fields a schema marks sensitive (in any
// version, see Schemas.NameSensitiveFields) is refused when the bus has no
// codec to encrypt them.
func (b *Bus) encode(ctx context.Context, e *Event) error {
	if b.cfg.codec == nil {
		if paths := b.cfg.schemas.NameSensitiveFields(e.Name); len(paths) > 0 {
			return &ValidationError{Field: paths[0], Reason: fmt.Sprintf(
				"%s has sensitive fields (%s) and the bus has no codec to encrypt them (herald.WithCodec)",
				e.Name, strings.Join(paths, ", ")), Err: ErrInvalidEvent}
		}
		return nil
	}
	return b.cfg.codec.Encode(ctx, e)
}

// flushRunning commits what the durable subscriptions running in this bus
// whose name is sub ("" for all) have pending, waiting for a commit under
// way, so that a read of dead letters sees every result the bus has: a
// dead letter whose redrive succeeded is not listed again.
// redriveSettleWait bounds how long listing dead letters waits for
// redrives in progress to settle.
const redriveSettleWait = 2 * time.Second

func (b *Bus) flushRunning(ctx context.Context, sub string) error {
	var errs []error
	for _, s := range b.subscriptionList() {
		if s.durable && (sub == "" || s.name == sub) {
			// A redrive whose handler is finishing is about to resolve
			// its dead letter: let it, so that a list taken right after
			// the endpoint answered does not show it again.
			s.waitRedrives(ctx, redriveSettleWait)
			errs = append(errs, s.c.flush(ctx))
		}
	}
	return errors.Join(errs...)
}

// ReadyChecker is what a Store implements when it can tell whether it takes
// writes now; the NATS JetStream store cannot while its cluster has no
// quorum. A store that does not implement it is ready while it answers.
type ReadyChecker interface {
	Ready(ctx context.Context) error
}

// Ready returns nil when the bus's store answers and takes writes now, and
// otherwise the store's error: ErrClosed after Close, or the store's reason
// (no JetStream quorum). /readyz of herald serve asks it.
func (b *Bus) Ready(ctx context.Context) error {
	if _, err := b.Head(ctx); err != nil {
		return err
	}
	if r, ok := b.store.(ReadyChecker); ok {
		return r.Ready(ctx)
	}
	return nil
}
