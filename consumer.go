package herald

import (
	"context"
	"time"
)

// SharedStore is an optional ability of a Store whose durable subscriptions
// can be shared by several processes (NATS JetStream). The bus finds it by
// type assertion: a durable subscription on such a store takes its events
// from Consume instead of Read and checkpoints, and still records outcomes
// and dead letters with Commit (the checkpoint is then informational).
// A failed attempt is retried by Nak, so the consumer may deliver later
// events of the same subject before the retry: per-subject order holds
// across retries only on stores without this ability. Bus.Reset is not
// supported on such a store.
type SharedStore interface {
	// Consume joins (creating if needed) the shared durable consumer `sub`
	// for events matching pattern, starting at start for a new consumer.
	// ctx bounds the joining only: the Consumer lives until its Close.
	Consume(ctx context.Context, sub string, pattern string, start Start, opts ConsumeOptions) (Consumer, error)
}

// ConsumeOptions configure a shared consumer.
type ConsumeOptions struct {
	// AckWait is how long a delivery may stay unacknowledged before it is
	// delivered again.
	AckWait time.Duration
	// MaxInFlight bounds the unacknowledged deliveries of this consumer.
	MaxInFlight int
	// MaxBytes bounds the bytes of the deliveries this consumer has taken
	// from the store and not acknowledged or negatively acknowledged yet;
	// a store may go over it by about one delivery per pull it has open
	// (a NATS store: per partition). 0 means only MaxInFlight bounds them.
	MaxBytes int64
}

// Consumer is one process's handle on a shared durable consumer. It is
// safe for concurrent use; Close releases it (the consumer itself stays).
type Consumer interface {
	// Fetch blocks until at least one delivery (or ctx ends) and returns up to max.
	Fetch(ctx context.Context, max int) ([]Delivery, error)
	Close() error
}

// Delivery is one delivery of an event by a shared consumer.
type Delivery interface {
	Event() *Event
	// Attempt is the delivery count, 1 for the first.
	Attempt() int
	// Ack marks the event done (its outcome is already committed).
	Ack(ctx context.Context) error
	// Nak asks for the event again after delay.
	Nak(ctx context.Context, delay time.Duration) error
	// InProgress extends the ack wait.
	InProgress(ctx context.Context) error
}

// DamagedDelivery is a Delivery that may carry an event its store could
// not decode (see DamagedEventError). When Damaged returns one, Event
// returns its stand-in, and the bus records it as a permanent dead letter
// without calling the handler and acknowledges the delivery, as a durable
// subscription does with a damaged event it reads from the log.
type DamagedDelivery interface {
	Delivery
	// Damaged returns why the event cannot be decoded, or nil when it can.
	Damaged() *DamagedEventError
}
