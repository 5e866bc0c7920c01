package herald

import (
	"context"
	"time"
)

// Handler handles the events of a subscription. Handle is called with a
// context that carries the event's EventContext (see FromContext) and ends
// at the subscription's handler timeout, or when Close gives up waiting.
// Returning nil marks the event done; an error marked with Permanent sends
// it to the dead-letter queue at once; any other error is retried with
// backoff up to the subscription's attempt limit. A panic is recovered and
// treated as an unexpected error. An error returned after Close cancelled
// the context, or one wrapping ErrClosed while the subscription or bus is
// closing (a follow-up Publish refused), is not counted: the event is left
// for the next run.
//
// With Concurrency above 1 Handle is called from several goroutines at
// once. The event is shared with other subscriptions and must not be
// modified; a durable subscription delivers at least once, so Handle
// should be idempotent.
type Handler interface {
	Handle(ctx context.Context, e *Event) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, e *Event) error

// Handle calls f(ctx, e).
func (f HandlerFunc) Handle(ctx context.Context, e *Event) error { return f(ctx, e) }

// BatchHandler handles up to a subscription's batch size of events at a
// time. It returns nil when every event succeeded, or one error per event
// (nil for those that succeeded): each failed event is retried or
// dead-lettered on its own.
type BatchHandler interface {
	HandleBatch(ctx context.Context, events []*Event) []error
}

// BatchHandlerFunc adapts a function to a BatchHandler.
type BatchHandlerFunc func(ctx context.Context, events []*Event) []error

// HandleBatch calls f(ctx, events).
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, events []*Event) []error {
	return f(ctx, events)
}

// EventContext describes the event a handler is working on. The bus puts it
// in the handler's context; FromContext takes it out.
type EventContext struct {
	EventID       string
	EventName     string
	CorrelationID string
	CausationID   string
	SourcePlugin  string
	Subject       string
	Metadata      map[string]string
	// Subscription is the name of the subscription handling the event.
	Subscription string
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	// A redriven dead letter starts again at 1; on a shared store it is the
	// store's delivery count.
	Attempt int
	// Timestamp is the event's timestamp.
	Timestamp time.Time
	Position  uint64
}
