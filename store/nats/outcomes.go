package nats

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Outcome batches. A commit of few outcomes writes each under its own key
// (oc.<correlation>.<event>.<sub>, see state.go), so that a trace reads one
// key range. A commit of many — a subscription working through a backlog —
// writes them as one batch, so that handling costs one JetStream write per
// commit instead of one per event:
//
//	oi.<sub>.<batch>  the batch's index: a Bloom filter of its correlation
//	                  and event ids, its positions' range, its order
//	ob.<sub>.<batch>  the batch: its outcomes (JSON array)
//
// A query reads the indexes of the subscriptions it asks about (small
// values, one scan) and then only the batches whose filter may hold the
// correlation or event it asks for, with one direct get per 16.
//
// Later outcomes of a subscription and event replace earlier ones: each
// outcome found is ranked by its order — the stream sequence of its key,
// or of its batch's index — and the highest wins. A batch that retention
// rewrites keeps the order it had (the index's "o").
//
// The index is written before its batch, in one pipelined burst; a commit
// that fails between the two leaves an index without a batch, which
// queries skip, or (if the server refused the index but took the batch) a
// batch no query sees; either goes with its subscription. (Retention does
// not remove an index without its batch: the batch of a commit under way
// may not be stored yet.)

// defaultOutcomeBatchMin is the fewest outcomes a commit writes as a batch.
const defaultOutcomeBatchMin = 16

// maxOutcomeBatchBytes bounds one batch's encoded outcomes, well under
// JetStream's default 1 MiB message size; a larger commit writes several.
const maxOutcomeBatchBytes = 256 << 10

// bloomHashes is how many bits of the filter each id sets: with 10 bits per
// id, about 1 % of the batches without an id pass its test.
const bloomHashes = 7

// batchIndex is the value of an oi key.
type batchIndex struct {
	Bloom []byte `json:"b"`
	Lo    uint64 `json:"lo"`          // lowest position in the batch (0: unknown)
	Hi    uint64 `json:"hi"`          // highest position
	Order uint64 `json:"o,omitempty"` // rank of the batch's outcomes; 0: the index's own sequence
}

func newBloom(ids int) []byte { return make([]byte, (max(64, ids*10)+7)/8) }

// bloomBits calls f with each bit of key in a filter of m bits.
func bloomBits(key string, m uint32, f func(bit uint32) bool) bool {
	h := fnv.New64a()
	h.Write([]byte(key))
	sum := h.Sum64()
	h1, h2 := uint32(sum), uint32(sum>>32)|1
	for i := range uint32(bloomHashes) {
		if !f((h1 + i*h2) % m) {
			return false
		}
	}
	return true
}

func bloomAdd(b []byte, key string) {
	bloomBits(key, uint32(len(b))*8, func(bit uint32) bool {
		b[bit/8] |= 1 << (bit % 8)
		return true
	})
}

// bloomHas reports whether key may have been added to b; an empty filter
// (a damaged index) may hold anything.
func bloomHas(b []byte, key string) bool {
	if len(b) == 0 {
		return true
	}
	return bloomBits(key, uint32(len(b))*8, func(bit uint32) bool { return b[bit/8]&(1<<(bit%8)) != 0 })
}

func corrBloomKey(id string) string  { return "c:" + id }
func eventBloomKey(id string) string { return "e:" + id }

