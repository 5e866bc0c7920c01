package herald

import (
	"slices"
	"sync"
)

// fanout hands published events to the bus's ephemeral subscriptions in
// log order without holding a lock while the store appends.
//
// Every append that fans out takes a ticket before it calls the store and
// ends it once the store answered. An append that returns has its
// positions; any append started after that gets larger positions (the
// store assigns them in commit order), so an event can be handed off once
// every append whose ticket was taken before its own append returned has
// ended: nothing with a smaller position can come any more. Ending
// appends hold what they stored until then and the first one that finds
// them ready hands them all off, smallest position first.
//
// The lock is held only to count tickets and to queue events on the
// subscriptions, which never blocks: room was reserved before the append
// (Subscription.reserve).
type fanout struct {
	mu      sync.Mutex
	next    uint64   // the next ticket to give
	low     uint64   // every ticket below it has ended
	ended   []uint64 // tickets at or above low that ended, sorted
	pending []fanEntry
}

// fanEntry is what one append stored and has not handed off yet.
type fanEntry struct {
	pos      uint64 // a position of the append (they are contiguous)
	boundary uint64 // the tickets given when the append returned
	one      *Event
	batch    []*Event
	res      []AppendResult // batch's results
	subs     []*Subscription
	match    uint64 // for one: which of subs[:64] take it
}

// begin takes a ticket before an append.
func (f *fanout) begin() uint64 {
	f.mu.Lock()
	t := f.next
	f.next++
	f.mu.Unlock()
	return t
}

// end ends ticket t. When the append stored events, e says what to hand
// off and to whom; a failed or duplicate append passes a zero entry.
func (f *fanout) end(t uint64, e fanEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t == f.low {
		f.low++
		for len(f.ended) > 0 && f.ended[0] == f.low {
			f.ended = f.ended[1:]
			f.low++
		}
		if len(f.ended) == 0 {
			f.ended = f.ended[:0:0]
		}
	} else {
		i, _ := slices.BinarySearch(f.ended, t)
		f.ended = slices.Insert(f.ended, i, t)
	}
	stored := e.one != nil || e.batch != nil
	if stored && len(f.pending) == 0 && f.low == f.next {
		e.deliver() // no other append under way: the common case
		return
	}
	if stored {
		e.boundary = f.next
		i, _ := slices.BinarySearchFunc(f.pending, e.pos, func(p fanEntry, pos uint64) int {
			switch {
			case p.pos < pos:
				return -1
			case p.pos > pos:
				return 1
			}
			return 0
		})
		f.pending = slices.Insert(f.pending, i, e)
	}
	// Everything up to the largest position whose append is safe goes.
	var upTo uint64
	for i := range f.pending {
		if p := &f.pending[i]; p.boundary <= f.low && p.pos > upTo {
			upTo = p.pos
		}
	}
	n := 0
	for n < len(f.pending) && f.pending[n].pos <= upTo {
		f.pending[n].deliver()
		f.pending[n] = fanEntry{}
		n++
	}
	if n > 0 {
		f.pending = slices.Delete(f.pending, 0, n)
	}
}

// deliver queues the entry's events on the subscriptions that take them.
func (e *fanEntry) deliver() {
	if e.one != nil {
		for i, s := range e.subs {
			if i < 64 && e.match&(1<<i) != 0 || i >= 64 && MatchName(s.pattern, e.one.Name) {
				s.push(e.one)
			}
		}
		return
	}
	for j, ev := range e.batch {
		if e.res[j].Duplicate {
			continue
		}
		for _, s := range e.subs {
			if MatchName(s.pattern, ev.Name) {
				s.push(ev)
			}
		}
	}
}
