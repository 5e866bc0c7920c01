package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readPage is how many events one direct-get request asks for.
const readPage = 256

type directReq struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	LastFor   string   `json:"last_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
	UpToSeq   uint64   `json:"up_to_seq,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
}

// directBatch asks the stream for up to batch messages at or after seq
// matching filter, with one batched direct get. It returns them and whether
// more matching messages were pending when the server answered.
func (s *Store) directBatch(ctx context.Context, stream string, seq uint64, filter string, batch int) ([]*natsgo.Msg, bool, error) {
	return s.direct(ctx, stream, directReq{Seq: seq, NextFor: filter, Batch: batch})
}

// multiLast returns the last message of every subject matching one of
// subjects (at most 1,024 answers), with one direct get.
func (s *Store) multiLast(ctx context.Context, stream string, subjects []string) ([]*natsgo.Msg, error) {
	msgs, _, err := s.direct(ctx, stream, directReq{MultiLast: subjects, Batch: 1024})
	return msgs, err
}

// direct sends one direct get on a reply subscription of its own.
func (s *Store) direct(ctx context.Context, stream string, dr directReq) ([]*natsgo.Msg, bool, error) {
	d, err := s.newDirectReader()
	if err != nil {
		return nil, false, err
	}
	defer d.close()
	return d.get(ctx, stream, dr)
}

// directReader sends direct gets one after another and receives their
// answers on one reply subscription, so that a long read (Read, repair)
// opens one subscription instead of one per page: each subscription costs
// a pending queue of its own (half a megabyte with the client's defaults).
// It is used by one goroutine at a time. After an error it refuses further
// gets, since answers of the failed request may still arrive.
type directReader struct {
	s      *Store
	inbox  string
	sub    *natsgo.Subscription
	broken error
}

func (s *Store) newDirectReader() (*directReader, error) {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, s.mapErr("reading", err)
	}
	return &directReader{s: s, inbox: inbox, sub: sub}, nil
}

func (d *directReader) close() { _ = d.sub.Unsubscribe() }

// get sends dr to stream and collects the answer: the messages and whether
// more matching messages were pending when the server answered.
func (d *directReader) get(ctx context.Context, stream string, dr directReq) ([]*natsgo.Msg, bool, error) {
	if d.broken != nil {
		return nil, false, d.broken
	}
	msgs, more, err := d.collect(ctx, stream, dr)
	if err != nil {
		d.broken = err
	}
	return msgs, more, err
}

func (d *directReader) collect(ctx context.Context, stream string, dr directReq) ([]*natsgo.Msg, bool, error) {
	s := d.s
	req, _ := json.Marshal(dr)
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, d.inbox, req); err != nil {
		return nil, false, s.mapErr("reading", err)
	}
	var out []*natsgo.Msg
	for {
		m, err := d.sub.NextMsgWithContext(ctx)
		if err != nil {
			if s.closed.Load() {
				return nil, false, herald.ErrClosed
			}
			return nil, false, fmt.Errorf("nats store: reading: %w", err)
		}
		switch m.Header.Get("Status") {
		case "":
			out = append(out, m)
			continue
		case "204": // end of batch
			np, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return out, np > 0, nil
		case "404":
			return out, false, nil
		case "503":
			return nil, false, fmt.Errorf("nats store: reading: %w", natsgo.ErrNoResponders)
		default:
			return nil, false, fmt.Errorf("nats store: reading: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
	}
}

func (s *Store) decodeEvent(m *natsgo.Msg) (*herald.Event, error) {
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("nats store: message without a sequence")
	}
	e, err := decodeEventData(m.Data, seq)
	if err != nil {
		return nil, s.damagedEvent(seq, m.Header.Get("Nats-Subject"), m.Header.Get(hdrMsgID), err)
	}
	return e, nil
}

// Read implements herald.EventLog. It reads with batched direct gets,
// filtered on the server by name pattern and subject; the other fields of f
// are matched here. A read that goes on beyond one page switches to an
// ordered consumer, which streams the rest with one request in flight and
// at most replayBuffer events held at a time (so a replay of any length
// runs in bounded memory), and finishes the newest events with direct
// gets again. Direct gets are answered in isolation from atomic batches,
// so the end of a read sees a batch whole or not at all. In a replicated
// stream a page may be answered by a replica that has not applied the
// newest writes yet: it then ends earlier, never with a gap.
func (s *Store) Read(ctx context.Context, after uint64, f herald.Filter) iter.Seq2[*herald.Event, error] {
	return func(yield func(*herald.Event, error) bool) {
		if err := s.check(); err != nil {
			yield(nil, err)
			return
		}
		if f.Name != "" {
			if err := herald.ValidatePattern(f.Name); err != nil {
				yield(nil, err)
				return
			}
		}
		r := &reader{s: s, ctx: ctx, f: f, filter: s.subj.filter(f.Name, f.Subject), seq: after + 1, yield: yield}
		r.run()
	}
}

