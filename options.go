package herald

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of a Bus and of its subscriptions.
const (
	// DefaultPublishTimeout bounds Publish when its context has no deadline.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultHandlerTimeout bounds one call of a handler.
	DefaultHandlerTimeout = 30 * time.Second
	// DefaultMaxAttempts is the first try and three retries.
	DefaultMaxAttempts = 4
	// DefaultBackoffInitial and DefaultBackoffMax bound the exponential
	// backoff (with full jitter) between attempts.
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	// DefaultBufferSize bounds an ephemeral subscription's queue.
	DefaultBufferSize = 1024
	// DefaultBatchSize is how many events a batch handler gets at most.
	DefaultBatchSize = 100
	// DefaultReadAheadBytes bounds the bytes of events one durable
	// subscription holds: read ahead from the log, queued, waiting for a
	// retry or being handled (8 MiB).
	DefaultReadAheadBytes = 8 << 20
	// DefaultReadAheadTotal bounds the bytes of events the durable
	// subscriptions of a bus hold together (64 MiB).
	DefaultReadAheadTotal = 64 << 20
)

// Option configures a Bus in New.
type Option func(*busConfig)

type busConfig struct {
	store          Store
	logger         *slog.Logger
	registerer     prometheus.Registerer
	source         string
	validators     []Validator
	schemas        *Schemas
	maxEventSize   int
	publishTimeout time.Duration
	codec          Codec
	retention      []RetentionRule
	pruneEvery     time.Duration
	hasRetention   bool
	readAhead      int // bytes per durable subscription
	readAheadTotal int // bytes for all durable subscriptions
}

// WithStore sets the store behind the bus. The default (and a nil store)
// is a new NewMemoryStore(), which Bus.Close closes. The bus does not close
// a store it was given: the caller closes it after Bus.Close.
func WithStore(s Store) Option { return func(c *busConfig) { c.store = s } }

// WithLogger sets the logger; the default (and a nil logger) discards
// everything. The bus logs event ids, names, correlation ids, subscriptions,
// attempts and durations, never payloads.
func WithLogger(l *slog.Logger) Option { return func(c *busConfig) { c.logger = l } }

// WithRegisterer registers the bus's Prometheus metrics on r. By default no
// metric is registered anywhere (the global registry is never used).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *busConfig) { c.registerer = r }
}

// WithSource sets the source_plugin given to published events that have
// none. The default leaves it empty.
func WithSource(name string) Option { return func(c *busConfig) { c.source = name } }

// WithValidator adds a business-rule validator that every published event
// must pass before it is stored. It may be given many times; validators run
// in the order given. None by default.
func WithValidator(v Validator) Option {
	return func(c *busConfig) { c.validators = append(c.validators, v) }
}

// WithSchemas sets the JSON Schema registry that published events are
// checked against. By default the bus has an empty registry of its own
// (see Bus.Schemas).
func WithSchemas(s *Schemas) Option { return func(c *busConfig) { c.schemas = s } }

// WithMaxEventSize sets the largest encoded event the bus accepts, in bytes.
// The default is DefaultMaxEventSize (1 MiB).
func WithMaxEventSize(n int) Option { return func(c *busConfig) { c.maxEventSize = n } }

// WithPublishTimeout sets how long Publish waits for room when its context
// has no deadline. The default is DefaultPublishTimeout (5 s).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *busConfig) { c.publishTimeout = d }
}

// WithReadAhead bounds the memory durable subscriptions take for the
// events they hold (read ahead from the log, queued, waiting for a retry,
// or being handled), in bytes of event data, strings and metadata. One
// subscription holds at most perSubscription bytes, and at most its share
// of total (total divided by the bus's durable subscriptions), whichever
// is less; an event larger than that is still read, alone. So a
// subscription whose handler hangs holds at most its bound, however large
// its events and its concurrency, and all of them together at most total
// (plus, for each, at most one event larger than its share). The bound
// also limits how many large events one subscription handles at once.
// BufferSize still bounds the number of events read ahead. Zero keeps a
// default: DefaultReadAheadBytes (8 MiB) and DefaultReadAheadTotal
// (64 MiB). On a SharedStore the subscription fetches as many events as
// fit if each is as large as the largest it has seen.
func WithReadAhead(perSubscription, total int) Option {
	return func(c *busConfig) {
		if perSubscription != 0 {
			c.readAhead = perSubscription
		}
		if total != 0 {
			c.readAheadTotal = total
		}
	}
}

