package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/nats-io/nats.go/jetstream"
)

type pruneEntry struct {
	pos     uint64
	id      string
	subject string
	version uint64
	ts      time.Time
	rule    int
}

// Prune implements herald.Store. It reads the whole log once, so it is
// meant to run now and then (the server runs it hourly), not per event.
// Deleted events leave a gap in the stream: positions are never reused. A
// leading run of deleted events is purged in one request; others are
// deleted one by one.
func (s *Store) Prune(ctx context.Context, rules []herald.RetentionRule, now time.Time) (herald.PruneResult, error) {
	var res herald.PruneResult
	if err := s.check(); err != nil {
		return res, err
	}
	if len(rules) == 0 {
		return res, nil
	}
	for _, r := range rules {
		if err := herald.ValidatePattern(r.Pattern); err != nil {
			return res, err
		}
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return res, err
	}
	var minCP uint64
	haveCP := false
	for _, p := range cps {
		if !haveCP || p < minCP {
			minCP, haveCP = p, true
		}
	}
	// Shared subscriptions: their checkpoints are informational (each
	// process commits its own); the JetStream consumers' ack floors say
	// what is handled.
	floors, err := s.sharedFloors(ctx)
	if err != nil {
		return res, err
	}
	snaps := map[string]uint64{}
	vals, err := s.ListValues(ctx, herald.SnapshotBucket)
	if err != nil {
		return res, err
	}
	for subject, v := range vals {
		var snap struct {
			Position uint64 `json:"position"`
		}
		if json.Unmarshal(v, &snap) == nil {
			snaps[subject] = snap.Position
		}
	}

	var all []pruneEntry
	for seq := uint64(1); ; {
		rctx, cancel := s.reqCtx(ctx)
		msgs, more, err := s.directBatch(rctx, s.eventsStream, seq, s.subj.all(), readPage)
		cancel()
		if err != nil {
			return res, err
		}
		for _, m := range msgs {
			e, err := s.decodeEvent(m)
			if err != nil {
				return res, err
			}
			seq = e.Position + 1
			r := -1
			for i := range rules {
				if herald.MatchName(rules[i].Pattern, e.Name) {
					r = i
					break
				}
			}
			v, _ := strconv.ParseUint(m.Header.Get(hdrSubjectVersion), 10, 64)
			all = append(all, pruneEntry{pos: e.Position, id: e.ID, subject: e.Subject, version: v, ts: e.Timestamp, rule: r})
		}
		if !more || len(msgs) == 0 {
			break
		}
	}
	// Newest first per rule, to count MaxCount.
	seen := make([]int, len(rules))
	doomed := map[uint64]pruneEntry{}
	for i := len(all) - 1; i >= 0; i-- {
		e := all[i]
		if e.rule < 0 {
			continue
		}
		r := rules[e.rule]
		seen[e.rule]++
		old := r.MaxAge > 0 && e.ts.Before(now.Add(-time.Duration(r.MaxAge)))
		over := r.MaxCount > 0 && seen[e.rule] > r.MaxCount
		if !old && !over {
			continue
		}
		if !r.Force && haveCP && minCP < e.pos {
			res.Held++
			continue
		}
		if f, ok := floors[partitionOf(e.subject, e.id, s.cfg.partitions)]; !r.Force && ok && f < e.pos {
			res.Held++
			continue
		}
		if sp, ok := snaps[e.subject]; ok && e.subject != "" && e.pos > sp {
			res.Held++
			continue
		}
		doomed[e.pos] = e
	}
	if len(doomed) == 0 {
		return res, nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()

	// Subjects losing their last stored event keep their version in a record.
	lastOf := map[string]pruneEntry{}
	for _, e := range all {
		if e.subject != "" {
			lastOf[e.subject] = e
		}
	}
	for subj, e := range lastOf {
		if _, ok := doomed[e.pos]; !ok {
			continue
		}
		if old, err := s.prunedVersion(ctx, subj); err != nil {
			return res, err
		} else if old >= e.version {
			continue
		}
		if _, err := s.subs.Put(ctx, pruneVersionKey(subj), []byte(strconv.FormatUint(e.version, 10))); err != nil {
			return res, s.mapErr("pruning", err)
		}
	}

	// Purge the leading run, delete the rest.
	i := 0
	for i < len(all) {
		if _, ok := doomed[all[i].pos]; !ok {
			break
		}
		i++
	}
	if i > 0 {
		upTo := all[len(all)-1].pos + 1
		if i < len(all) {
			upTo = all[i].pos
		}
		if err := s.events.Purge(ctx, jetstream.WithPurgeSequence(upTo)); err != nil {
			return res, s.mapErr("pruning", err)
		}
	}
	for _, e := range all[i:] {
		if _, ok := doomed[e.pos]; !ok {
			continue
		}
		if err := s.events.DeleteMsg(ctx, e.pos); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, s.mapErr("pruning", err)
		}
	}
	res.Deleted = len(doomed)

	// Their ids, outcomes and dead letters.
	ids := map[string]bool{}
	idsStream := "KV_" + s.cfg.namespace + "_ids"
	for _, e := range doomed {
		ids[e.id] = true
		if err := s.purgeSubject(ctx, idsStream, "$KV."+s.cfg.namespace+"_ids."+idKey(e.id)); err != nil {
			return res, err
		}
	}
	var stale []string
	err = s.scanBucket(ctx, s.cfg.namespace+"_subs", "oc.>", func(key string, _ []byte) error {
		parts := strings.Split(key, ".")
		if len(parts) == 4 {
			if ev, ok := decodeToken(parts[2]); ok && ids[ev] {
				stale = append(stale, key)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	dls, keys, err := s.deadLetters(ctx, herald.DeadLetterQuery{})
	if err != nil {
		return res, err
	}
	for i, d := range dls {
		if d.Event != nil && ids[d.Event.ID] {
			stale = append(stale, keys[i])
		}
	}
	slices.Sort(stale)
	for _, k := range stale {
		if err := s.purgeSubject(ctx, s.subsStream, s.subsSubject(k)); err != nil {
			return res, fmt.Errorf("nats store: pruning state: %w", err)
		}
	}
	return res, nil
}

// sharedFloors returns, per partition, the position through which every
// shared subscription has handled that partition's events: a partition
// consumer with nothing pending or unacknowledged is at the head, any
// other at its ack floor.
func (s *Store) sharedFloors(ctx context.Context) (map[int]uint64, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(rctx)
	if err != nil {
		return nil, s.mapErr("pruning", err)
	}
	floors := map[int]uint64{}
	l := s.events.ListConsumers(rctx)
	for ci := range l.Info() {
		if ci.Config.Metadata["herald_subscription"] == "" {
			continue
		}
		i := strings.LastIndex(ci.Name, "_p")
		p, err := strconv.Atoi(ci.Name[i+2:])
		if i < 0 || err != nil {
			continue
		}
		f := ci.AckFloor.Stream
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			f = info.State.LastSeq
		}
		if old, ok := floors[p]; !ok || f < old {
			floors[p] = f
		}
	}
	if err := l.Err(); err != nil {
		return nil, s.mapErr("pruning", err)
	}
	return floors, nil
}
