package nats

import (
	"context"
	"sync"
	"time"
)

// indexer writes id → position entries of single-event appends to the id
// index in the background, so an append returns once its event is stored;
// the entries of UUIDv7 ids it gathers are written a message per time
// bucket (see idBucket), so one write indexes many appends.
// Until an entry is acknowledged it sits in pending, where this Store's own
// lookups (Append, Get) find it; other processes find it a moment later,
// and meanwhile JetStream's duplicate window refuses the id anyway. An entry
// lost with the process is restored by repair.
type indexer struct {
	mu      sync.Mutex
	pending map[string]uint64
	ch      chan idxEntry
}

type idxEntry struct {
	id  string
	pos uint64
}

func newIndexer() *indexer {
	return &indexer{pending: map[string]uint64{}, ch: make(chan idxEntry, 4*maxGroup)}
}

// add queues an entry; it blocks while the queue is full.
func (x *indexer) add(id string, pos uint64) {
	x.mu.Lock()
	x.pending[id] = pos
	x.mu.Unlock()
	x.ch <- idxEntry{id, pos}
}

// get returns the pending position of id. A nil indexer (while the Store
// opens) holds nothing.
func (x *indexer) get(id string) (uint64, bool) {
	if x == nil {
		return 0, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.pending[id]
	return p, ok
}

// indexLinger is how long the indexer gathers entries before it writes.
// Meanwhile they are pending (found by this Store's lookups) and
// JetStream's duplicate window refuses their ids.
const indexLinger = 5 * time.Millisecond

// runIndexer writes queued entries until ch is closed and drained.
func (s *Store) runIndexer() {
	defer s.idxWG.Done()
	x := s.idx
	for {
		e, ok := <-x.ch
		if !ok {
			return
		}
		// Gather what comes within indexLinger, so that one message of
		// a time bucket carries the entries of many appends.
		batch := []idxEntry{e}
		linger := time.NewTimer(indexLinger)
	fill:
		for len(batch) < 4*maxGroup {
			select {
			case e, ok := <-x.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		failed := s.writeIDEntries(ctx, batch)
		cancel()
		if failed != nil {
			s.indexLog.fail(s, "indexing event ids (the repair indexes what is missed)", failed)
		} else {
			s.indexLog.ok(s, "indexing event ids")
		}
		x.mu.Lock()
		for _, e := range batch {
			if x.pending[e.id] == e.pos {
				delete(x.pending, e.id)
			}
		}
		x.mu.Unlock()
	}
}
