package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Single-event appends without an expected version are committed in
// groups: whatever concurrent Appends are waiting is looked up in the id
// index with one request, published with pipelined asynchronous publishes,
// and indexed the same way, so N concurrent appends cost about three round
// trips instead of 3N. Each event is still its own JetStream message with
// its own acknowledgement; a group is not atomic and need not be.

// maxGroup bounds one group.
const maxGroup = 512

// appenders is how many groups may be in flight at once.
const appenders = 4

type appendReq struct {
	e        *herald.Event
	subject  string // NATS subject
	data     []byte
	res      herald.AppendResult
	err      error
	attempts int
	done     chan struct{}
}

// appendSingle queues e for the group committer and waits for its result.
func (s *Store) appendSingle(ctx context.Context, e *herald.Event, m *natsgo.Msg) (herald.AppendResult, error) {
	r := &appendReq{e: e, subject: m.Subject, data: m.Data, done: make(chan struct{})}
	select {
	case s.appendQ <- r:
	case <-ctx.Done():
		return herald.AppendResult{}, ctx.Err()
	case <-s.closing:
		return herald.AppendResult{}, herald.ErrClosed
	}
	// Queued: from here an appender may publish it at any moment, so a
	// caller that stops waiting does not know what became of it.
	select {
	case <-r.done:
	case <-s.appDone:
		select {
		case <-r.done: // completed before the appenders stopped
		default:
			return herald.AppendResult{}, herald.ErrClosed // queued ones are failed, never sent
		}
	case <-ctx.Done():
		return herald.AppendResult{}, s.mapSentErr("appending", ctx.Err())
	}
	if r.err == nil && !r.res.Duplicate {
		e.Position = r.res.Position
	}
	return r.res, r.err
}

