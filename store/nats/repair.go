package nats

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watermarkKey holds, in the ids bucket, the position through which every
// stored event is known to be indexed. Event id keys never contain '=' (see
// idKey), so it cannot collide with one.
const watermarkKey = "=watermark"

// repair indexes every event stored after the watermark (UUIDv7 ids in
// their time buckets whether or not they are there already, other ids
// when the KV bucket lacks them), then moves the watermark to the head it
// started from. Concurrent repairs (in other processes too) are harmless:
// index entries are only added, never replaced, a lookup keeps an id's
// lowest position, and the watermark moves by compare-and-set.
//
// The events this Store indexed itself (s.indexed) are not indexed
// again: reading starts at the first position after the watermark it does
// not know indexed, and the events it knows among those read are skipped.
func (s *Store) repair(ctx context.Context) error {
	s.repairMu.Lock()
	defer s.repairMu.Unlock()
	return s.repairLocked(ctx, false)
}

// repairKnown moves the watermark to the head when this Store indexed
// every event after it itself, and otherwise does nothing: it reads no
// event, and does not wait for a repair under way.
func (s *Store) repairKnown(ctx context.Context) error {
	if !s.repairMu.TryLock() {
		return nil
	}
	defer s.repairMu.Unlock()
	return s.repairLocked(ctx, true)
}

// repairLocked is repair (or, with onlyKnown, repairKnown); s.repairMu is
// held.
func (s *Store) repairLocked(ctx context.Context, onlyKnown bool) error {
	var wm, rev uint64
	e, err := s.ids.Get(ctx, watermarkKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return s.mapErr("reading the index watermark", err)
	default:
		rev = e.Revision()
		wm, _ = strconv.ParseUint(string(e.Value()), 10, 64)
	}
	info, err := s.events.Info(ctx)
	if err != nil {
		return s.mapErr("repairing the index", err)
	}
	head := info.State.LastSeq
	if head <= wm {
		return nil
	}
	seq := s.indexed.firstMissing(max(wm+1, info.State.FirstSeq))
	if seq <= head && onlyKnown {
		return nil
	}
	if seq <= head {
		if err := s.repairFrom(ctx, seq, head); err != nil {
			return err
		}
	}
	v := []byte(strconv.FormatUint(head, 10))
	if rev == 0 {
		_, err = s.ids.Create(ctx, watermarkKey, v)
	} else {
		_, err = s.ids.Update(ctx, watermarkKey, v, rev)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || (apiErr.ErrorCode != errCodeWrongLastSeq && apiErr.ErrorCode != errCodeWrongLastSeqConstant) {
			return s.mapErr("moving the index watermark", err)
		}
	}
	s.indexed.forget(head)
	return nil
}

// repairFrom indexes the events from seq through head that this Store
// does not know indexed.
func (s *Store) repairFrom(ctx context.Context, seq, head uint64) error {
	d, err := s.newDirectReader()
	if err != nil {
		return err
	}
	defer d.close()
	if head-seq >= readPage {
		// Most of it streams as headers through an ordered consumer;
		// direct gets read what is left.
		if seq, err = s.repairStream(ctx, seq, head); err != nil {
			return err
		}
	}
	for seq <= head {
		msgs, more, err := d.get(ctx, s.eventsStream, directReq{Seq: seq, NextFor: s.subj.all(), Batch: readPage})
		if err != nil {
			return err
		}
		var page []idxEntry
		for _, m := range msgs {
			n, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil || n > head {
				more = false
				break
			}
			seq = n + 1
			if id := m.Header.Get(hdrMsgID); id != "" && !s.indexed.has(n) {
				page = append(page, idxEntry{id, n})
			}
		}
		if err := s.indexPage(ctx, page); err != nil {
			return err
		}
		if !more || len(msgs) == 0 {
			break
		}
	}
	return nil
}

// indexPage writes the index entries of one page of stored events: those
// of UUIDv7 ids to their time buckets whether indexed already or not (a
// message per bucket; a lookup keeps the lowest position), and those of
// other ids that the KV bucket lacks (reading it is cheaper than writing
// it).
func (s *Store) indexPage(ctx context.Context, page []idxEntry) error {
	var other []string
	for _, e := range page {
		if _, ok := s.idBucket(e.id); !ok {
			other = append(other, e.id)
		}
	}
	futs, rest, err := s.publishIDEntries(page)
	if err != nil {
		return s.mapErr("repairing the index", err)
	}
	found, err := s.lookupIDs(ctx, other, false)
	if err != nil {
		return err
	}
	if err := waitAcks(ctx, futs); err != nil {
		return s.mapErr("repairing the index", err)
	}
	futs = futs[:0]
	for _, u := range rest {
		if _, ok := found[u.id]; ok {
			continue
		}
		pm := s.idMsg(u.id, u.pos)
		pm.Header.Set(hdrExpLastSubjSeq, "0") // create only
		f, err := s.js.PublishMsgAsync(pm)
		if err != nil {
			return s.mapErr("repairing the index", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case <-f.Err(): // already indexed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// repairPage is how many entries repairStream indexes at once.
const repairPage = 1024

// repairStream indexes the events from seq through head, reading only
// their headers through an ordered consumer, and returns the position
// after the last one it indexed. It stops early, leaving the rest to
// direct gets, when the consumer has nothing more pending or no event has
// come for replayIdle.
func (s *Store) repairStream(ctx context.Context, seq, head uint64) (uint64, error) {
	cons, err := s.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		HeadersOnly:       true,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return seq, nil // direct gets do it all
	}
	type page struct {
		entries []idxEntry
		next    uint64 // the position after the page
		last    bool
	}
	ch := make(chan page, 4)
	stop := make(chan struct{})
	// After a reset the consumer calls back from a new goroutine, while
	// the last call may still be waiting to hand its page over.
	var mu sync.Mutex
	var cur page
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		md, err := m.Metadata()
		if err != nil {
			return // the page ends short; direct gets read the rest
		}
		n := md.Sequence.Stream
		switch {
		case cur.last:
			return // sent already
		case n > head:
			cur.last = true // past the head: what is gathered ends it
		default:
			if id := m.Headers().Get(hdrMsgID); id != "" && !s.indexed.has(n) {
				cur.entries = append(cur.entries, idxEntry{id, n})
			}
			cur.next = max(cur.next, n+1)
			cur.last = md.NumPending == 0 || n >= head
		}
		if len(cur.entries) < repairPage && !cur.last {
			return
		}
		select {
		case ch <- cur:
		case <-stop:
		}
		cur = page{last: cur.last}
	}, jetstream.PullMaxMessages(repairPage))
	if err != nil {
		return seq, nil
	}
	defer func() {
		close(stop)
		cc.Stop()
	}()
	err = follow(ctx, s.closing, ch, func(p page) (bool, error) {
		if err := s.indexPage(ctx, p.entries); err != nil {
			return true, err
		}
		seq = max(seq, p.next)
		return p.last, nil
	})
	return seq, err
}

// repairLoop runs repair every quarter of the duplicate window until Close.
func (s *Store) repairLoop() {
	defer s.wg.Done()
	every := max(s.cfg.dupWindow/4, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.base, every)
			switch err := s.repair(ctx); {
			case err == nil:
				s.repairLog.ok(s, "repairing the id index")
			case !s.closed.Load():
				s.repairLog.fail(s, "repairing the id index", err)
			}
			cancel()
		}
	}
}
