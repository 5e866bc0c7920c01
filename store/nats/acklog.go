package nats

import "time"

// ackLog is the set of a partition's events (by stream sequence) that one
// process acknowledged, each kept at least an ack wait (see
// partition.ours): a bitmap in chunks of 256 sequences, so that a busy
// partition costs a few bits an event. It is guarded by the shared
// consumer's lock.
type ackLog struct {
	chunks map[uint64]*ackChunk // by sequence / 256
	adds   int                  // since the last forget
}

type ackChunk struct {
	bits [4]uint64
	last time.Time // of the chunk's latest ack
}

// add records an ack of seq at now.
func (l *ackLog) add(seq uint64, now time.Time) {
	if l.chunks == nil {
		l.chunks = map[uint64]*ackChunk{}
	}
	ch := l.chunks[seq>>8]
	if ch == nil {
		ch = &ackChunk{}
		l.chunks[seq>>8] = ch
	}
	ch.bits[seq>>6&3] |= 1 << (seq & 63)
	ch.last = now
	l.adds++
}

// has reports whether seq was acked (and not forgotten yet).
func (l *ackLog) has(seq uint64) bool {
	ch := l.chunks[seq>>8]
	return ch != nil && ch.bits[seq>>6&3]&(1<<(seq&63)) != 0
}

// forget drops the chunks whose latest ack is older than keep and that
// hold no event for which held reports true.
func (l *ackLog) forget(now time.Time, keep time.Duration, held func(seq uint64) bool) {
	l.adds = 0
	for k, ch := range l.chunks {
		if now.Sub(ch.last) < keep || ch.holds(k, held) {
			continue
		}
		delete(l.chunks, k)
	}
}

// holds reports whether held is true for an event of chunk k.
func (ch *ackChunk) holds(k uint64, held func(seq uint64) bool) bool {
	for w, bits := range ch.bits {
		for b := range 64 {
			if bits&(1<<b) != 0 && held(k<<8|uint64(w)<<6|uint64(b)) {
				return true
			}
		}
	}
	return false
}