// batchMsgs encodes outcomes (of subscription sub, each with its
// Subscription set) as batches of at most maxOutcomeBatchBytes: an index
// message and a batch message each, in that order. order is the rank the
// batches keep (0: their index's sequence).
func (s *Store) batchMsgs(sub string, outcomes []herald.Outcome, order uint64) ([]*natsgo.Msg, error) {
	var msgs []*natsgo.Msg
	for len(outcomes) > 0 {
		body := make([]byte, 0, min(256*len(outcomes), maxOutcomeBatchBytes))
		n := 0
		for n < len(outcomes) {
			at := len(body)
			body = append(body, ',')
			var err error
			if body, err = encodeOutcome(body, &outcomes[n]); err != nil {
				return nil, fmt.Errorf("nats store: commit: %w", err)
			}
			if n > 0 && len(body)+1 > maxOutcomeBatchBytes {
				body = body[:at]
				break
			}
			n++
		}
		body[0] = '['
		body = append(body, ']')
		batch := outcomes[:n]
		outcomes = outcomes[n:]
		idx := batchIndex{Bloom: newBloom(2 * len(batch)), Order: order}
		for i, o := range batch {
			bloomAdd(idx.Bloom, corrBloomKey(o.CorrelationID))
			bloomAdd(idx.Bloom, eventBloomKey(o.EventID))
			if i == 0 || o.Position < idx.Lo {
				idx.Lo = o.Position
			}
			idx.Hi = max(idx.Hi, o.Position)
		}
		ib, err := json.Marshal(idx)
		if err != nil {
			return nil, fmt.Errorf("nats store: commit: %w", err)
		}
		id := nuid.Next()
		im := natsgo.NewMsg(s.subsSubject(batchIndexKey(sub, id)))
		im.Data = ib
		bm := natsgo.NewMsg(s.subsSubject(batchKey(sub, id)))
		bm.Data = body
		msgs = append(msgs, im, bm)
	}
	return msgs, nil
}

func batchIndexKey(sub, id string) string { return "oi." + encodeToken(sub) + "." + id }
func batchKey(sub, id string) string      { return "ob." + encodeToken(sub) + "." + id }

// ranked is an outcome found by a query, with its rank (see the top).
type ranked struct {
	o     herald.Outcome
	order uint64
}

// outcomeSet keeps the latest outcome of each subscription and event.
type outcomeSet map[[2]string]ranked

func (os outcomeSet) add(o herald.Outcome, order uint64) {
	k := [2]string{o.Subscription, o.EventID}
	if r, ok := os[k]; !ok || order >= r.order {
		os[k] = ranked{o, order}
	}
}

// foundBatch is a batch a scan of the indexes found: its key suffix
// ("<sub>.<batch>"), index and rank.
type foundBatch struct {
	suffix string
	idx    batchIndex
	order  uint64
}

// batchIndexes returns the indexes of the batches of sub ("" for every
// subscription) for which keep says yes.
func (s *Store) batchIndexes(ctx context.Context, sub string, keep func(batchIndex) bool) ([]foundBatch, error) {
	tok := "*"
	if sub != "" {
		tok = encodeToken(sub)
	}
	var out []foundBatch
	err := s.scanBucketSeq(ctx, s.cfg.namespace+"_subs", "oi."+tok+".*", func(key string, seq uint64, v []byte) error {
		var idx batchIndex
		if err := json.Unmarshal(v, &idx); err != nil {
			return fmt.Errorf("nats store: outcome batch index %q is corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		if keep(idx) {
			out = append(out, foundBatch{suffix: strings.TrimPrefix(key, "oi."), idx: idx, order: cmp.Or(idx.Order, seq)})
		}
		return nil
	})
	return out, err
}

// batchesPerGet is how many batches readBatches asks for at once: an
// answer holds at most 4 MiB of them.
const batchesPerGet = 16

// readBatches reads the batches of found (a batch whose index outlived
// it is skipped) and calls fn with each one's outcomes.
func (s *Store) readBatches(ctx context.Context, found []foundBatch, fn func(b foundBatch, outcomes []herald.Outcome) error) error {
	for chunk := range slices.Chunk(found, batchesPerGet) {
		subjects := make([]string, len(chunk))
		bySubject := make(map[string]foundBatch, len(chunk))
		for i, b := range chunk {
			subjects[i] = s.subsSubject("ob." + b.suffix)
			bySubject[subjects[i]] = b
		}
		msgs, err := s.multiLast(ctx, s.subsStream, subjects)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			b, ok := bySubject[m.Header.Get("Nats-Subject")]
			if !ok {
				continue
			}
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue
			}
			var outs []herald.Outcome
			if err := json.Unmarshal(m.Data, &outs); err != nil {
				return fmt.Errorf("nats store: outcome batch %q is corrupt: %w", b.suffix, herald.ErrIncompatibleStore)
			}
			if err := fn(b, outs); err != nil {
				return err
			}
		}
	}
	return nil
}

