package nats

// WithOutcomeBatchMin sets the fewest outcomes a commit writes as one
// batch (default 16), so that tests can run every commit through batches.
func WithOutcomeBatchMin(n int) Option { return func(c *config) { c.outcomeBatchMin = n } }

// ConsumeTrace is one step of a shared consumer's deliveries, for tests
// that explain an ordering failure.
type ConsumeTrace = consumeTrace

// TraceConsume makes s report every step of its shared consumers'
// deliveries to f; call it before Consume. f is called from the consumers'
// goroutines and must be safe for concurrent use.
func TraceConsume(s *Store, f func(ConsumeTrace)) { s.trace = f }
