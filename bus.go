package herald

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Bus publishes events to a store and delivers them to subscriptions.
//
// A Bus is safe for concurrent use. After Close every method returns
// ErrClosed. The bus does not close the store it was given with WithStore;
// it closes the memory store it made itself.
type Bus struct {
	cfg    busConfig
	store  Store
	logger *slog.Logger
}

// New returns a bus configured by opts. With no options it keeps events in
// a new memory store (see NewMemoryStore), logs nothing and registers no
// metrics.
func New(opts ...Option) (*Bus, error) {
	cfg := busConfig{maxEventSize: DefaultMaxEventSize, publishTimeout: DefaultPublishTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.store == nil {
		cfg.store = NewMemoryStore()
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.schemas == nil {
		cfg.schemas = NewSchemas()
	}
	return &Bus{cfg: cfg, store: cfg.store, logger: cfg.logger}, nil
}

var errNotYet = errors.New("herald: not implemented yet")

// Publish validates e, fills its defaults, appends it to the store and hands
// it to the ephemeral subscriptions; it returns e's position.
func (b *Bus) Publish(ctx context.Context, e *Event, opts ...PublishOption) (uint64, error) {
	return 0, errNotYet
}

// PublishBatch publishes events atomically: all of them or none.
func (b *Bus) PublishBatch(ctx context.Context, events []*Event, opts ...PublishOption) ([]AppendResult, error) {
	return nil, errNotYet
}

// Subscribe calls h for every event whose name matches pattern.
func (b *Bus) Subscribe(ctx context.Context, pattern string, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	return nil, errNotYet
}

// SubscribeBatch calls h with up to BatchSize matching events at a time.
func (b *Bus) SubscribeBatch(ctx context.Context, pattern string, h BatchHandler, opts ...SubscribeOption) (*Subscription, error) {
	return nil, errNotYet
}

// Unsubscribe stops s: see Subscription.Close.
func (b *Bus) Unsubscribe(ctx context.Context, s *Subscription) error { return s.Close(ctx) }

// Close stops the bus.
func (b *Bus) Close(ctx context.Context) error { return nil }

// Store returns the bus's store.
func (b *Bus) Store() Store { return b.store }

// Schemas returns the bus's JSON Schema registry.
func (b *Bus) Schemas() *Schemas { return b.cfg.schemas }

// DeadLetters lists the dead letters matching q.
func (b *Bus) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	return b.store.DeadLetters(ctx, q)
}

// Redrive marks the dead letters matching q for redrive.
func (b *Bus) Redrive(ctx context.Context, q DeadLetterQuery) (int, error) { return 0, errNotYet }

// Discard removes the dead letters matching q.
func (b *Bus) Discard(ctx context.Context, q DeadLetterQuery) (int, error) { return 0, errNotYet }

// Outcomes returns the outcomes matching q.
func (b *Bus) Outcomes(ctx context.Context, q OutcomeQuery) ([]Outcome, error) {
	return b.store.Outcomes(ctx, q)
}

// Trace is a correlation's chain of events with every handler's outcome.
type Trace struct {
	CorrelationID string       `json:"correlation_id"`
	Events        []TraceEvent `json:"events"`
}

// TraceEvent is one event of a Trace with its outcomes.
type TraceEvent struct {
	Event    *Event    `json:"event"`
	Outcomes []Outcome `json:"outcomes"`
}

// Trace returns the events of correlationID in log order, each with its outcomes.
func (b *Bus) Trace(ctx context.Context, correlationID string) (*Trace, error) {
	return nil, errNotYet
}

// Reset moves the durable subscription durableName to start.
func (b *Bus) Reset(ctx context.Context, durableName string, to Start) error { return errNotYet }

// Subscriptions describes the bus's running subscriptions.
func (b *Bus) Subscriptions() []SubscriptionInfo { return nil }

var _ = time.Second