func (c *busConfig) validate() error {
	switch {
	case c.readAhead < 1 || c.readAheadTotal < 1:
		return fmt.Errorf("herald: read-ahead bounds must be positive, got %d and %d", c.readAhead, c.readAheadTotal)
	case c.maxEventSize <= 0:
		return fmt.Errorf("herald: max event size must be positive, got %d", c.maxEventSize)
	case c.publishTimeout <= 0:
		return fmt.Errorf("herald: publish timeout must be positive, got %v", c.publishTimeout)
	case len(c.source) > MaxSourceLen:
		return fmt.Errorf("herald: source longer than %d bytes", MaxSourceLen)
	case c.pruneEvery < 0:
		return fmt.Errorf("herald: retention interval must not be negative, got %v", c.pruneEvery)
	}
	if err := validateRules(c.retention); err != nil {
		return err
	}
	for i, v := range c.validators {
		if v == nil {
			return fmt.Errorf("herald: validator %d is nil", i)
		}
	}
	return nil
}

// Validator checks an event against business rules before it is stored.
// An error rejects the event; it is returned to the publisher wrapped in a
// *ValidationError (wrapping ErrInvalidEvent unless it wraps a herald
// sentinel itself). Validators must be safe for concurrent use and must not
// modify the event.
type Validator interface {
	Validate(ctx context.Context, e *Event) error
}

// ValidatorFunc adapts a function to a Validator.
type ValidatorFunc func(ctx context.Context, e *Event) error

// Validate calls f(ctx, e).
func (f ValidatorFunc) Validate(ctx context.Context, e *Event) error { return f(ctx, e) }

// PublishOption changes one Publish or PublishBatch call.
type PublishOption func(*publishConfig)

type publishConfig struct {
	append    AppendOptions
	duplicate *bool
}

// ReportDuplicate makes Publish set *dup to whether the event's ID was
// stored already: then nothing was stored or delivered, and the position
// returned is the stored event's. (An ID stored already with another name,
// version, subject or data is not a duplicate but an error wrapping
// ErrConflict.) PublishBatch reports it per event in AppendResult and
// ignores this option. By default Publish does not say.
func ReportDuplicate(dup *bool) PublishOption {
	return func(c *publishConfig) { c.duplicate = dup }
}

// ExpectVersion makes the publish succeed only while the events' subject is
// at version n (the number of its stored events; 0 before the first). On a
// mismatch nothing is stored and the error wraps ErrConflict. Every event of
// the call must have the same non-empty subject.
func ExpectVersion(n uint64) PublishOption {
	return func(c *publishConfig) {
		c.append.CheckVersion = true
		c.append.ExpectedVersion = n
	}
}

// SubscribeOption configures one subscription.
type SubscribeOption func(*subConfig)

type subConfig struct {
	durable     string
	durableSet  bool // Durable was given, with whatever name
	concurrency int
	timeout     time.Duration
	maxAttempts int
	backoffInit time.Duration
	backoffMax  time.Duration
	start       Start
	startSet    bool
	bufferSize  int
	dropOldest  bool
	batchSize   int
}

func defaultSubConfig() subConfig {
	return subConfig{
		concurrency: 1,
		timeout:     DefaultHandlerTimeout,
		maxAttempts: DefaultMaxAttempts,
		backoffInit: DefaultBackoffInitial,
		backoffMax:  DefaultBackoffMax,
		bufferSize:  DefaultBufferSize,
		batchSize:   DefaultBatchSize,
	}
}

func (c *subConfig) validate() error {
	switch {
	case c.durableSet && !validSubName(c.durable):
		return fmt.Errorf("herald: durable name %q: want 1 to 200 characters of [A-Za-z0-9_.-]", c.durable)
	case c.concurrency < 1:
		return fmt.Errorf("herald: concurrency must be at least 1, got %d", c.concurrency)
	case c.timeout <= 0:
		return fmt.Errorf("herald: handler timeout must be positive, got %v", c.timeout)
	case c.maxAttempts < 1:
		return fmt.Errorf("herald: max attempts must be at least 1, got %d", c.maxAttempts)
	case c.backoffInit <= 0 || c.backoffMax < c.backoffInit:
		return fmt.Errorf("herald: backoff wants 0 < initial <= max, got %v and %v", c.backoffInit, c.backoffMax)
	case c.bufferSize < 1:
		return fmt.Errorf("herald: buffer size must be at least 1, got %d", c.bufferSize)
	case c.batchSize < 1:
		return fmt.Errorf("herald: batch size must be at least 1, got %d", c.batchSize)
	}
	return nil
}

// Durable makes the subscription durable under name: its checkpoint,
// outcomes and dead letters live in the store, and a subscription with the
// same name resumes where the last one stood, receiving what was published
// meanwhile (at-least-once). Names are 1 to 200 characters of
// [A-Za-z0-9_.-]; any other name, the empty one included, makes Subscribe
// fail. Without it the subscription is ephemeral: it receives
// only events published through this bus while it exists, and it records
// no outcomes and no dead letters: its failures are logged and counted
// (SubscriptionStats, metrics) only. Recording them in the store would be
// wrong rather than slow: Store.Commit always saves a checkpoint, which
// would hold retention for a subscription that ends with its process, and
// the bus-made names of ephemeral subscriptions are reused by every
// process and restart, so their outcomes and dead letters (and a redrive)
// would reach unrelated subscriptions. Use a durable subscription for
// events whose failures must be traced, dead-lettered or redriven.
func Durable(name string) SubscribeOption {
	return func(c *subConfig) { c.durable, c.durableSet = name, true }
}

