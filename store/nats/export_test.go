package nats

// WithOutcomeBatchMin sets the fewest outcomes a commit writes as one
// batch (default 16), so that tests can run every commit through batches.
func WithOutcomeBatchMin(n int) Option { return func(c *config) { c.outcomeBatchMin = n } }