// replayBuffer bounds the events an ordered-consumer read holds at once
// between the client's buffer (half of it) and the hand-off to the caller.
const replayBuffer = 1024

// reader is one Read in progress.
type reader struct {
	s      *Store
	ctx    context.Context
	f      herald.Filter
	filter string
	seq    uint64 // next position to read
	n      int    // events yielded
	yield  func(*herald.Event, error) bool
	done   bool // the caller stopped, the limit was reached, or an error was yielded
}

// emit matches e against the filter and yields it; it reports false once
// the read is over.
func (r *reader) emit(e *herald.Event) bool {
	r.seq = e.Position + 1
	if !r.f.Match(e) {
		return true
	}
	if !r.yield(e, nil) {
		r.done = true
		return false
	}
	r.n++
	if r.f.Limit > 0 && r.n >= r.f.Limit {
		r.done = true
		return false
	}
	return true
}

func (r *reader) fail(err error) {
	if r.ctx.Err() != nil {
		err = r.ctx.Err()
	}
	r.yield(nil, err)
	r.done = true
}

func (r *reader) run() {
	s := r.s
	d, err := s.newDirectReader()
	if err != nil {
		r.fail(err)
		return
	}
	defer d.close()
	streamed := false
	for {
		page := readPage
		serverSide := r.f.CorrelationID == "" && r.f.SourcePlugin == "" && r.f.Since.IsZero() && r.f.Until.IsZero()
		if r.f.Limit > 0 && r.f.Limit-r.n < page && serverSide {
			page = r.f.Limit - r.n
		}
		rctx, cancel := s.reqCtx(r.ctx)
		msgs, more, err := d.get(rctx, s.eventsStream, directReq{Seq: r.seq, NextFor: r.filter, Batch: page})
		cancel()
		if err != nil {
			r.fail(err)
			return
		}
		for _, m := range msgs {
			e, err := s.decodeEvent(m)
			if err != nil {
				r.fail(err)
				return
			}
			if !r.emit(e) {
				return
			}
		}
		if !more || len(msgs) == 0 {
			return
		}
		if err := s.check(); err != nil {
			r.fail(err)
			return
		}
		// More than a page is pending: stream the bulk of it, once.
		if !streamed && (r.f.Limit == 0 || r.f.Limit-r.n > readPage || !serverSide) {
			streamed = true
			r.stream()
			if r.done {
				return
			}
		}
	}
}

