package nats

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Keys of the subscription-state bucket. Tokens are encodeToken forms, so
// a name with dots stays one token:
//
//	cp.<sub>                       checkpoint (decimal position)
//	oc.<correlation>.<event>.<sub> outcome (JSON) of a commit of few
//	oi.<sub>.<batch>, ob.<sub>.<batch> outcomes of a commit of many (see outcomes.go)
//	dl.<sub>.<dead-letter id>      dead letter (JSON)
//	ae.<sub>.<event>.<attempt>     failed attempt of a retried event (JSON)
//
// Outcomes are keyed by correlation first so a trace reads one key range.
//
// A shared subscription retries by negative acknowledgement, so each
// attempt may run in a new delivery, even in another process, which knows
// only its own failure. Commit therefore keeps each failed attempt it is
// told of (an outcome "retrying") under an ae key, and completes a dead
// letter's history with them: a dead letter lists every failed attempt,
// as on the stores of one process. The keys of an event go once it ends
// (succeeded, dead-lettered or discarded).

func cpKey(sub string) string { return "cp." + encodeToken(sub) }

func ocKey(o *herald.Outcome) string {
	return "oc." + encodeToken(o.CorrelationID) + "." + encodeToken(o.EventID) + "." + encodeToken(o.Subscription)
}

func dlKey(sub, id string) string { return "dl." + encodeToken(sub) + "." + encodeToken(id) }

// aePrefix is the key prefix of the failed attempts of event in sub.
func aePrefix(sub, event string) string {
	return "ae." + encodeToken(sub) + "." + encodeToken(event) + "."
}

func (s *Store) subsSubject(key string) string {
	return "$KV." + s.cfg.namespace + "_subs." + key
}

// scanBucket yields the live values of the KV bucket behind stream whose
// keys match filter (a key filter, without the bucket prefix), in the order
// they were written.
func (s *Store) scanBucket(ctx context.Context, bucket, filter string, fn func(key string, value []byte) error) error {
	return s.scanBucketSeq(ctx, bucket, filter, func(key string, _ uint64, v []byte) error { return fn(key, v) })
}

// scanBucketSeq is scanBucket that also passes each value's stream
// sequence.
func (s *Store) scanBucketSeq(ctx context.Context, bucket, filter string, fn func(key string, seq uint64, value []byte) error) error {
	stream := "KV_" + bucket
	prefix := "$KV." + bucket + "."
	seq := uint64(1)
	for {
		msgs, more, err := s.directBatch(ctx, stream, seq, prefix+filter, readPage)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			n, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err == nil {
				seq = n + 1
			}
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue
			}
			key := strings.TrimPrefix(m.Header.Get("Nats-Subject"), prefix)
			if err := fn(key, n, m.Data); err != nil {
				return err
			}
		}
		if !more || len(msgs) == 0 {
			return nil
		}
	}
}

// Checkpoint implements herald.SubscriptionState.
func (s *Store) Checkpoint(ctx context.Context, sub string) (uint64, bool, error) {
	if err := s.check(); err != nil {
		return 0, false, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	e, err := s.subs.Get(ctx, cpKey(sub))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.mapErr("reading a checkpoint", err)
	}
	pos, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("nats store: checkpoint of %q is corrupt: %w", sub, herald.ErrIncompatibleStore)
	}
	return pos, true, nil
}

