package nats

import (
	"sort"
	"sync"
)

// indexedSet holds the positions of the events whose index entries this
// Store wrote itself and saw acknowledged (single appends through the
// indexer, atomic batches), above the watermark: repair need not read
// those events again to index them. A process that appends alone thus
// repairs without reading anything, and moves the watermark to the head
// when it closes, so the next process to open has nothing to repair.
// Positions are kept as sorted, disjoint, non-adjacent ranges, at most
// maxIndexedRanges of them; beyond that the set forgets them all (repair
// then reads what it does not know, as it would without the set). It is
// safe for concurrent use.
type indexedSet struct {
	mu     sync.Mutex
	ranges []posRange
}

// posRange is the positions lo through hi.
type posRange struct{ lo, hi uint64 }

// maxIndexedRanges bounds an indexedSet: 16 bytes a range.
const maxIndexedRanges = 1 << 16

// add records that the events at positions are indexed.
func (x *indexedSet) add(positions ...uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range positions {
		x.addLocked(p)
	}
	if len(x.ranges) > maxIndexedRanges {
		x.ranges = nil
	}
}

func (x *indexedSet) addLocked(p uint64) {
	r := x.ranges
	// The first range that ends at p-1 or later.
	i := sort.Search(len(r), func(i int) bool { return r[i].hi+1 >= p })
	switch {
	case i == len(r):
		x.ranges = append(r, posRange{p, p})
	case r[i].lo <= p && p <= r[i].hi:
	case r[i].hi+1 == p:
		r[i].hi = p
		if i+1 < len(r) && r[i+1].lo == p+1 {
			r[i].hi = r[i+1].hi
			x.ranges = append(r[:i+1], r[i+2:]...)
		}
	case r[i].lo == p+1:
		r[i].lo = p // r[i-1] ends before p-1: no merge
	default:
		x.ranges = append(r[:i], append([]posRange{{p, p}}, r[i:]...)...)
	}
}

// has reports whether the event at p is indexed.
func (x *indexedSet) has(p uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.ranges
	i := sort.Search(len(r), func(i int) bool { return r[i].hi >= p })
	return i < len(r) && r[i].lo <= p
}

// firstMissing returns the first position from from on that the set does
// not hold.
func (x *indexedSet) firstMissing(from uint64) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.ranges
	i := sort.Search(len(r), func(i int) bool { return r[i].hi >= from })
	if i < len(r) && r[i].lo <= from {
		return r[i].hi + 1
	}
	return from
}

// forget drops the positions through through: the watermark has passed
// them.
func (x *indexedSet) forget(through uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.ranges
	i := sort.Search(len(r), func(i int) bool { return r[i].hi > through })
	r = r[i:]
	if len(r) > 0 && r[0].lo <= through {
		r[0].lo = through + 1
	}
	x.ranges = r
}
