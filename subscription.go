package herald

import "context"

// Subscription is a running subscription of a Bus.
type Subscription struct {
	name string
	done chan struct{}
}

// SubscriptionInfo describes a running subscription.
type SubscriptionInfo struct {
	Name    string            `json:"name"`
	Pattern string            `json:"pattern"`
	Durable bool              `json:"durable"`
	Stats   SubscriptionStats `json:"stats"`
}

// SubscriptionStats counts what a subscription did since it started.
type SubscriptionStats struct {
	// Position is the subscription's checkpoint (durable) or the position
	// of the last event it took (ephemeral); Head the log's head; Lag the
	// difference.
	Position uint64 `json:"position"`
	Head     uint64 `json:"head"`
	Lag      uint64 `json:"lag"`
	// Handled counts events handled successfully, Failed failed attempts,
	// Retried scheduled retries, DeadLettered events given up on, Dropped
	// events dropped by DropOldest.
	Handled      uint64 `json:"handled"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
	// InFlight is the number of handler calls running now.
	InFlight int `json:"in_flight"`
}

// Name returns the subscription's name.
func (s *Subscription) Name() string { return s.name }

// Close stops delivery.
func (s *Subscription) Close(ctx context.Context) error { return nil }

// Done is closed once the subscription has stopped.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Stats returns the subscription's counters.
func (s *Subscription) Stats() SubscriptionStats { return SubscriptionStats{} }
