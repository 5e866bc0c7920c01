package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// throttled returns a handler that passes at most burst warnings and
// errors with the same message and subscription per window to next, and
// then one line saying how many it dropped. Lines below Warn pass
// untouched. It keeps a subscription whose endpoint fails without end from
// filling the disk with the same line (delivery failures are logged per
// attempt).
func throttled(next slog.Handler, burst int, window time.Duration) slog.Handler {
	return &throttleHandler{next: next, st: &throttleState{burst: burst, window: window, seen: map[string]*throttleWindow{}}}
}

type throttleState struct {
	burst  int
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*throttleWindow
}

type throttleWindow struct {
	start      time.Time
	n, dropped int
}

type throttleHandler struct {
	next slog.Handler
	st   *throttleState
}

func (h *throttleHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *throttleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &throttleHandler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *throttleHandler) WithGroup(name string) slog.Handler {
	return &throttleHandler{next: h.next.WithGroup(name), st: h.st}
}

func (h *throttleHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "subscription" {
			key += "\x00" + a.Value.String()
			return false
		}
		return true
	})
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	st := h.st
	st.mu.Lock()
	w := st.seen[key]
	var dropped int
	if w == nil || now.Sub(w.start) >= st.window {
		if w != nil {
			dropped = w.dropped
		}
		w = &throttleWindow{start: now}
		st.seen[key] = w
		// Forget keys that went quiet, so that the map stays small.
		for k, o := range st.seen {
			if now.Sub(o.start) >= 2*st.window {
				delete(st.seen, k)
			}
		}
	}
	w.n++
	pass := w.n <= st.burst
	if !pass {
		w.dropped++
	}
	st.mu.Unlock()
	if dropped > 0 {
		s := slog.NewRecord(now, r.Level, "log lines dropped: the same line came too often", 0)
		s.AddAttrs(slog.String("line", r.Message), slog.Int("dropped", dropped), slog.Duration("window", st.window))
		if err := h.next.Handle(ctx, s); err != nil {
			return err
		}
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}