// Outcomes implements herald.SubscriptionState: the outcomes under keys of
// their own (one key range by correlation id, a scan of the outcome keys
// otherwise) and those in batches that may hold what q asks for.
func (s *Store) Outcomes(ctx context.Context, q herald.OutcomeQuery) ([]herald.Outcome, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	corr, ev, sub := "*", "*", "*"
	if q.CorrelationID != "" {
		corr = encodeToken(q.CorrelationID)
	}
	if q.EventID != "" {
		ev = encodeToken(q.EventID)
	}
	if q.Subscription != "" {
		sub = encodeToken(q.Subscription)
	}
	found := outcomeSet{}
	err := s.scanBucketSeq(ctx, s.cfg.namespace+"_subs", "oc."+corr+"."+ev+"."+sub, func(key string, seq uint64, v []byte) error {
		var o herald.Outcome
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("nats store: outcome %q is corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		found.add(o, seq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	batches, err := s.batchIndexes(ctx, q.Subscription, func(idx batchIndex) bool {
		return (q.CorrelationID == "" || bloomHas(idx.Bloom, corrBloomKey(q.CorrelationID))) &&
			(q.EventID == "" || bloomHas(idx.Bloom, eventBloomKey(q.EventID)))
	})
	if err != nil {
		return nil, err
	}
	err = s.readBatches(ctx, batches, func(b foundBatch, outs []herald.Outcome) error {
		for _, o := range outs {
			if (q.CorrelationID == "" || o.CorrelationID == q.CorrelationID) &&
				(q.EventID == "" || o.EventID == q.EventID) &&
				(q.Subscription == "" || o.Subscription == q.Subscription) {
				found.add(o, b.order)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]herald.Outcome, 0, len(found))
	for _, r := range found {
		out = append(out, r.o)
	}
	slices.SortFunc(out, func(a, b herald.Outcome) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), strings.Compare(a.Subscription, b.Subscription), strings.Compare(a.EventID, b.EventID))
	})
	if limit := herald.OutcomeLimit(q.Limit); len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// pruneBatches removes the outcomes of the events retention deleted (by
// position and id) from the batches that hold them: a batch left empty is
// deleted, any other is written again without them (keeping its rank) and
// the old one deleted.
func (s *Store) pruneBatches(ctx context.Context, doomed []doomedEvent) error {
	lo, hi := doomed[0].pos, doomed[0].pos
	ids := make(map[string]bool, len(doomed))
	for _, e := range doomed {
		lo, hi = min(lo, e.pos), max(hi, e.pos)
		ids[e.id] = true
	}
	batches, err := s.batchIndexes(ctx, "", func(idx batchIndex) bool {
		return idx.Lo == 0 || idx.Lo <= hi && idx.Hi >= lo
	})
	if err != nil || len(batches) == 0 {
		return err
	}
	return s.readBatches(ctx, batches, func(b foundBatch, outs []herald.Outcome) error {
		kept := slices.DeleteFunc(slices.Clone(outs), func(o herald.Outcome) bool { return ids[o.EventID] })
		if len(kept) == len(outs) {
			return nil
		}
		if len(kept) > 0 {
			msgs, err := s.batchMsgs(kept[0].Subscription, kept, b.order)
			if err != nil {
				return err
			}
			if err := s.writeOutcomes(ctx, msgs); err != nil {
				return err
			}
		}
		for _, k := range []string{"oi." + b.suffix, "ob." + b.suffix} {
			if err := s.purgeSubject(ctx, s.subsStream, s.subsSubject(k)); err != nil {
				return err
			}
		}
		return nil
	})
}
