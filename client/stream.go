package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald/api"
)

// maxSSEEvent bounds one server-sent event (an event is at most 1 MiB by
// default; a server may raise that).
const maxSSEEvent = 8 << 20

// StreamOption changes a Stream call.
type StreamOption func(*streamConfig)

type streamConfig struct {
	after    uint64
	hasAfter bool
	minWait  time.Duration
	maxWait  time.Duration
	onDrop   func(error)
}

// StreamAfter starts the stream after position n (exclusive): the events
// already stored after n come first, then live ones. StreamAfter(0) streams
// the whole log. Default: only events published from now on.
func StreamAfter(n uint64) StreamOption {
	return func(c *streamConfig) { c.after, c.hasAfter = n, true }
}

// StreamReconnectWait bounds the wait between reconnection attempts after
// the connection drops: it starts at min and doubles up to max. Default:
// 100 ms and 5 s. A retry: field from the server raises min.
func StreamReconnectWait(min, max time.Duration) StreamOption {
	return func(c *streamConfig) {
		if min > 0 {
			c.minWait = min
		}
		if max >= c.minWait {
			c.maxWait = max
		}
	}
}

// StreamOnDrop calls f each time the connection drops, with the reason,
// before the stream reconnects. f runs in the goroutine that called Next.
// Default: nothing is called.
func StreamOnDrop(f func(err error)) StreamOption {
	return func(c *streamConfig) { c.onDrop = f }
}

// Stream is a live tail of the server's event log over Server-Sent Events.
// When the connection drops it reconnects by itself, resuming after the
// last position it delivered (Last-Event-ID), so no event is missed or
// delivered twice.
//
// A Stream is read by one goroutine (Next or All); Close may be called from
// any goroutine, more than once. After Close, Next returns api.ErrClosed.
type Stream struct {
	c       *Client
	ctx     context.Context // the caller's
	sctx    context.Context // ends on Close or with ctx
	cancel  context.CancelFunc
	pattern string
	cfg     streamConfig

	mu     sync.Mutex
	resp   *http.Response
	closed bool

	r       *sseReader
	last    uint64
	hasLast bool
}