// stream reads from r.seq with an ordered consumer until the consumer has
// nothing more pending or has reached the head as it was when stream
// began (the caller then finishes with direct gets), the
// read is over, or no event has come for a while (a consumer that lost
// its way: direct gets take over).
func (r *reader) stream() {
	s := r.s
	rctx, cancel := s.reqCtx(r.ctx)
	// Stream up to the head as it is now; what comes later is left to
	// direct gets, so that a read under a steady stream of appends ends.
	info, err := s.events.Info(rctx)
	if err != nil {
		cancel()
		return // direct gets go on
	}
	stopAt := info.State.LastSeq
	var filters []string
	if r.f.Name != "" || r.f.Subject != "" {
		filters = []string{r.filter} // else every message of the stream is an event
	}
	cons, err := s.events.OrderedConsumer(rctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.seq,
		InactiveThreshold: 30 * time.Second,
	})
	cancel()
	if err != nil {
		return // direct gets go on
	}
	type item struct {
		e    *herald.Event
		last bool // nothing more was pending when it was delivered
		err  error
	}
	// The callback hands events over in slices of up to replayHandoff, so
	// that the reader does not wake for each one. A slice left partly
	// filled by a consumer that stalls is read again by direct gets.
	ch := make(chan []item, replayBuffer/replayHandoff)
	stop := make(chan struct{})
	var stopped sync.Once
	quit := func() { stopped.Do(func() { close(stop) }) }
	// After a reset the consumer calls back from a new goroutine, while
	// the last call may still be waiting to hand its slice over.
	var mu sync.Mutex
	var pending []item
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		md, err := m.Metadata()
		var it item
		if err != nil {
			it.err = fmt.Errorf("nats store: reading: %w", err)
		} else if it.e, it.err = decodeEventData(m.Data(), md.Sequence.Stream); it.err == nil {
			it.last = md.NumPending == 0 || md.Sequence.Stream >= stopAt
		} else {
			it.err = s.damagedEvent(md.Sequence.Stream, m.Subject(), m.Headers().Get(hdrMsgID), it.err)
		}
		if pending == nil {
			pending = make([]item, 0, replayHandoff)
		}
		pending = append(pending, it)
		if len(pending) < replayHandoff && !it.last && it.err == nil {
			return
		}
		select {
		case ch <- pending:
		case <-stop:
		}
		pending = nil
	}, jetstream.PullMaxMessages(replayBuffer/2))
	if err != nil {
		return
	}
	defer func() {
		quit()
		cc.Stop()
	}()
	err = follow(r.ctx, s.closing, ch, func(items []item) (bool, error) {
		for _, it := range items {
			if it.err != nil {
				return true, it.err
			}
			if it.e.Position < r.seq {
				continue // delivered again after the consumer was recreated
			}
			if !r.emit(it.e) || it.last {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		r.fail(err)
	}
}

// follow calls handle with each batch ch brings until handle reports it
// is done or fails, no batch has come for replayIdle (the caller then
// reads the rest another way), ctx ends (its error), or closing is closed
// (herald.ErrClosed).
func follow[T any](ctx context.Context, closing <-chan struct{}, ch <-chan T, handle func(T) (done bool, err error)) error {
	idle := time.NewTicker(replayIdle)
	defer idle.Stop()
	progressed := false
	for {
		select {
		case b := <-ch:
			progressed = true
			if done, err := handle(b); done || err != nil {
				return err
			}
		case <-idle.C:
			if !progressed {
				return nil
			}
			progressed = false
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return herald.ErrClosed
		}
	}
}

// replayHandoff is how many events stream's callback hands over at once.
const replayHandoff = 64

// replayIdle: when no event came for this long, stream leaves the rest
// to direct gets.
const replayIdle = 2 * time.Second

// Get implements herald.EventLog.
func (s *Store) Get(ctx context.Context, id string) (*herald.Event, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	pos, ok, err := s.lookupID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("event %q: %w", id, herald.ErrNotFound)
	}
	raw, err := s.events.GetMsg(ctx, pos)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("event %q: %w", id, herald.ErrNotFound)
	}
	if err != nil {
		return nil, s.mapErr("getting an event", err)
	}
	e, err := decodeEventData(raw.Data, raw.Sequence)
	if err != nil {
		return nil, s.damagedEvent(raw.Sequence, raw.Subject, raw.Header.Get(hdrMsgID), err)
	}
	if e.ID != id {
		return nil, fmt.Errorf("event %q: %w", id, herald.ErrNotFound)
	}
	return e, nil
}

// Head implements herald.EventLog: the stream's last sequence, which stays
// put when Prune deletes the newest events.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(ctx)
	if err != nil {
		return 0, s.mapErr("reading the head", err)
	}
	s.advanceHead(info.State.LastSeq)
	return info.State.LastSeq, nil
}

// SubjectVersion implements herald.EventLog.
func (s *Store) SubjectVersion(ctx context.Context, subject string) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if subject == "" {
		return 0, nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	_, n, _, err := s.subjectState(ctx, subject)
	return n, err
}

type msgGetReq struct {
	LastFor string `json:"last_by_subj,omitempty"`
}

type msgGetResp struct {
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs"`
	} `json:"message,omitempty"`
	Error *apiErrorRep `json:"error,omitempty"`
}