// Checkpoints implements herald.SubscriptionState.
func (s *Store) Checkpoints(ctx context.Context) (map[string]uint64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	out := map[string]uint64{}
	err := s.scanBucket(ctx, s.cfg.namespace+"_subs", "cp.*", func(key string, v []byte) error {
		sub, ok := decodeToken(strings.TrimPrefix(key, "cp."))
		pos, err := strconv.ParseUint(string(v), 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("nats store: checkpoint key %q is corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		out[sub] = pos
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Commit implements herald.SubscriptionState. A commit of outcomes (and
// failed attempts) only — the usual one — writes them with pipelined
// asynchronous publishes (from 16 outcomes on as one batch: two writes,
// see outcomes.go) and, once every one is acknowledged, the checkpoint: a checkpoint is never saved without its outcomes, and a
// commit that fails part way may leave some of its outcomes written
// without the checkpoint, which only means that those events are delivered
// again (at least once) and their outcomes written again. A commit with
// dead letters or resolved ones is one JetStream atomic batch on the
// subscription-state bucket (split when larger than one batch takes, with
// the checkpoint in the last), so that a dead letter is never recorded for
// an event whose commit otherwise failed. An outcome of a delivery that
// was not the event's first (Attempts above its History) gets the failed
// attempts of the earlier deliveries, if any, into its History from those
// the store keeps, up to herald.MaxOutcomeHistory: one read for each such
// outcome, none for an event handled at its first delivery.
func (s *Store) Commit(ctx context.Context, sub string, p herald.Progress) error {
	if err := s.check(); err != nil {
		return err
	}
	if sub == "" {
		return fmt.Errorf("%w: empty subscription name", herald.ErrInvalidEvent)
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	var msgs []*natsgo.Msg
	put := func(key string, v []byte) {
		m := natsgo.NewMsg(s.subsSubject(key))
		m.Data = v
		msgs = append(msgs, m)
	}
	// The failed attempts this commit reports, and the events it ends, by
	// attempt-key prefix.
	var failed map[string][]herald.AttemptError
	var ended []string
	batched := len(p.Outcomes) >= s.cfg.outcomeBatchMin
	var batch []herald.Outcome
	for _, o := range p.Outcomes {
		if o.Subscription == "" {
			o.Subscription = sub
		}
		prefix := aePrefix(o.Subscription, o.EventID)
		if o.Attempts > 1 && len(o.History) < herald.MaxOutcomeHistory && (len(o.History) == 0 || o.History[0].Attempt > 1) {
			// A shared delivery knows only its own failed attempts: the
			// earlier ones are under prefix (or in this commit).
			h, err := s.attemptHistory(ctx, sub, prefix, o.History, p.Outcomes)
			if err != nil {
				return err
			}
			o.History = herald.OutcomeHistory(h)
		}
		if batched && o.Subscription == sub {
			batch = append(batch, o)
		} else {
			b, err := encodeOutcome(nil, &o)
			if err != nil {
				return fmt.Errorf("nats store: commit: %w", err)
			}
			put(ocKey(&o), b)
		}
		switch {
		case o.Status == herald.OutcomeRetrying:
			if failed == nil {
				failed = map[string][]herald.AttemptError{}
			}
			failed[prefix] = append(failed[prefix], retryingAttempt(&o))
		case o.Attempts > 1:
			ended = append(ended, prefix)
		}
	}
	for _, prefix := range ended {
		delete(failed, prefix) // ended in this commit: nothing to keep
	}
	if len(batch) > 0 {
		bm, err := s.batchMsgs(sub, batch, 0)
		if err != nil {
			return err
		}
		msgs = append(msgs, bm...)
	}
	for prefix, errs := range failed {
		for _, ae := range errs {
			b, err := json.Marshal(ae)
			if err != nil {
				return fmt.Errorf("nats store: commit: %w", err)
			}
			put(prefix+strconv.Itoa(ae.Attempt), b)
		}
	}
	for _, d := range p.DeadLetters {
		if d.Subscription == "" {
			d.Subscription = sub
		}
		if d.Event == nil {
			return fmt.Errorf("%w: dead letter without an event", herald.ErrInvalidEvent)
		}
		if d.ID == "" {
			d.ID = herald.DeadLetterID(d.Subscription, d.Event.ID)
		}
		errs, err := s.attemptHistory(ctx, sub, aePrefix(d.Subscription, d.Event.ID), d.Errors, p.Outcomes)
		if err != nil {
			return err
		}
		d.Errors = herald.DeadLetterHistory(errs)
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("nats store: commit: %w", err)
		}
		put(dlKey(d.Subscription, d.ID), b)
	}
	for _, id := range p.Resolved {
		m := natsgo.NewMsg(s.subsSubject(dlKey(sub, id)))
		m.Header.Set("KV-Operation", "DEL")
		msgs = append(msgs, m)
	}
	// The subscription's counts as this handle has them: the whole
	// value, so a commit tried again writes the same.
	counted := func(bool) {}
	if !p.Counts.IsZero() {
		key, v, done, err := s.countEntry(ctx, sub, p.Counts)
		if err != nil {
			return err
		}
		put(key, v)
		counted = done
	}
	cp := natsgo.NewMsg(s.subsSubject(cpKey(sub)))
	cp.Data = []byte(strconv.FormatUint(p.Checkpoint, 10))
	if len(p.DeadLetters) == 0 && len(p.Resolved) == 0 {
		// Outcomes alone: pipelined, then the checkpoint.
		if err := s.writeOutcomes(ctx, msgs); err != nil {
			counted(false)
			return err
		}
		msgs = nil
	}
	err := s.writeState(ctx, append(msgs, cp))
	counted(err == nil)
	if err != nil {
		return err
	}
	// The attempts of ended events are no longer needed. Removing them is
	// tidying: one that stays is never merged into a history it is
	// already part of.
	for _, prefix := range ended {
		_ = s.purgeSubject(ctx, s.subsStream, s.subsSubject(prefix+"*"))
	}
	return nil
}

// retryingAttempt is the failed attempt a retrying outcome reports: its
// last.
func retryingAttempt(o *herald.Outcome) herald.AttemptError {
	return herald.AttemptError{Attempt: o.Attempts, At: o.UpdatedAt, Duration: o.Duration, Error: o.LastError}
}

// attemptHistory completes errs, the failed attempts a dead letter's or
// an outcome's last delivery knew of, with the earlier attempts stored
// under prefix or reported as retrying in outcomes (the same commit, of
// sub), in attempt order.
func (s *Store) attemptHistory(ctx context.Context, sub, prefix string, errs []herald.AttemptError, outcomes []herald.Outcome) ([]herald.AttemptError, error) {
	first := math.MaxInt
	for _, ae := range errs {
		first = min(first, ae.Attempt)
	}
	if first <= 1 {
		return errs, nil // complete already
	}
	earlier := map[int]herald.AttemptError{}
	err := s.scanBucket(ctx, s.cfg.namespace+"_subs", prefix+"*", func(key string, v []byte) error {
		var ae herald.AttemptError
		if err := json.Unmarshal(v, &ae); err != nil {
			return fmt.Errorf("nats store: attempt %q is corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		if ae.Attempt < first {
			earlier[ae.Attempt] = ae
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, o := range outcomes {
		if o.Status == herald.OutcomeRetrying && o.Attempts < first && aePrefix(cmp.Or(o.Subscription, sub), o.EventID) == prefix {
			earlier[o.Attempts] = retryingAttempt(&o)
		}
	}
	if len(earlier) == 0 {
		return errs, nil
	}
	out := slices.Collect(maps.Values(earlier))
	slices.SortFunc(out, func(a, b herald.AttemptError) int { return cmp.Compare(a.Attempt, b.Attempt) })
	return append(out, errs...), nil
}

// writeOutcomes writes msgs (outcomes and failed attempts) to the state
// bucket with pipelined asynchronous publishes and waits for every
// acknowledgement. It is not atomic: after an error some may be written,
// which is harmless as the checkpoint is not (the events are delivered
// again and their outcomes written again).
func (s *Store) writeOutcomes(ctx context.Context, msgs []*natsgo.Msg) error {
	futs, err := s.publishAll(msgs)
	if err != nil {
		return s.mapErr("committing", err)
	}
	if err := waitAcks(ctx, futs); err != nil {
		return s.mapErr("committing", err)
	}
	return nil
}

// writeState writes msgs to the state bucket: one publish, or atomic
// batches of at most maxBatch messages in order.
func (s *Store) writeState(ctx context.Context, msgs []*natsgo.Msg) error {
	if len(msgs) == 1 {
		if _, err := s.js.PublishMsg(ctx, msgs[0]); err != nil {
			return s.mapErr("committing", err)
		}
		return nil
	}
	for len(msgs) > 0 {
		n := min(len(msgs), s.cfg.maxBatch)
		chunk := msgs[:n]
		msgs = msgs[n:]
		for attempt := 0; ; attempt++ {
			fresh := make([]*natsgo.Msg, len(chunk))
			for i, m := range chunk {
				c := natsgo.NewMsg(m.Subject)
				c.Data = m.Data
				if op := m.Header.Get("KV-Operation"); op != "" {
					c.Header.Set("KV-Operation", op)
				}
				fresh[i] = c
			}
			_, err := s.publishAtomic(ctx, fresh)
			if err == nil {
				break
			}
			if !errors.Is(err, errRetry) || attempt >= 8 {
				if errors.Is(err, errRetry) {
					err = fmt.Errorf("nats store: committing: %w", herald.ErrBackpressure)
				}
				return err
			}
			if err := sleepCtx(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteSubscription implements herald.SubscriptionState: it purges the
// subscription's checkpoint, outcomes, failed attempts and counts (every
// handle's), and removes its shared JetStream consumers, if it had any.
func (s *Store) DeleteSubscription(ctx context.Context, sub string) error {
	if err := s.check(); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	t := encodeToken(sub)
	for _, key := range []string{cpKey(sub), "oc.*.*." + t, "oi." + t + ".*", "ob." + t + ".*", "ae." + t + ".>"} {
		if err := s.purgeSubject(ctx, s.subsStream, s.subsSubject(key)); err != nil {
			return err
		}
	}
	if err := s.deleteCounts(ctx, sub); err != nil {
		return err
	}
	return s.deleteSharedConsumers(ctx, sub)
}

func (s *Store) purgeSubject(ctx context.Context, stream, subject string) error {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return s.mapErr("deleting", err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return s.mapErr("deleting", err)
	}
	return nil
}

// deadLetters returns every dead letter matching q (ignoring Limit) with
// its key, oldest first.
func (s *Store) deadLetters(ctx context.Context, q herald.DeadLetterQuery) ([]herald.DeadLetter, []string, error) {
	filter := "dl.>"
	if q.Subscription != "" {
		filter = "dl." + encodeToken(q.Subscription) + ".*"
	}
	ids := map[string]bool{}
	for _, id := range q.IDs {
		ids[id] = true
	}
	type entry struct {
		d   herald.DeadLetter
		key string
	}
	var es []entry
	err := s.scanBucket(ctx, s.cfg.namespace+"_subs", filter, func(key string, v []byte) error {
		var d herald.DeadLetter
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("nats store: dead letter %q is corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		switch {
		case len(ids) > 0 && !ids[d.ID]:
		case q.EventID != "" && (d.Event == nil || d.Event.ID != q.EventID):
		case q.OnlyRedrive && !d.Redrive:
		default:
			es = append(es, entry{d, key})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		return cmp.Or(a.d.DeadAt.Compare(b.d.DeadAt), strings.Compare(a.d.ID, b.d.ID))
	})
	out := make([]herald.DeadLetter, len(es))
	keys := make([]string, len(es))
	for i, e := range es {
		out[i], keys[i] = e.d, e.key
	}
	return out, keys, nil
}

// DeadLetters implements herald.SubscriptionState.
func (s *Store) DeadLetters(ctx context.Context, q herald.DeadLetterQuery) ([]herald.DeadLetter, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	out, _, err := s.deadLetters(ctx, q)
	if err != nil {
		return nil, err
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// DeadLetterCounts implements herald.SubscriptionState: it lists the
// dead letters' keys (their headers only: no event crosses the wire).
func (s *Store) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	keys, err := s.subs.ListKeysFiltered(ctx, "dl.>")
	if err != nil {
		return nil, s.mapErr("counting dead letters", err)
	}
	defer keys.Stop()
	n := make(map[string]int)
	for k := range keys.Keys() {
		tok, _, ok := strings.Cut(strings.TrimPrefix(k, "dl."), ".")
		sub, valid := decodeToken(tok)
		if !ok || !valid {
			return nil, fmt.Errorf("nats store: dead letter key %q is corrupt: %w", k, herald.ErrIncompatibleStore)
		}
		n[sub]++
	}
	if ctx.Err() != nil {
		return nil, s.mapErr("counting dead letters", ctx.Err())
	}
	return n, nil
}

// RedriveDeadLetters implements herald.SubscriptionState.
func (s *Store) RedriveDeadLetters(ctx context.Context, q herald.DeadLetterQuery) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	dls, keys, err := s.deadLetters(ctx, q)
	if err != nil {
		return 0, err
	}
	if q.Limit > 0 && len(dls) > q.Limit {
		dls, keys = dls[:q.Limit], keys[:q.Limit]
	}
	for i := range dls {
		dls[i].Redrive = true
		b, err := json.Marshal(dls[i])
		if err != nil {
			return i, err
		}
		if _, err := s.subs.Put(ctx, keys[i], b); err != nil {
			return i, s.mapErr("marking a redrive", err)
		}
	}
	return len(dls), nil
}

// DeleteDeadLetters implements herald.SubscriptionState.
func (s *Store) DeleteDeadLetters(ctx context.Context, q herald.DeadLetterQuery) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	dls, keys, err := s.deadLetters(ctx, q)
	if err != nil {
		return 0, err
	}
	if q.Limit > 0 && len(dls) > q.Limit {
		keys = keys[:q.Limit]
	}
	for i, k := range keys {
		if err := s.purgeSubject(ctx, s.subsStream, s.subsSubject(k)); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}