// Stream opens a live tail of the events whose names match pattern (""
// or ">" for all). It returns once the server accepted the stream; an
// error answer (unauthorized, forbidden pattern) comes back at once. The
// caller must Close the stream; cancelling ctx ends it too.
func (c *Client) Stream(ctx context.Context, pattern string, opts ...StreamOption) (*Stream, error) {
	cfg := streamConfig{minWait: 100 * time.Millisecond, maxWait: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{c: c, ctx: ctx, sctx: sctx, cancel: cancel, pattern: pattern, cfg: cfg}
	if cfg.hasAfter {
		s.last, s.hasLast = cfg.after, true
	} else if head, err := c.Ready(ctx); err == nil {
		// Start live, but from a known position, so that a connection that
		// drops before the first matching event resumes without a gap.
		s.last, s.hasLast = head, true
	}
	if err := s.connect(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Ready asks the server whether it is ready to serve (GET /readyz) and
// returns the position of the last event in its log. A server that is
// starting or stopping answers with an error wrapping api.ErrBackpressure.
func (c *Client) Ready(ctx context.Context) (head uint64, err error) {
	var out struct {
		Head *uint64 `json:"head"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, &out); err != nil {
		return 0, err
	}
	if out.Head == nil {
		return 0, errShortAnswer("GET /readyz")
	}
	return *out.Head, nil
}

// Status returns what GET /v1/status says of the server: its version, its
// store, its head and the push subscriptions this token may see.
func (c *Client) Status(ctx context.Context) (*api.ServerStatus, error) {
	var out api.ServerStatus
	if _, err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Position returns the position of the last event the stream delivered
// (or the StreamAfter position before the first).
func (s *Stream) Position() uint64 { return s.last }

// connect opens the SSE request, resuming after s.last when known.
func (s *Stream) connect() error {
	q := url.Values{}
	if s.pattern != "" {
		q.Set("name", s.pattern)
	}
	if s.hasLast {
		q.Set("after", strconv.FormatUint(s.last, 10))
	}
	req, err := s.c.newRequest(s.sctx, http.MethodGet, "/v1/stream", q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.hasLast {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(s.last, 10))
	}
	resp, err := s.c.send(req)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return fmt.Errorf("herald client: GET /v1/stream answered %q, not text/event-stream", mt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		resp.Body.Close()
		return api.ErrClosed
	}
	s.resp = resp
	s.r = newSSEReader(resp.Body, maxSSEEvent)
	return nil
}

// drop closes the current connection, if any.
func (s *Stream) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resp != nil {
		s.resp.Body.Close()
		s.resp = nil
	}
	s.r = nil
}

// Next blocks until the next event arrives and returns it. It reconnects
// when the connection drops, waiting between attempts, until the server
// answers with an error that retrying cannot mend (such as
// api.ErrUnauthorized), the caller's context ends (its error is
// returned) or the stream is closed (api.ErrClosed).
func (s *Stream) Next() (*api.Event, error) {
	wait := s.cfg.minWait
	for {
		if err := s.stopped(); err != nil {
			return nil, err
		}
		if s.r == nil {
			if err := s.connect(); err != nil {
				if stop := s.stopped(); stop != nil {
					return nil, stop
				}
				if !reconnectable(err) {
					return nil, err
				}
				if err := s.sleep(wait); err != nil {
					return nil, err
				}
				wait = min(wait*2, s.cfg.maxWait)
				continue
			}
		}
		ev, err := s.r.next()
		if err != nil {
			s.drop()
			if stop := s.stopped(); stop != nil {
				return nil, stop
			}
			if errors.Is(err, errSSETooLong) {
				return nil, err
			}
			if s.cfg.onDrop != nil {
				s.cfg.onDrop(err)
			}
			continue
		}
		e, ok, err := s.decode(ev)
		if err != nil {
			s.drop()
			return nil, err
		}
		if ok {
			return e, nil
		}
		wait = s.cfg.minWait
	}
}

// decode turns one SSE event into a herald event. It reports ok=false for
// events to skip: keep-alives, other event types, and positions already
// delivered.
func (s *Stream) decode(ev sseEvent) (*api.Event, bool, error) {
	if s.r != nil && s.r.retry > s.cfg.minWait {
		s.cfg.minWait = min(s.r.retry, s.cfg.maxWait)
	}
	switch ev.Type {
	case "", "message", "event":
	default:
		return nil, false, nil
	}
	var e api.Event
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, false, fmt.Errorf("herald client: stream: decoding an event: %w", err)
	}
	if e.Name == "" {
		return nil, false, nil
	}
	if pos, err := strconv.ParseUint(ev.ID, 10, 64); err == nil && e.Position == 0 {
		e.Position = pos
	}
	if s.hasLast && e.Position != 0 && e.Position <= s.last {
		return nil, false, nil // delivered before a reconnection
	}
	if e.Position != 0 {
		s.last, s.hasLast = e.Position, true
	}
	return &e, true, nil
}

// stopped returns the error to end with once the stream is closed or its
// context has ended, else nil.
func (s *Stream) stopped() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.sctx.Err() != nil {
		return api.ErrClosed
	}
	return nil
}

func (s *Stream) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.sctx.Done():
		return s.stopped()
	}
}

// reconnectable reports whether a failed reconnection is worth retrying:
// the server was unreachable, overloaded or failing, not refusing.
func reconnectable(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	var he *Error
	if errors.As(err, &he) {
		return he.Status >= 500 || he.Status == http.StatusTooManyRequests || he.Status == http.StatusRequestTimeout
	}
	return false
}

// All yields the stream's events as Next returns them, until an error,
// which comes as the last pair (api.ErrClosed or the context's error
// when the stream was stopped). Breaking out of the loop leaves the stream
// open.
func (s *Stream) All() iter.Seq2[*api.Event, error] {
	return func(yield func(*api.Event, error) bool) {
		for {
			e, err := s.Next()
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Close ends the stream and its connection. It is safe to call from any
// goroutine and more than once; a blocked Next returns api.ErrClosed.
func (s *Stream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resp != nil {
		s.resp.Body.Close()
		s.resp = nil
	}
	return nil
}