// headerValue returns the value of key in an encoded NATS header block.
func headerValue(hdr []byte, key string) string {
	for line := range strings.SplitSeq(string(hdr), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// subjectState returns the position of the subject's last stored event,
// the subject's version and that event's id, as the stream leader
// answers. The version is the one stamped on that event, or the one
// retention recorded when it deleted newer events of the subject (see
// pruneVersionKey), whichever is higher; the record is read meanwhile.
func (s *Store) subjectState(ctx context.Context, subject string) (last, version uint64, lastID string, err error) {
	type recordedVersion struct {
		v   uint64
		err error
	}
	recorded := make(chan recordedVersion, 1)
	go func() {
		v, err := s.prunedVersion(ctx, subject)
		recorded <- recordedVersion{v, err}
	}()
	last, version, lastID, err = s.storedSubjectState(ctx, subject)
	r := <-recorded
	if err != nil {
		return 0, 0, "", err
	}
	if r.err != nil {
		return 0, 0, "", r.err
	}
	return last, max(version, r.v), lastID, nil
}

// storedSubjectState is subjectState from the subject's last stored event
// alone (0s when it has none).
func (s *Store) storedSubjectState(ctx context.Context, subject string) (last, version uint64, lastID string, err error) {
	req, _ := json.Marshal(msgGetReq{LastFor: s.subj.ofSubject(subject)})
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+s.eventsStream, req)
	if err != nil {
		return 0, 0, "", s.mapErr("reading a subject version", err)
	}
	var r msgGetResp
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, 0, "", fmt.Errorf("nats store: reading a subject version: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.Code == 404:
		return 0, 0, "", nil
	case r.Error != nil:
		return 0, 0, "", s.mapAPIErr("reading a subject version", r.Error.ErrCode, r.Error.Description)
	case r.Message == nil:
		return 0, 0, "", fmt.Errorf("nats store: reading a subject version: empty answer")
	}
	version, err = strconv.ParseUint(headerValue(r.Message.Header, hdrSubjectVersion), 10, 64)
	if err != nil {
		return 0, 0, "", fmt.Errorf("nats store: event at position %d has no subject version: %w", r.Message.Sequence, herald.ErrIncompatibleStore)
	}
	return r.Message.Sequence, version, headerValue(r.Message.Header, hdrMsgID), nil
}

// pruneVersionKey is the state-bucket key where retention records the
// version of a subject whose events it deleted, so that versions never go
// down: the version stamped on the subject's last stored event is lower
// when newer ones were deleted, and missing when none is left.
func pruneVersionKey(subject string) string { return "sv." + subjectToken(subject) }

func (s *Store) prunedVersion(ctx context.Context, subject string) (uint64, error) {
	e, err := s.subs.Get(ctx, pruneVersionKey(subject))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, s.mapErr("reading a subject version", err)
	}
	v, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("nats store: pruned version of %q is corrupt: %w", subject, herald.ErrIncompatibleStore)
	}
	return v, nil
}

// prunedVersions returns the recorded version (see pruneVersionKey) of
// each of subjects that has one, with one direct get per 1,024 subjects.
func (s *Store) prunedVersions(ctx context.Context, subjects []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	prefix := "$KV." + s.cfg.namespace + "_subs."
	byKey := make(map[string]string, len(subjects))
	keys := make([]string, 0, len(subjects))
	for _, subj := range subjects {
		k := prefix + pruneVersionKey(subj)
		if _, dup := byKey[k]; !dup {
			byKey[k] = subj
			keys = append(keys, k)
		}
	}
	for start := 0; start < len(keys); start += 1024 {
		msgs, err := s.multiLast(ctx, s.subsStream, keys[start:min(start+1024, len(keys))])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			subj, ok := byKey[m.Header.Get("Nats-Subject")]
			if !ok || m.Header.Get("KV-Operation") != "" {
				continue
			}
			if v, err := strconv.ParseUint(string(m.Data), 10, 64); err == nil {
				out[subj] = max(out[subj], v)
			}
		}
	}
	return out, nil
}

// advanceHead records that the log reached at least pos and wakes waiters.
func (s *Store) advanceHead(pos uint64) {
	s.headMu.Lock()
	if pos > s.head {
		s.head = pos
		close(s.headCh)
		s.headCh = make(chan struct{})
	}
	s.headMu.Unlock()
}

// Wait implements herald.EventLog. The first Wait starts one ordered
// consumer per Store that receives the headers of new events (not their
// data) and wakes every waiter; appends by this Store wake them at once.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := s.startTail(ctx); err != nil {
		return 0, err
	}
	for {
		s.headMu.Lock()
		head, ch := s.head, s.headCh
		s.headMu.Unlock()
		if s.closed.Load() {
			return 0, herald.ErrClosed
		}
		if head > after {
			return head, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.closing:
			return 0, herald.ErrClosed
		case <-ch:
		}
	}
}

func (s *Store) startTail(ctx context.Context) error {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if s.tailStop != nil {
		return nil
	}
	if err := s.check(); err != nil {
		return err
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(rctx)
	if err != nil {
		return s.mapErr("tailing", err)
	}
	s.advanceHead(info.State.LastSeq)
	cons, err := s.events.OrderedConsumer(rctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.subj.all()},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       info.State.LastSeq + 1,
		HeadersOnly:       true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return s.mapErr("tailing", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if md, err := m.Metadata(); err == nil {
			s.advanceHead(md.Sequence.Stream)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.cfg.logger.Debug("herald nats store: tail", "err", err)
	}))
	if err != nil {
		return s.mapErr("tailing", err)
	}
	s.tailStop = cc.Stop
	return nil
}
