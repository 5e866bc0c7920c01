package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
)

// hubMaxBytes bounds the memory the hub's recent events take.
const hubMaxBytes = 64 << 20

// hubEntry is one recent event with its encodings, made once for every
// stream that needs them.
type hubEntry struct {
	e          *herald.Event
	size       int
	nativeOnce sync.Once
	native     []byte
	ceOnce     sync.Once
	ce         []byte
}

func (h *hubEntry) json() []byte {
	h.nativeOnce.Do(func() { h.native, _ = json.Marshal(h.e) })
	return h.native
}

func (h *hubEntry) cloudEvent() []byte {
	h.ceOnce.Do(func() { h.ce, _ = json.Marshal(toCloudEvent(h.e)) })
	return h.ce
}

// hub tails the store once for every SSE stream: it keeps the most recent
// events in memory, in order and without gaps after base, and wakes the
// streams when new ones arrive. A stream never holds the hub up: the hub
// only appends and broadcasts.
type hub struct {
	bus  *herald.Bus // read raw: streams decode each frame
	log  *slog.Logger
	size int

	// streams counts the open streams; with none, the hub does not read
	// the log at all.
	streams atomic.Int64

	mu      sync.RWMutex
	entries []*hubEntry // positions > base, increasing, every event of the log
	bytes   int
	base    uint64
	head    uint64
	notify  chan struct{}
	stopped bool
}

func newHub(bus *herald.Bus, head uint64, size int, log *slog.Logger) *hub {
	return &hub{bus: bus, log: log, size: size, base: head, head: head, notify: make(chan struct{})}
}

func (h *hub) run(ctx context.Context) {
	defer func() {
		h.mu.Lock()
		h.stopped = true
		close(h.notify)
		h.mu.Unlock()
	}()
	cursor := h.head
	for ctx.Err() == nil {
		head, err := h.bus.Wait(ctx, cursor)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, herald.ErrClosed) {
				return
			}
			h.log.Warn("stream hub: waiting for events", "err", err)
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		if h.streams.Load() == 0 {
			// Nobody listens: forget rather than read. A stream that
			// opens now finds its cursor below base and reads the store.
			h.skipTo(head)
			cursor = head
			continue
		}
		var batch []*hubEntry
		for e, rerr := range h.bus.Read(ctx, cursor, herald.Filter{Limit: 1024}, herald.Raw()) {
			if rerr != nil {
				err = rerr
				break
			}
			batch = append(batch, &hubEntry{e: e, size: len(e.Data) + 256})
			cursor = e.Position
		}
		if err != nil && ctx.Err() == nil {
			h.log.Warn("stream hub: reading events", "err", err)
			sleep(ctx, 200*time.Millisecond)
		}
		if len(batch) > 0 {
			h.add(batch)
		}
	}
}

func (h *hub) add(batch []*hubEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, batch...)
	for _, b := range batch {
		h.bytes += b.size
	}
	h.head = batch[len(batch)-1].e.Position
	drop := 0
	for len(h.entries)-drop > h.size || (h.bytes > hubMaxBytes && len(h.entries)-drop > 1) {
		h.bytes -= h.entries[drop].size
		drop++
	}
	if drop > 0 {
		h.base = h.entries[drop-1].e.Position
		clear(h.entries[:drop])
		h.entries = h.entries[drop:]
		if cap(h.entries) > 4*h.size {
			h.entries = append([]*hubEntry(nil), h.entries...)
		}
	}
	close(h.notify)
	h.notify = make(chan struct{})
}

// skipTo forgets every event up to head.
func (h *hub) skipTo(head uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if head <= h.head {
		return
	}
	clear(h.entries)
	h.entries = h.entries[:0]
	h.bytes = 0
	h.base, h.head = head, head
}

