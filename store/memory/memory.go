// Package memory is herald's in-memory store: the zero-configuration
// default of herald.New and the store of tests. Nothing survives the
// process. It is herald.MemoryStore under its backend name, so that every
// store is imported the same way (memory.New, sqlite.Open, ...).
package memory

import "github.com/heraldhq/herald"

// Store is herald.MemoryStore; see its documentation for the contract.
type Store = herald.MemoryStore

// Option configures a Store.
type Option = herald.MemoryOption

// New returns an empty memory store.
func New(opts ...Option) *Store { return herald.NewMemoryStore(opts...) }

// WithMaxEvents bounds how many events the store holds (default
// herald.DefaultMaxEvents); n <= 0 removes the bound.
func WithMaxEvents(n int) Option { return herald.WithMemoryMaxEvents(n) }

var _ herald.Store = (*Store)(nil)