// appender takes groups off the queue until Close; queued requests left
// at Close fail with ErrClosed.
func (s *Store) appender() {
	defer s.appWG.Done()
	var carry []*appendReq
	for {
		var group []*appendReq
		if len(carry) > 0 {
			group, carry = carry, nil
		} else {
			select {
			case r := <-s.appendQ:
				group = append(group, r)
			case <-s.closing:
				s.failQueued()
				return
			}
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.appendQ:
				group = append(group, r)
			default:
				break fill
			}
		}
		carry = s.commitGroup(group)
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.appendQ:
			r.err = herald.ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

// commitGroup appends the group's events and completes their requests. It
// returns the requests to try again at once: a second event of a subject
// already in the group, or one that lost a race on its subject.
func (s *Store) commitGroup(group []*appendReq) (again []*appendReq) {
	ctx, cancel := context.WithTimeout(s.base, s.cfg.timeout)
	defer cancel()
	finish := func(r *appendReq, res herald.AppendResult, err error) {
		r.res, r.err = res, err
		close(r.done)
	}

	// One request per id; later requests for an id wait for the first.
	firsts := make([]*appendReq, 0, len(group))
	byID := map[string]*appendReq{}
	followers := map[*appendReq][]*appendReq{}
	for _, r := range group {
		if f, ok := byID[r.e.ID]; ok {
			followers[f] = append(followers[f], r)
			continue
		}
		byID[r.e.ID] = r
		firsts = append(firsts, r)
	}
	complete := func(r *appendReq, res herald.AppendResult, err error) {
		finish(r, res, err)
		for _, f := range followers[r] {
			fres := res
			if err == nil {
				fres.Duplicate = true
			}
			finish(f, fres, err)
		}
	}

	idList := make([]string, len(firsts))
	for i, r := range firsts {
		idList[i] = r.e.ID
	}
	known, err := s.lookupIDs(ctx, idList, true)
	if err != nil {
		for _, r := range firsts {
			complete(r, herald.AppendResult{}, err)
		}
		return nil
	}
	var todo []*appendReq
	subjSeen := map[string]bool{}
	var subjects []string
	for _, r := range firsts {
		if pos, ok := known[r.e.ID]; ok {
			complete(r, herald.AppendResult{Position: pos, Duplicate: true}, nil)
			continue
		}
		if subj := r.e.Subject; subj != "" {
			if subjSeen[subj] {
				again = append(again, r)
				again = append(again, followers[r]...)
				delete(followers, r)
				continue
			}
			subjSeen[subj] = true
			subjects = append(subjects, subj)
		}
		todo = append(todo, r)
	}
	states, err := s.subjectStates(ctx, subjects)
	if err != nil {
		for _, r := range todo {
			complete(r, herald.AppendResult{}, err)
		}
		return again
	}

	futs := make([]jetstream.PubAckFuture, len(todo))
	for i, r := range todo {
		m := natsgo.NewMsg(r.subject)
		m.Data = r.data
		m.Header.Set(hdrMsgID, r.e.ID)
		if subj := r.e.Subject; subj != "" {
			st := states[subj]
			m.Header.Set(hdrSubjectVersion, strconv.FormatUint(st.version+1, 10))
			m.Header.Set(hdrExpLastSubjSeq, strconv.FormatUint(st.last, 10))
			m.Header.Set(hdrExpLastSubjSub, s.subj.ofSubject(subj))
		}
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			// Not sent: fail this one and the rest.
			for _, rest := range todo[i:] {
				complete(rest, herald.AppendResult{}, s.mapErr("appending", err))
			}
			todo = todo[:i]
			break
		}
		futs[i] = f
	}
	var stored []*appendReq
	var positions []uint64
	for i, r := range todo {
		select {
		case ack := <-futs[i].Ok():
			// Duplicates are indexed again too: their first writer may
			// have died before indexing them.
			stored = append(stored, r)
			positions = append(positions, ack.Sequence)
			r.res = herald.AppendResult{Position: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-futs[i].Err():
			err = s.mapSentErr("appending", err)
			if errors.Is(err, errRetry) && r.attempts < maxAppendAttempts {
				r.attempts++
				again = append(again, r)
				again = append(again, followers[r]...)
				delete(followers, r)
				continue
			}
			if errors.Is(err, errRetry) {
				err = fmt.Errorf("nats store: append: contention on subject %q: %w", r.e.Subject, herald.ErrBackpressure)
			}
			complete(r, herald.AppendResult{}, err)
		case <-ctx.Done():
			complete(r, herald.AppendResult{}, s.mapSentErr("appending", ctx.Err()))
		}
	}
	var head uint64
	for i, r := range stored {
		head = max(head, positions[i])
		s.idx.add(r.e.ID, positions[i])
		complete(r, r.res, nil)
	}
	if head > 0 {
		s.advanceHead(head)
	}
	if len(again) > 0 {
		_ = sleepCtx(ctx, 0)
	}
	return again
}

// lookupIDs returns the positions the id index holds for ids: the time
// buckets of the UUIDv7 ids (one direct get per bucket), then the KV
// bucket for the rest (one direct get per 500 ids).
//
// With skipRecent, ids that recentID vouches for are not looked up: the
// caller publishes them with their Nats-Msg-Id and JetStream's duplicate
// window answers. Atomic batches cannot rely on that (a duplicate fails
// the whole batch), so they look every id up.
func (s *Store) lookupIDs(ctx context.Context, ids []string, skipRecent bool) (map[string]uint64, error) {
	out := map[string]uint64{}
	prefix := "$KV." + s.cfg.namespace + "_ids."
	now := time.Now()
	rest := ids[:0:0]
	for _, id := range ids {
		if p, ok := s.idx.get(id); ok {
			out[id] = p
		} else if !skipRecent || !recentID(id, now, s.cfg.dupWindow) {
			rest = append(rest, id)
		}
	}
	// UUIDv7 ids are in their time buckets; what is not found there, and
	// every other id, is looked up in the KV bucket (format 1 stores
	// indexed UUIDv7 ids there too).
	var uuids []string
	for _, id := range rest {
		if _, ok := s.idBucket(id); ok {
			uuids = append(uuids, id)
		}
	}
	if len(uuids) > 0 {
		if err := s.lookupBuckets(ctx, uuids, out); err != nil {
			return nil, err
		}
		kv := rest[:0:0]
		for _, id := range rest {
			if _, ok := out[id]; !ok {
				kv = append(kv, id)
			}
		}
		rest = kv
	}
	ids = rest
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		subjects := make([]string, len(chunk))
		byKey := make(map[string]string, len(chunk))
		for i, id := range chunk {
			k := prefix + idKey(id)
			subjects[i] = k
			byKey[k] = id
		}
		msgs, err := s.multiLast(ctx, "KV_"+s.cfg.namespace+"_ids", subjects)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue
			}
			id, ok := byKey[m.Header.Get("Nats-Subject")]
			if !ok {
				continue
			}
			pos, err := strconv.ParseUint(string(m.Data), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("nats store: id index entry for %q is corrupt: %w", id, herald.ErrIncompatibleStore)
			}
			out[id] = pos
		}
	}
	return out, nil
}