// since returns up to max entries after cursor, the channel closed on the
// next arrival, and ok=false when the hub no longer holds every event after
// cursor (the stream must read the store, or is too slow).
func (h *hub) since(cursor uint64, max int) (out []*hubEntry, next <-chan struct{}, base uint64, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if cursor < h.base {
		return nil, h.notify, h.base, false
	}
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].e.Position > cursor })
	j := min(len(h.entries), i+max)
	out = append(out, h.entries[i:j]...)
	return out, h.notify, h.base, true
}

func (h *hub) currentHead() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.head
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// streamFlushBytes is how much a stream buffers before it writes.
const streamFlushBytes = 256 << 10

// catchUpPage is how many events a stream reads from the store at a time
// while it catches up.
const catchUpPage = 500

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	pattern := q.Get("name")
	if pattern != "" {
		if err := herald.ValidatePattern(pattern); err != nil {
			return badRequest("name", "%s", cleanMessage(err.Error()))
		}
	}
	filtered := false
	if pattern == "" {
		// What the token may read: its one pattern, or every event
		// filtered by mayRead below (which every stream does anyway).
		pattern, filtered = p.defaultReadPattern()
	}
	if !filtered {
		if err := s.checkReadPattern(p, pattern); err != nil {
			return err
		}
	}
	if !p.open() {
		done, err := s.takeIdentityStream(p.identity())
		if err != nil {
			return err
		}
		defer done()
	}
	if n := s.hub.streams.Add(1); n > int64(s.cfg.maxStreams) {
		s.hub.streams.Add(-1)
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure, Index: -1, RetryAfter: 5 * time.Second,
			Message: fmt.Sprintf("too many open streams (%d); retry later", s.cfg.maxStreams)}
	}
	defer s.hub.streams.Add(-1)
	cursor := s.hub.currentHead()
	from := r.Header.Get("Last-Event-ID")
	field := "Last-Event-ID"
	if from == "" {
		from, field = q.Get("after"), "after"
	}
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil || n > math.MaxInt64 {
			return badRequest(field, "%s must be an event position", field)
		}
		cursor = n
	}
	ce := wantsCloudEvents(r)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", ctEventStream)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.m.streams.Inc()
	defer s.m.streams.Dec()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	if !p.open() {
		// Revoking the token ends the stream.
		unwatch, ok := s.auth.watch(p.tok.ID, cancel)
		if !ok {
			return nil
		}
		defer unwatch()
	}

	buf := make([]byte, 0, 4096)
	buf = append(buf, "retry: 2000\n: stream open\n\n"...)
	write := func() bool {
		rc.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
		if _, err := w.Write(buf); err != nil {
			return false
		}
		buf = buf[:0]
		return rc.Flush() == nil
	}
	// The connection may serve other requests after the stream: leave no
	// write deadline behind.
	defer rc.SetWriteDeadline(time.Time{})
	if !write() {
		return nil
	}
	frame := func(pos uint64, data []byte) {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, pos, 10)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, data...)
		buf = append(buf, "\n\n"...)
	}
	heartbeat := time.NewTicker(s.cfg.heartbeat)
	defer heartbeat.Stop()
	live := false
	f := herald.Filter{Name: pattern, CorrelationID: q.Get("correlation_id"), Subject: q.Get("subject"),
		SourcePlugin: q.Get("source_plugin"), Limit: catchUpPage}
	for {
		entries, next, base, ok := s.hub.since(cursor, 256)
		if !ok {
			if live {
				// The stream fell behind the hub while live: drop it rather
				// than read the store for it. It resumes with Last-Event-ID.
				s.m.dropped.Inc()
				s.log.Info("SSE stream too slow, disconnected", "remote", r.RemoteAddr, "position", cursor)
				panic(http.ErrAbortHandler) // close the connection now

			}
			release, ok := s.takeCatchUp(ctx, p.identity())
			if !ok {
				return nil
			}
			n, last := 0, cursor
			for e, err := range s.bus.Read(ctx, cursor, f, herald.Raw()) {
				if err != nil {
					release()
					return nil
				}
				if p.mayRead(e.Name) {
					if d := s.decoded(ctx, e); d != nil {
						if b, merr := encodeStreamEvent(d, ce); merr == nil {
							frame(e.Position, b)
						}
					}
				}
				n++
				last = e.Position
				if len(buf) >= streamFlushBytes && !write() {
					release()
					return nil
				}
			}
			if ctx.Err() != nil {
				release()
				return nil
			}
			if n < catchUpPage {
				last = max(last, base)
			}
			cursor = last
			ok = len(buf) == 0 || write()
			release()
			if !ok {
				return nil
			}
			continue
		}
		live = true
		if len(entries) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-next:
				if s.hubStopped() {
					return nil
				}
			case <-heartbeat.C:
				buf = append(buf, ": heartbeat\n\n"...)
				if !write() {
					return nil
				}
			}
			continue
		}
		select {
		case <-heartbeat.C: // a filtered stream may see only events it skips
			buf = append(buf, ": heartbeat\n\n"...)
		default:
		}
		for _, en := range entries {
			cursor = en.e.Position
			if f.Match(en.e) && p.mayRead(en.e.Name) {
				if b := s.hubFrame(ctx, en, ce); b != nil {
					frame(en.e.Position, b)
				}
				if len(buf) >= streamFlushBytes && !write() {
					s.m.dropped.Inc()
					return nil
				}
			}
		}
		if len(buf) > 0 && !write() {
			s.m.dropped.Inc()
			return nil
		}
	}
}

