package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// doomedEvent is what deleting an event needs to know of it.
type doomedEvent struct {
	pos, version uint64
	id, subject  string
}

// DeleteEvents implements herald.EventLog. It reads the given events'
// headers, records the version of each subject it touches (see
// pruneVersionKey) before deleting anything, deletes the messages — a run
// at the start of the stream in one purge, the others one by one — and
// then their ids in the id index, their outcomes and their dead letters.
// Deleted events leave a gap in the stream: positions are never reused. It
// holds only the events it is given, never the stream. A failure part way
// leaves the record of versions in place and may leave outcomes or dead
// letters of deleted events, which the next call with the same positions
// removes.
func (s *Store) DeleteEvents(ctx context.Context, positions []uint64) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if len(positions) == 0 {
		return 0, nil
	}
	rctx, cancel := s.reqCtx(ctx)
	doomed, err := s.readDoomed(rctx, positions)
	cancel()
	if err != nil {
		return 0, err
	}
	if err := s.keepVersions(ctx, doomed); err != nil {
		return 0, err
	}
	n, err := s.deleteMsgs(ctx, doomed)
	if err != nil {
		return n, err
	}
	return n, s.deleteState(ctx, doomed)
}

// readDoomed reads the events at positions (ascending), skipping those
// the stream no longer holds. Consecutive positions are read in pages;
// a lone position costs one direct get.
func (s *Store) readDoomed(ctx context.Context, positions []uint64) ([]doomedEvent, error) {
	d, err := s.newDirectReader()
	if err != nil {
		return nil, err
	}
	defer d.close()
	out := make([]doomedEvent, 0, len(positions))
	for i := 0; i < len(positions); {
		seq := positions[i]
		// Read through the last wanted position within one page from seq.
		j := i
		for j+1 < len(positions) && positions[j+1]-seq < readPage {
			j++
		}
		msgs, _, err := d.get(ctx, s.eventsStream, directReq{Seq: seq, NextFor: s.subj.all(), Batch: int(positions[j]-seq) + 1})
		if err != nil {
			return nil, err
		}
		k := i
		for _, m := range msgs {
			p, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("nats store: message without a sequence")
			}
			for k <= j && positions[k] < p {
				k++
			}
			if k > j {
				break
			}
			if positions[k] != p {
				continue
			}
			e, err := decodeEventData(m.Data, p)
			if err != nil {
				return nil, err
			}
			v, _ := strconv.ParseUint(m.Header.Get(hdrSubjectVersion), 10, 64)
			out = append(out, doomedEvent{pos: p, version: v, id: e.ID, subject: e.Subject})
		}
		i = j + 1
	}
	return out, nil
}

// keepVersions records, for each subject of doomed, the highest version
// among its doomed events unless a higher one is recorded, so that a
// subject whose newest or last events go keeps its version.
func (s *Store) keepVersions(ctx context.Context, doomed []doomedEvent) error {
	versions := map[string]uint64{}
	for _, e := range doomed {
		if e.subject != "" {
			versions[e.subject] = max(versions[e.subject], e.version)
		}
	}
	if len(versions) == 0 {
		return nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	subjects := make([]string, 0, len(versions))
	for subj := range versions {
		subjects = append(subjects, subj)
	}
	recorded, err := s.prunedVersions(ctx, subjects)
	if err != nil {
		return err
	}
	for subj, v := range recorded {
		if v >= versions[subj] {
			delete(versions, subj)
		}
	}
	var msgs []*natsgo.Msg
	for subj, v := range versions {
		m := natsgo.NewMsg(s.subsSubject(pruneVersionKey(subj)))
		m.Data = []byte(strconv.FormatUint(v, 10))
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.writeState(ctx, msgs); err != nil {
		return fmt.Errorf("nats store: recording pruned versions: %w", err)
	}
	return nil
}

// deleteMsgs deletes the doomed messages and reports how many it deleted.
// When they start at the stream's first message and follow each other,
// that run goes in one purge.
func (s *Store) deleteMsgs(ctx context.Context, doomed []doomedEvent) (int, error) {
	if len(doomed) == 0 {
		return 0, nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(ctx)
	if err != nil {
		return 0, s.mapErr("pruning", err)
	}
	n := 0
	if doomed[0].pos == info.State.FirstSeq {
		for n+1 < len(doomed) && doomed[n+1].pos == doomed[n].pos+1 {
			n++
		}
		n++
		if err := s.events.Purge(ctx, jetstream.WithPurgeSequence(doomed[n-1].pos+1)); err != nil {
			return 0, s.mapErr("pruning", err)
		}
	}
	deleted := n
	for _, e := range doomed[n:] {
		err := s.events.DeleteMsg(ctx, e.pos)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return deleted, s.mapErr("pruning", err)
		}
		deleted++
	}
	return deleted, nil
}

// deleteState removes the doomed events' ids from the id index, and their
// outcomes and dead letters from the subscription state. The outcomes of
// an event are one key range; dead letters are found with one scan of the
// dead-letter keys per call.
func (s *Store) deleteState(ctx context.Context, doomed []doomedEvent) error {
	if len(doomed) == 0 {
		return nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	idsStream, err := s.js.Stream(ctx, "KV_"+s.cfg.namespace+"_ids")
	if err != nil {
		return s.mapErr("pruning", err)
	}
	subsStream, err := s.js.Stream(ctx, s.subsStream)
	if err != nil {
		return s.mapErr("pruning", err)
	}
	ids := make(map[string]bool, len(doomed))
	for _, e := range doomed {
		ids[e.id] = true
		// A UUIDv7 id stays in its time bucket (see idBucket): it remains
		// a duplicate of its first position, so its KV entry (of format 1)
		// may stay too.
		if _, bucketed := s.idBucket(e.id); !bucketed {
			if err := idsStream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+s.cfg.namespace+"_ids."+idKey(e.id))); err != nil {
				return s.mapErr("pruning the id index", err)
			}
		}
		if err := subsStream.Purge(ctx, jetstream.WithPurgeSubject(s.subsSubject("oc.*."+encodeToken(e.id)+".*"))); err != nil {
			return s.mapErr("pruning outcomes", err)
		}
	}
	if err := s.pruneBatches(ctx, doomed); err != nil {
		return fmt.Errorf("nats store: pruning outcome batches: %w", err)
	}
	var stale []string
	err = s.scanBucket(ctx, s.cfg.namespace+"_subs", "dl.>", func(key string, v []byte) error {
		var d struct {
			Event *struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		if json.Unmarshal(v, &d) == nil && d.Event != nil && ids[d.Event.ID] {
			stale = append(stale, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := subsStream.Purge(ctx, jetstream.WithPurgeSubject(s.subsSubject(k))); err != nil {
			return s.mapErr("pruning dead letters", err)
		}
	}
	return nil
}

// ConsumerFloor implements herald.ConsumerFloor: an event is unhandled
// while some shared subscription's consumer of its partition has not
// acknowledged it. A partition consumer with nothing pending or
// unacknowledged is at the head; any other at its ack floor.
func (s *Store) ConsumerFloor(ctx context.Context) (func(e *herald.Event) bool, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
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
		if i < 0 {
			continue
		}
		p, err := strconv.Atoi(ci.Name[i+2:])
		if err != nil {
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
	parts := s.cfg.partitions
	return func(e *herald.Event) bool {
		f, ok := floors[partitionOf(e.Subject, e.ID, parts)]
		return ok && f < e.Position
	}, nil
}