// recentID reports whether id is a UUIDv7 minted within a quarter of the
// duplicate window of now. Such an id cannot have been stored before the
// window began: no one appends an id before it is minted, and a minting
// clock would have to be off by more than a quarter window for its
// timestamp to mislead. JetStream's duplicate window therefore answers for
// it, and the index lookup is skipped. Ids herald mints are UUIDv7s.
func recentID(id string, now time.Time, window time.Duration) bool {
	ms, ok := uuid7Millis(id)
	if !ok {
		return false
	}
	d := now.Sub(time.UnixMilli(ms))
	return d < window/4 && d > -window/4
}

type subjState struct {
	last, version uint64
	lastID        string
}

// subjectStates returns the state of each subject (see subjectState) with
// one direct get for the subjects that have events and one for the pruned
// versions of those that have none. A direct get may be answered by a
// replica that lags: every append that uses the state also states it as an
// expectation, which the stream leader checks.
func (s *Store) subjectStates(ctx context.Context, subjects []string) (map[string]*subjState, error) {
	out := make(map[string]*subjState, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	filters := make([]string, len(subjects))
	byPrefix := make(map[string]string, len(subjects))
	for i, subj := range subjects {
		filters[i] = s.subj.ofSubject(subj)
		byPrefix[strings.TrimSuffix(filters[i], ">")] = subj
		out[subj] = &subjState{}
	}
	// The recorded versions are read meanwhile, so that reading them costs
	// no round trip of its own.
	type recordedVersions struct {
		versions map[string]uint64
		err      error
	}
	recorded := make(chan recordedVersions, 1)
	go func() {
		v, err := s.prunedVersions(ctx, subjects)
		recorded <- recordedVersions{v, err}
	}()
	msgs, err := s.multiLast(ctx, s.eventsStream, filters)
	if err != nil {
		<-recorded
		// Too many distinct names under these subjects: one at a time.
		for _, subj := range subjects {
			last, v, id, err := s.subjectState(ctx, subj)
			if err != nil {
				return nil, err
			}
			out[subj] = &subjState{last, v, id}
		}
		return out, nil
	}
	ns := len(s.subj.ns) + len(".ev.")
	for _, m := range msgs {
		subj := m.Header.Get("Nats-Subject")
		// ns.ev.<p>.<tok>.name: find the "<ns>.ev.<p>.<tok>." prefix.
		rest := subj[min(ns, len(subj)):]
		p1 := strings.IndexByte(rest, '.')
		if p1 < 0 {
			continue
		}
		p2 := strings.IndexByte(rest[p1+1:], '.')
		if p2 < 0 {
			continue
		}
		hs, ok := byPrefix[subj[:ns+p1+1+p2+1]]
		if !ok {
			continue
		}
		seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		st := out[hs]
		if seq <= st.last {
			continue
		}
		v, err := strconv.ParseUint(m.Header.Get(hdrSubjectVersion), 10, 64)
		if err != nil {
			<-recorded
			return nil, fmt.Errorf("nats store: event at position %d has no subject version: %w", seq, herald.ErrIncompatibleStore)
		}
		st.last, st.version, st.lastID = seq, v, m.Header.Get(hdrMsgID)
	}
	// A subject whose newest events retention deleted keeps its version
	// in a record (see pruneVersionKey).
	r := <-recorded
	if r.err != nil {
		return nil, r.err
	}
	for subj, v := range r.versions {
		out[subj].version = max(out[subj].version, v)
	}
	return out, nil
}