func (s *Server) hubStopped() bool {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	return s.hub.stopped
}

func encodeStreamEvent(e *herald.Event, ce bool) ([]byte, error) {
	if ce {
		return json.Marshal(toCloudEvent(e))
	}
	return json.Marshal(e)
}

// At most maxCatchUps streams read the store at once (a stream that starts
// behind the events the hub keeps, or falls behind them), and at most
// maxCatchUpsPerIdentity of one identity (an open server has only the
// total cap): each holds a page of events and
// its frames until its client has taken them, which a client that does
// not read makes last the write timeout. Other streams wait their turn,
// holding nothing.
const (
	maxCatchUps            = 32
	maxCatchUpsPerIdentity = 4
)

// takeCatchUp waits for a turn of identity's stream to read a page from
// the store; it reports false when ctx ends first. Call release after the
// page is written.
func (s *Server) takeCatchUp(ctx context.Context, identity string) (release func(), ok bool) {
	if identity == "" { // an open server: only the total cap
		select {
		case s.catchUps <- struct{}{}:
			return func() { <-s.catchUps }, true
		case <-ctx.Done():
			return nil, false
		}
	}
	s.streamMu.Lock()
	own := s.catchUpsBy[identity]
	if own == nil {
		own = make(chan struct{}, maxCatchUpsPerIdentity)
		s.catchUpsBy[identity] = own
	}
	s.streamMu.Unlock()
	select {
	case own <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	select {
	case s.catchUps <- struct{}{}:
	case <-ctx.Done():
		<-own
		return nil, false
	}
	return func() { <-s.catchUps; <-own }, true
}

// DefaultMaxStreamsPerIdentity is how many SSE streams one identity may
// hold open at once unless WithMaxStreamsPerIdentity says otherwise.
const DefaultMaxStreamsPerIdentity = 100

// takeIdentityStream counts one more stream of identity, or refuses it
// (429) when the identity holds its cap; done gives the slot back.
func (s *Server) takeIdentityStream(identity string) (done func(), err error) {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.streamsBy[identity] >= s.cfg.maxStreamsPerID {
		e := newError(http.StatusTooManyRequests, CodeRateLimited,
			"this identity holds %d open streams, its cap: close one first", s.cfg.maxStreamsPerID)
		e.RetryAfter = 5 * time.Second
		return nil, e
	}
	s.streamsBy[identity]++
	return func() {
		s.streamMu.Lock()
		defer s.streamMu.Unlock()
		if s.streamsBy[identity]--; s.streamsBy[identity] <= 0 {
			delete(s.streamsBy, identity)
		}
	}, nil
}
