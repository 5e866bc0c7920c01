// Package middleware wraps herald handlers with cross-cutting behaviour:
// logging, timeouts, panic recovery and metrics. A Middleware is a function
// from Handler to Handler; Chain applies several in order.
//
// The bus itself already recovers panics, applies its per-subscription
// timeout, logs failures and records metrics; these wrappers are for
// handlers that need more (a tighter timeout for one handler, a log line
// per success, metrics by outcome) or that are called outside a bus.
package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/heraldhq/herald"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware wraps a Handler.
type Middleware func(herald.Handler) herald.Handler

// Chain returns h wrapped by mws, the first of mws outermost:
// Chain(h, a, b) handles an event as a(b(h)).
func Chain(h herald.Handler, mws ...Middleware) herald.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Logging logs every handled event on l: at level (Debug when 0 is not
// wanted, pass slog.LevelInfo for a line per event) when the handler
// succeeds and at Warn when it fails, with the event's id, name,
// correlation id, subscription, attempt and the duration. It never logs
// the payload. A nil logger logs nothing.
func Logging(l *slog.Logger, level slog.Level) Middleware {
	return func(next herald.Handler) herald.Handler {
		if l == nil {
			return next
		}
		return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
			start := time.Now()
			err := next.Handle(ctx, e)
			lvl := level
			if err != nil {
				lvl = slog.LevelWarn
			}
			if !l.Enabled(ctx, lvl) {
				return err
			}
			attrs := []slog.Attr{
				slog.String("event_id", e.ID), slog.String("event_name", e.Name),
				slog.String("correlation_id", e.CorrelationID),
				slog.Duration("duration", time.Since(start)),
			}
			if ec, ok := herald.FromContext(ctx); ok {
				attrs = append(attrs, slog.String("subscription", ec.Subscription), slog.Int("attempt", ec.Attempt))
			}
			msg := "event handled"
			if err != nil {
				msg = "event handler failed"
				attrs = append(attrs, slog.String("error", err.Error()), slog.Bool("permanent", herald.IsPermanent(err)))
			}
			l.LogAttrs(ctx, lvl, msg, attrs...)
			return err
		})
	}
}

// Timeout gives each call at most d: the handler's context ends then. An
// error returned after the deadline passed is marked temporary, so the bus
// retries it. d <= 0 leaves the handler as it is.
func Timeout(d time.Duration) Middleware {
	return func(next herald.Handler) herald.Handler {
		if d <= 0 {
			return next
		}
		return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			err := next.Handle(ctx, e)
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !herald.IsPermanent(err) {
				return herald.Temporary(fmt.Errorf("handler timed out after %v: %w", d, err))
			}
			return err
		})
	}
}

// PanicError is the error Recover returns for a recovered panic.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.Value) }

// Recover turns a panic in the handler into a *PanicError (with the
// stack), which the bus treats as an unexpected error: logged and retried.
// With permanent set, the error is marked herald.Permanent instead, so the
// event goes straight to the dead-letter queue.
func Recover(permanent bool) Middleware {
	return func(next herald.Handler) herald.Handler {
		return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
					if permanent {
						err = herald.Permanent(err)
					}
				}
			}()
			return next.Handle(ctx, e)
		})
	}
}

// Metrics records each call in the histogram
// herald_handler_duration_seconds{handler, event, result} registered on r
// (result is "ok", "error" or "permanent"). handler names the wrapped
// handler. It fails when r refuses the histogram for a reason other than
// an identical one being registered already (then that one is shared).
func Metrics(r prometheus.Registerer, handler string) (Middleware, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_handler_duration_seconds",
		Help:    "Duration of handler calls wrapped by middleware.Metrics, by handler, event name and result.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
	}, []string{"handler", "event", "result"})
	if err := r.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.HistogramVec)
		if !ok {
			return nil, err
		}
		h = existing
	}
	return func(next herald.Handler) herald.Handler {
		return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
			start := time.Now()
			err := next.Handle(ctx, e)
			result := "ok"
			switch {
			case herald.IsPermanent(err):
				result = "permanent"
			case err != nil:
				result = "error"
			}
			h.WithLabelValues(handler, e.Name, result).Observe(time.Since(start).Seconds())
			return err
		})
	}, nil
}
