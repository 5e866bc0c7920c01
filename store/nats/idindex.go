package nats

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The id index has two parts.
//
// Ids that are UUIDv7s (every id herald mints) are indexed in time
// buckets: stream NS_IDS holds, under subject "<ns>.ids.t<bucket>", the
// ids whose UUIDv7 timestamp falls in one bucket of 2^bucketShift
// milliseconds, many entries to a message (see encodeIDEntries). Ids are
// stored soon after they are minted, so one message written by the
// indexer carries the entries of hundreds of appends, and a lookup reads
// the few messages of one bucket. Entries are only ever added; an id
// indexed twice (by the indexer and by repair) keeps its first, lowest
// position. They stay when retention deletes their event, so such an id
// appended again is a duplicate of its first position.
//
// Other ids have one entry each in the KV bucket ns_ids (see idKey), and
// the KV bucket is also read for UUIDv7 ids, which stores of format 1
// indexed there.

// bucketShift sets the time bucket of a UUIDv7 id: its millisecond
// timestamp shifted right by this (16 ms buckets).
const bucketShift = 4

// maxIDEntriesMsg bounds the bytes of one message of entries.
const maxIDEntriesMsg = 64 << 10

// idsStreamName is the name of the stream of time-bucketed id entries.
func (s *Store) idsStreamName() string {
	return s.eventsStream[:len(s.eventsStream)-len("EVENTS")] + "IDS"
}

// idBucket returns the subject of id's time bucket, and false when id is
// not a UUIDv7 (its entry is then a KV key).
func (s *Store) idBucket(id string) (string, bool) {
	b, ok := bucketOf(id)
	if !ok {
		return "", false
	}
	return s.bucketSubject(b), true
}

// bucketOf returns the number of id's time bucket, and false when id is
// not a UUIDv7.
func bucketOf(id string) (int64, bool) {
	ms, ok := uuid7Millis(id)
	if !ok || ms < 0 {
		return 0, false
	}
	return ms >> bucketShift, true
}

// bucketSubject is the subject of time bucket b.
func (s *Store) bucketSubject(b int64) string {
	return s.cfg.namespace + ".ids.t" + strconv.FormatInt(b, 16)
}

// uuid7Millis returns the millisecond timestamp of a UUIDv7 in its
// canonical form, and false for anything else.
func uuid7Millis(id string) (int64, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7' || id[18] != '-' || id[23] != '-' {
		return 0, false
	}
	var ms int64
	for i := 0; i < 13; i++ {
		if i == 8 {
			continue
		}
		c := id[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		ms = ms<<4 | int64(v)
	}
	return ms, true
}

// encodeIDEntries appends entries to b: for each, the id's length and the
// id, then the position, as unsigned varints.
func encodeIDEntries(b []byte, entries []idxEntry) []byte {
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.id)))
		b = append(b, e.id...)
		b = binary.AppendUvarint(b, e.pos)
	}
	return b
}

// decodeIDEntries calls fn for each entry of b, and fails on a malformed
// message.
func decodeIDEntries(b []byte, fn func(id []byte, pos uint64)) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("nats store: malformed id index entry: %w", herald.ErrIncompatibleStore)
		}
		id := b[k : k+int(n)]
		b = b[k+int(n):]
		pos, k := binary.Uvarint(b)
		if k <= 0 {
			return fmt.Errorf("nats store: malformed id index entry: %w", herald.ErrIncompatibleStore)
		}
		b = b[k:]
		fn(id, pos)
	}
	return nil
}

// publishIDEntries sends the entries of UUIDv7 ids as messages of their
// buckets, asynchronously, and returns the acknowledgements to wait for.
// Entries of other ids are returned in rest, unsent.
func (s *Store) publishIDEntries(entries []idxEntry) (futs []jetstream.PubAckFuture, rest []idxEntry, err error) {
	// Buckets by number: their subjects are made once each.
	byBucket := map[int64][]idxEntry{}
	var order []int64
	for _, e := range entries {
		b, ok := bucketOf(e.id)
		if !ok {
			rest = append(rest, e)
			continue
		}
		if _, seen := byBucket[b]; !seen {
			order = append(order, b)
		}
		byBucket[b] = append(byBucket[b], e)
	}
	for _, b := range order {
		subject := s.bucketSubject(b)
		es := byBucket[b]
		for len(es) > 0 {
			var data []byte
			n := 0
			for n < len(es) && len(data) < maxIDEntriesMsg {
				data = encodeIDEntries(data, es[n:n+1])
				n++
			}
			es = es[n:]
			f, err := s.js.PublishAsync(subject, data)
			if err != nil {
				return futs, rest, err
			}
			futs = append(futs, f)
		}
	}
	return futs, rest, nil
}