// Concurrency sets how many events the subscription handles at once (events
// of one subject are still handled one at a time, in log order). Default 1.
func Concurrency(n int) SubscribeOption { return func(c *subConfig) { c.concurrency = n } }

// Timeout sets the per-call handler timeout: the handler's context ends
// then, and an attempt that ran out of time counts as a temporary failure.
// A handler that ignores its context and is still running a grace period
// later (a tenth of the timeout, between 100 ms and 5 s) is abandoned: its
// attempt is recorded as failed, another goroutine takes its place, and its
// own goroutine ends whenever the handler returns. For a batch handler the
// timeout covers the whole call. Default DefaultHandlerTimeout (30 s).
func Timeout(d time.Duration) SubscribeOption { return func(c *subConfig) { c.timeout = d } }

// MaxAttempts sets how many times an event is tried before it goes to the
// dead-letter queue. A redriven dead letter gets MaxAttempts fresh attempts.
// Default DefaultMaxAttempts (4: the first try and three retries).
func MaxAttempts(n int) SubscribeOption { return func(c *subConfig) { c.maxAttempts = n } }

// Backoff sets the exponential backoff between attempts: the n-th retry
// waits a random duration in [0, min(max, initial·2^(n-1))) (full jitter).
// Defaults 100 ms and 30 s.
func Backoff(initial, max time.Duration) SubscribeOption {
	return func(c *subConfig) { c.backoffInit, c.backoffMax = initial, max }
}

// StartAt sets where a subscription starts. A durable subscription uses it
// only when it has no checkpoint yet (default StartEarliest); an ephemeral
// one only receives events published after it subscribed, so only
// StartLatest (its default) applies to it.
func StartAt(s Start) SubscribeOption {
	return func(c *subConfig) { c.start, c.startSet = s, true }
}

// BufferSize bounds an ephemeral subscription's queue (events waiting for
// a retry included). When it is full, Publish waits (up to its deadline,
// then ErrBackpressure), or, with DropOldest, the oldest queued event is
// dropped. A PublishBatch with more matching events than the bound waits
// for an empty queue and then goes in whole. Default DefaultBufferSize
// (1024). For a durable subscription it bounds how many events it reads
// ahead (and WithReadAhead how many bytes).
func BufferSize(n int) SubscribeOption { return func(c *subConfig) { c.bufferSize = n } }

// DropOldest makes a full ephemeral subscription drop its oldest queued
// event (counted in SubscriptionStats.Dropped) instead of holding the
// publisher. It has no effect on durable subscriptions.
func DropOldest() SubscribeOption { return func(c *subConfig) { c.dropOldest = true } }

// BatchSize sets how many events a batch handler (SubscribeBatch) gets at
// most per call. Default DefaultBatchSize (100).
func BatchSize(n int) SubscribeOption { return func(c *subConfig) { c.batchSize = n } }

// Start says where a subscription starts reading the log.
type Start struct {
	kind startKind
	pos  uint64
	t    time.Time
}

type startKind uint8

const (
	startEarliest startKind = iota
	startLatest
	startPosition
	startTime
)

var (
	// StartEarliest starts at the first event in the log.
	StartEarliest = Start{kind: startEarliest}
	// StartLatest starts after the last event in the log: only events
	// appended from then on are delivered.
	StartLatest = Start{kind: startLatest}
)

// StartPosition starts with the event at position p (the subscription's
// checkpoint becomes p-1).
func StartPosition(p uint64) Start { return Start{kind: startPosition, pos: p} }

// StartTime starts with the first event whose timestamp is at or after t.
func StartTime(t time.Time) Start { return Start{kind: startTime, t: t} }

func (s Start) String() string {
	switch s.kind {
	case startLatest:
		return "latest"
	case startPosition:
		return fmt.Sprintf("position %d", s.pos)
	case startTime:
		return "time " + s.t.UTC().Format(time.RFC3339Nano)
	}
	return "earliest"
}

// resolve returns the checkpoint (the position before the first event to
// deliver) that s means in store st.
func (s Start) resolve(ctx context.Context, st Store) (uint64, error) {
	switch s.kind {
	case startLatest:
		return st.Head(ctx)
	case startPosition:
		if s.pos == 0 {
			return 0, nil
		}
		return s.pos - 1, nil
	case startTime:
		for e, err := range st.Read(ctx, 0, Filter{Since: s.t, Limit: 1}) {
			if err != nil {
				return 0, err
			}
			return e.Position - 1, nil
		}
		return st.Head(ctx)
	}
	return 0, nil
}
