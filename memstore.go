package herald

// MemoryStore is a Store that keeps everything in memory.
type MemoryStore struct {
	Store
}

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// NewMemoryStore returns an empty memory store.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore { return &MemoryStore{} }