// writeIDEntries writes entries to the id index (the UUIDv7 ids a message
// per time bucket, the others a KV entry each), pipelined, and waits for
// every acknowledgement; then repair knows their positions indexed (see
// indexedSet).
func (s *Store) writeIDEntries(ctx context.Context, entries []idxEntry) error {
	futs, rest, err := s.publishIDEntries(entries)
	if err != nil {
		return err
	}
	msgs := make([]*natsgo.Msg, len(rest))
	for i, e := range rest {
		msgs[i] = s.idMsg(e.id, e.pos)
	}
	more, err := s.publishAll(msgs)
	if err != nil {
		return err
	}
	if err := waitAcks(ctx, append(futs, more...)); err != nil {
		return err
	}
	positions := make([]uint64, len(entries))
	for i, e := range entries {
		positions[i] = e.pos
	}
	s.indexed.add(positions...)
	return nil
}

// publishAll sends msgs with asynchronous publishes and returns their
// acknowledgements to wait for; it stops at the first that cannot be sent.
func (s *Store) publishAll(msgs []*natsgo.Msg) ([]jetstream.PubAckFuture, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			return futs, err
		}
		futs = append(futs, f)
	}
	return futs, nil
}

// waitAcks waits for every acknowledgement of futs and returns the first
// error.
func waitAcks(ctx context.Context, futs []jetstream.PubAckFuture) error {
	var first error
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// lookupBuckets adds to out the lowest position the time buckets hold for
// each of ids (UUIDv7s), reading every message of each bucket involved.
func (s *Store) lookupBuckets(ctx context.Context, ids []string, out map[string]uint64) error {
	want := map[string][]string{} // bucket → ids
	var order []string
	for _, id := range ids {
		b, _ := s.idBucket(id)
		if _, seen := want[b]; !seen {
			order = append(order, b)
		}
		want[b] = append(want[b], id)
	}
	d, err := s.newDirectReader()
	if err != nil {
		return err
	}
	defer d.close()
	stream := s.idsStreamName()
	for _, b := range order {
		wanted := make(map[string]bool, len(want[b]))
		for _, id := range want[b] {
			wanted[id] = true
		}
		seq := uint64(1)
		for {
			msgs, more, err := d.get(ctx, stream, directReq{Seq: seq, NextFor: b, Batch: readPage})
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if n, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64); err == nil {
					seq = n + 1
				}
				err := decodeIDEntries(m.Data, func(id []byte, pos uint64) {
					if wanted[string(id)] {
						if p, ok := out[string(id)]; !ok || pos < p {
							out[string(id)] = pos
						}
					}
				})
				if err != nil {
					return err
				}
			}
			if !more || len(msgs) == 0 {
				break
			}
		}
	}
	return nil
}

// idsStream opens or creates the stream of time-bucketed id entries.
func (s *Store) idsStream(ctx context.Context) error {
	name := s.idsStreamName()
	_, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "herald event id index (UUIDv7 ids, by time bucket)",
			Subjects:    []string{s.cfg.namespace + ".ids.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     s.cfg.storage,
			Replicas:    s.cfg.replicas,
			MaxMsgs:     -1,
			MaxBytes:    -1,
			Discard:     jetstream.DiscardNew,
			AllowDirect: true,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("nats store: stream %s: %w", name, err)
	}
	return nil
}

// idMsg is the KV message of one id's entry (ids that are not UUIDv7s).
func (s *Store) idMsg(id string, pos uint64) *natsgo.Msg {
	m := natsgo.NewMsg("$KV." + s.cfg.namespace + "_ids." + idKey(id))
	m.Data = []byte(strconv.FormatUint(pos, 10))
	return m
}
