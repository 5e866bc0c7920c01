package herald

import "context"

// SubscriptionCounts are what a durable subscription did: events handled
// successfully, failed attempts, retries scheduled and events
// dead-lettered. As Progress.Counts they are what happened since the
// previous commit; from CountingStore.SubscriptionCounts and
// Bus.SubscriptionCounts they are totals.
type SubscriptionCounts struct {
	Handled      uint64 `json:"handled"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
}

// IsZero reports whether every count is zero.
func (c SubscriptionCounts) IsZero() bool { return c == SubscriptionCounts{} }

// Add returns the sum of c and d.
func (c SubscriptionCounts) Add(d SubscriptionCounts) SubscriptionCounts {
	return SubscriptionCounts{Handled: c.Handled + d.Handled, Failed: c.Failed + d.Failed,
		Retried: c.Retried + d.Retried, DeadLettered: c.DeadLettered + d.DeadLettered}
}

// sub returns c minus d, count by count; d must not exceed c.
func (c SubscriptionCounts) sub(d SubscriptionCounts) SubscriptionCounts {
	return SubscriptionCounts{Handled: c.Handled - d.Handled, Failed: c.Failed - d.Failed,
		Retried: c.Retried - d.Retried, DeadLettered: c.DeadLettered - d.DeadLettered}
}

// CountingStore is implemented by a store that keeps each durable
// subscription's counts, so that every process sharing the store, and a
// process that restarts, sees the same totals. Commit adds
// Progress.Counts to the subscription's totals with the rest of the
// progress (no write of its own), and a Commit that failed adds nothing:
// tried again, its counts are added once. DeleteSubscription sets them
// back to zero. Memory, SQLite and NATS JetStream implement it.
type CountingStore interface {
	// SubscriptionCounts returns the totals of every durable subscription
	// that has counted anything since it was last deleted. After Close it
	// returns ErrClosed.
	SubscriptionCounts(ctx context.Context) (map[string]SubscriptionCounts, error)
}

// SubscriptionCounts returns each durable subscription's totals: on a
// CountingStore what it did in every process that shared the store, over
// restarts; on another store what it did in this bus since it started. It
// first commits what the durable subscriptions running in this bus have
// pending. Safe for concurrent use; after Close it returns ErrClosed.
func (b *Bus) SubscriptionCounts(ctx context.Context) (map[string]SubscriptionCounts, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := b.flushRunning(ctx, ""); err != nil {
		return nil, err
	}
	if cs, ok := b.store.(CountingStore); ok {
		return cs.SubscriptionCounts(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]SubscriptionCounts, len(b.durables))
	for name, s := range b.durables {
		out[name] = s.counts()
	}
	return out, nil
}

// counts are the subscription's counts since it started.
func (s *Subscription) counts() SubscriptionCounts {
	return SubscriptionCounts{Handled: s.handled.Load(), Failed: s.failed.Load(),
		Retried: s.retried.Load(), DeadLettered: s.deadLettered.Load()}
}

var _ CountingStore = (*MemoryStore)(nil)

// SubscriptionCounts implements CountingStore.
func (s *MemoryStore) SubscriptionCounts(ctx context.Context) (map[string]SubscriptionCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make(map[string]SubscriptionCounts, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out, nil
}
