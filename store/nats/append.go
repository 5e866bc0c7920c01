package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	herald "github.com/heraldhq/herald"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// JetStream error codes the store maps to herald's sentinels.
const (
	errCodeWrongLastSeq         = 10071
	errCodeWrongLastSeqConstant = 10164
	errCodeBatchDuplicate       = 10201
	errCodeBatchTooManyInflight = 10210
	errCodeBatchIncomplete      = 10176
	errCodeBatchTooLarge        = 10199
	errCodeMsgTooLarge          = 10054
	errCodeStoreFailed          = 10077
	errCodeInsufficientRes      = 10023
	errCodeAccountResources     = 10002
	errCodeNotAvailable         = 10008 // JetStream system temporarily unavailable
)

// Headers the store sets on event messages.
const (
	hdrMsgID          = "Nats-Msg-Id"
	hdrExpLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrExpLastSubjSub = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrBatchID        = "Nats-Batch-Id"
	hdrBatchSeq       = "Nats-Batch-Sequence"
	hdrBatchCommit    = "Nats-Batch-Commit"
	hdrSubjectVersion = "Herald-Subject-Version"
)

var kvKeyRe = regexp.MustCompile(`^[-/_\.a-zA-Z0-9]+$`)

// idKey is the ids bucket key of an event id: the id itself when it is a
// valid key without '=', else '=' and the hex SHA-256 of the id.
func idKey(id string) string {
	if kvKeyRe.MatchString(id) && id[0] != '.' && id[len(id)-1] != '.' && !strings.Contains(id, "..") {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "=" + hex.EncodeToString(sum[:])
}

// Append implements herald.EventLog. A batch of more than one event is one
// JetStream atomic batch: all of it is stored or none, at consecutive
// positions. Batches larger than WithMaxBatch fail with herald.ErrTooLarge.
func (s *Store) Append(ctx context.Context, events []*herald.Event, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	if len(events) > s.cfg.maxBatch {
		return nil, fmt.Errorf("%w: batch of %d events, the store takes at most %d", herald.ErrTooLarge, len(events), s.cfg.maxBatch)
	}
	if opts.CheckVersion {
		subject := events[0].Subject
		if subject == "" {
			return nil, &herald.ValidationError{Field: "subject", Reason: "an expected version needs a subject", Err: herald.ErrInvalidEvent}
		}
		for i, e := range events {
			if e.Subject != subject {
				return nil, &herald.ValidationError{Index: i, Field: "subject", Reason: "every event of a conditional append must have the same subject", Err: herald.ErrInvalidEvent}
			}
		}
	}
	// Encode first: nothing is stored when an event cannot be.
	msgs := make([]*natsgo.Msg, len(events))
	for i, e := range events {
		if e == nil {
			return nil, &herald.ValidationError{Index: i, Reason: "nil event", Err: herald.ErrInvalidEvent}
		}
		m, err := s.eventMsg(e)
		if err != nil {
			return nil, &herald.ValidationError{Index: i, Reason: err.Error(), Err: herald.ErrInvalidEvent}
		}
		msgs[i] = m
	}

	if len(events) == 1 && !opts.CheckVersion {
		e := events[0]
		if e.Subject == "" && recentID(e.ID, time.Now(), s.cfg.dupWindow) {
			if _, pending := s.idx.get(e.ID); !pending {
				return s.appendDirect(ctx, e, msgs[0])
			}
		}
		ctx, cancel := s.reqCtx(ctx)
		defer cancel()
		r, err := s.appendSingle(ctx, e, msgs[0])
		if err != nil {
			return nil, err
		}
		return []herald.AppendResult{r}, nil
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		res, err := s.appendOnce(ctx, events, msgs, opts)
		if !errors.Is(err, errRetry) {
			return res, err
		}
		if attempt >= maxAppendAttempts {
			return nil, fmt.Errorf("nats store: append: contention on a subject or batch limits: %w", herald.ErrBackpressure)
		}
		if attempt == 2 && errors.Is(err, errDupInWindow) {
			// An id is in JetStream's duplicate window but not in the index:
			// its writer may have died. Index what is stored.
			if err := s.repair(ctx); err != nil {
				return nil, err
			}
		}
		if err := sleepCtx(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// appendDirect stores one event that needs neither an id lookup nor a
// subject version: an id minted within a quarter of the duplicate window
// cannot have been stored before the window began (see recentID), so
// JetStream's duplicate detection alone decides whether it is new. It
// publishes from the caller's goroutine, pipelined with every other
// append in flight, and queues the id index entry for the indexer.
func (s *Store) appendDirect(ctx context.Context, e *herald.Event, m *natsgo.Msg) ([]herald.AppendResult, error) {
	s.directMu.RLock()
	defer s.directMu.RUnlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	f, err := s.js.PublishMsgAsync(m)
	if err != nil {
		return nil, s.mapErr("appending", err)
	}
	// The request timeout applies when ctx has no deadline (see reqCtx),
	// without deriving a context for it.
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := s.timer(s.cfg.timeout)
		defer s.timers.Put(t)
		defer t.Stop()
		timeout = t.C
	}
	var ack *jetstream.PubAck
	select {
	case ack = <-f.Ok():
	case err := <-f.Err():
		return nil, s.mapSentErr("appending", err)
	case <-ctx.Done():
		return nil, s.mapSentErr("appending", ctx.Err())
	case <-timeout:
		return nil, s.mapSentErr("appending", context.DeadlineExceeded)
	}
	// A duplicate is indexed again too: its first writer may have died
	// before indexing it.
	s.idx.add(e.ID, ack.Sequence)
	s.advanceHead(ack.Sequence)
	if !ack.Duplicate {
		e.Position = ack.Sequence
	}
	return []herald.AppendResult{{Position: ack.Sequence, Duplicate: ack.Duplicate}}, nil
}

// timer returns a running timer that fires after d; stop it and put it
// back in s.timers when done. (Since Go 1.23 a stopped timer's channel
// holds no stale value once it is reset.)
func (s *Store) timer(d time.Duration) *time.Timer {
	if t, ok := s.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// maxAppendAttempts bounds how often Append starts again after losing a
// race on a subject or finding the server's atomic batch slots full.
const maxAppendAttempts = 64

var (
	// errRetry: lost a race on a subject, or the server's batch slots were full.
	errRetry = errors.New("retry")
	// errDupInWindow: an id of the batch is in JetStream's duplicate window
	// but not in the ids bucket (yet).
	errDupInWindow = fmt.Errorf("%w: an event id is being stored concurrently", errRetry)
)

// eventMsg is the message of e: its stored form under its subject, with
// its id as JetStream's message id.
func (s *Store) eventMsg(e *herald.Event) (*natsgo.Msg, error) {
	body, err := encodeEvent(e)
	if err != nil {
		return nil, err
	}
	return &natsgo.Msg{
		Subject: s.subj.event(e.Name, e.Subject, e.ID),
		Data:    body,
		Header:  natsgo.Header{hdrMsgID: []string{e.ID}},
	}, nil
}

func (s *Store) appendOnce(ctx context.Context, events []*herald.Event, msgs []*natsgo.Msg, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	res := make([]herald.AppendResult, len(events))
	// Which events are new: not stored, and the first of their id in the batch.
	first := make(map[string]int, len(events))
	var fresh []int
	var idList []string
	for i, e := range events {
		if _, ok := first[e.ID]; ok {
			res[i].Duplicate = true
			continue
		}
		first[e.ID] = i
		idList = append(idList, e.ID)
	}
	known, err := s.lookupIDs(ctx, idList, false)
	if err != nil {
		return nil, err
	}
	for _, id := range idList {
		i := first[id]
		if pos, ok := known[id]; ok {
			res[i] = herald.AppendResult{Position: pos, Duplicate: true}
			continue
		}
		fresh = append(fresh, i)
	}
	finish := func() []herald.AppendResult {
		for i, e := range events {
			if j := first[e.ID]; j != i {
				res[i] = herald.AppendResult{Position: res[j].Position, Duplicate: true}
			} else if !res[i].Duplicate {
				e.Position = res[i].Position
			}
		}
		return res
	}
	if len(fresh) == 0 {
		return finish(), nil
	}

	// Every event with a subject is stamped with its subject version, and
	// the first of each subject carries the subject's last position as an
	// expectation: a concurrent append to the subject makes this one fail
	// and start again, so versions never repeat or skip.
	var subjects []string
	seen := map[string]bool{}
	for _, i := range fresh {
		if subj := events[i].Subject; subj != "" && !seen[subj] {
			seen[subj] = true
			subjects = append(subjects, subj)
		}
	}
	var states map[string]*subjState
	if opts.CheckVersion {
		// The leader answers, so a lagging replica cannot cause a false conflict.
		last, v, id, err := s.subjectState(ctx, events[0].Subject)
		if err != nil {
			return nil, err
		}
		states = map[string]*subjState{events[0].Subject: {last, v, id}}
	} else if states, err = s.subjectStates(ctx, subjects); err != nil {
		return nil, err
	}
	expectSet := map[string]bool{}
	if opts.CheckVersion {
		subj := events[0].Subject
		st := states[subj]
		if st.version != opts.ExpectedVersion {
			// A retried conditional append whose first try was stored but
			// not acknowledged: its last event is the subject's last one.
			k := uint64(len(fresh))
			if st.lastID == events[fresh[len(fresh)-1]].ID && st.version == opts.ExpectedVersion+k && st.last >= k {
				positions := make([]uint64, len(fresh))
				for j := range fresh {
					positions[j] = st.last - k + 1 + uint64(j)
					res[fresh[j]] = herald.AppendResult{Position: positions[j], Duplicate: true}
				}
				if err := s.indexIDs(ctx, events, fresh, positions); err != nil {
					return nil, err
				}
				return finish(), nil
			}
			return nil, fmt.Errorf("%w: subject %q is at version %d, not %d", herald.ErrConflict, subj, st.version, opts.ExpectedVersion)
		}
	}

	out := make([]*natsgo.Msg, len(fresh))
	for k, i := range fresh {
		e := events[i]
		m := natsgo.NewMsg(msgs[i].Subject)
		m.Data = msgs[i].Data
		m.Header.Set(hdrMsgID, e.ID)
		if st := states[e.Subject]; st != nil && e.Subject != "" {
			st.version++
			m.Header.Set(hdrSubjectVersion, strconv.FormatUint(st.version, 10))
			if !expectSet[e.Subject] {
				expectSet[e.Subject] = true
				m.Header.Set(hdrExpLastSubjSeq, strconv.FormatUint(st.last, 10))
				m.Header.Set(hdrExpLastSubjSub, s.subj.ofSubject(e.Subject))
			}
		}
		out[k] = m
	}

	var positions []uint64
	if len(out) == 1 {
		ack, err := s.publish(ctx, out[0])
		if err != nil {
			return nil, err
		}
		positions = []uint64{ack.Sequence}
		res[fresh[0]] = herald.AppendResult{Position: ack.Sequence, Duplicate: ack.Duplicate}
	} else {
		last, err := s.publishAtomic(ctx, out)
		if err != nil {
			return nil, err
		}
		positions = make([]uint64, len(out))
		for k, i := range fresh {
			positions[k] = last - uint64(len(out)-1-k)
			res[i] = herald.AppendResult{Position: positions[k]}
		}
	}
	if err := s.indexIDs(ctx, events, fresh, positions); err != nil {
		return nil, err
	}
	s.advanceHead(positions[len(positions)-1])
	return finish(), nil
}

// lookupID returns the position the id index holds for id.
func (s *Store) lookupID(ctx context.Context, id string) (uint64, bool, error) {
	found, err := s.lookupIDs(ctx, []string{id}, false)
	if err != nil {
		return 0, false, err
	}
	p, ok := found[id]
	return p, ok, nil
}

// indexIDs writes id → position entries for the stored events, pipelined
// (the entries of UUIDv7 ids a message per time bucket), and waits for
// every acknowledgement.
func (s *Store) indexIDs(ctx context.Context, events []*herald.Event, idx []int, positions []uint64) error {
	entries := make([]idxEntry, len(idx))
	for k, i := range idx {
		entries[k] = idxEntry{events[i].ID, positions[k]}
	}
	if err := s.writeIDEntries(ctx, entries); err != nil {
		return s.mapErr("indexing event ids", err)
	}
	return nil
}

// publish stores one event message.
func (s *Store) publish(ctx context.Context, m *natsgo.Msg) (*jetstream.PubAck, error) {
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, s.mapSentErr("appending", err)
	}
	return ack, nil
}

type batchAck struct {
	Stream   string       `json:"stream"`
	Sequence uint64       `json:"seq"`
	Batch    string       `json:"batch"`
	Count    int          `json:"count"`
	Error    *apiErrorRep `json:"error,omitempty"`
}

type apiErrorRep struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// publishAtomic stores msgs as one JetStream atomic batch and returns the
// stream sequence of the last one.
func (s *Store) publishAtomic(ctx context.Context, msgs []*natsgo.Msg) (uint64, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, s.mapErr("appending a batch", err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	resp, err := s.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		if errors.Is(err, natsgo.ErrNoResponders) {
			return 0, fmt.Errorf("nats store: appending a batch: no JetStream stream answers: %w", err)
		}
		return 0, s.mapSentErr("appending a batch", err)
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("nats store: appending a batch: bad acknowledgement: %w", err)
	}
	if ack.Error != nil {
		return 0, s.mapAPIErr("appending a batch", ack.Error.ErrCode, ack.Error.Description)
	}
	if ack.Count != 0 && ack.Count != len(msgs) {
		return 0, fmt.Errorf("nats store: appending a batch: %d of %d events acknowledged", ack.Count, len(msgs))
	}
	return ack.Sequence, nil
}

func (s *Store) mapAPIErr(op string, code int, desc string) error {
	switch code {
	case errCodeBatchDuplicate:
		return errDupInWindow
	case errCodeWrongLastSeq, errCodeWrongLastSeqConstant, errCodeBatchTooManyInflight, errCodeBatchIncomplete:
		return errRetry
	case errCodeBatchTooLarge, errCodeMsgTooLarge:
		return fmt.Errorf("nats store: %s: %w (%s)", op, herald.ErrTooLarge, desc)
	case errCodeNotAvailable:
		// Refused, so not stored: come back once the cluster has a leader.
		return fmt.Errorf("nats store: %s: %w (%s)", op, herald.ErrBackpressure, desc)
	case errCodeInsufficientRes, errCodeAccountResources:
		return fmt.Errorf("nats store: %s: %w (%s)", op, herald.ErrStoreFull, desc)
	case errCodeStoreFailed:
		if strings.Contains(desc, "maximum") || strings.Contains(desc, "exceeded") {
			return fmt.Errorf("nats store: %s: %w (%s)", op, herald.ErrStoreFull, desc)
		}
	}
	return fmt.Errorf("nats store: %s: %s (code %d)", op, desc, code)
}

// mapSentErr maps the error of a write that was sent: when no answer came
// (a timeout, ctx ending, the connection lost while waiting), JetStream
// may have stored it, or may store it once its cluster regains quorum, so
// the error wraps herald.ErrOutcomeUnknown and the cause, never
// herald.ErrBackpressure. Other errors map as mapErr does.
func (s *Store) mapSentErr(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("nats store: %s: %w (%w)", op, herald.ErrOutcomeUnknown, herald.ErrClosed)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, natsgo.ErrTimeout) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, natsgo.ErrConnectionClosed) || errors.Is(err, natsgo.ErrDisconnected) {
		return fmt.Errorf("nats store: %s: %w (%w)", op, herald.ErrOutcomeUnknown, err)
	}
	return s.mapErr(op, err)
}

func (s *Store) mapErr(op string, err error) error {
	if s.closed.Load() {
		return herald.ErrClosed
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return s.mapAPIErr(op, int(apiErr.ErrorCode), apiErr.Description)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		// Nobody took the request, so nothing was stored: the stream has
		// no leader right now.
		return fmt.Errorf("nats store: %s: no JetStream stream answers: %w: %w", op, herald.ErrBackpressure, err)
	}
	if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		// Not sent: too many asynchronous publishes wait for their acks.
		return fmt.Errorf("nats store: %s: %w: %w", op, herald.ErrBackpressure, err)
	}
	if errors.Is(err, natsgo.ErrMaxPayload) {
		return fmt.Errorf("nats store: %s: %w: %w", op, herald.ErrTooLarge, err)
	}
	if errors.Is(err, natsgo.ErrConnectionClosed) {
		return fmt.Errorf("nats store: %s: %w: %w", op, herald.ErrClosed, err)
	}
	return fmt.Errorf("nats store: %s: %w", op, err)
}
