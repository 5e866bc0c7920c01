package nats

import (
	"context"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// indexer writes id → position entries of single-event appends to the ids
// bucket in the background, so an append returns once its event is stored.
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

// run writes queued entries until ch is closed and drained.
func (s *Store) runIndexer() {
	defer s.idxWG.Done()
	x := s.idx
	prefix := "$KV." + s.cfg.namespace + "_ids."
	for {
		e, ok := <-x.ch
		if !ok {
			return
		}
		batch := []idxEntry{e}
	fill:
		for len(batch) < 4*maxGroup {
			select {
			case e, ok := <-x.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		futs := make([]jetstream.PubAckFuture, 0, len(batch))
		var failed error
		for _, e := range batch {
			f, err := s.js.PublishAsync(prefix+idKey(e.id), []byte(strconv.FormatUint(e.pos, 10)))
			if err != nil {
				failed = err
				futs = append(futs, nil)
				continue
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				failed = err
			case <-ctx.Done():
				failed = ctx.Err()
			}
		}
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
