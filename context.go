package herald

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ctxKey is the context key of a handler's context.
type ctxKey struct{}

// handlerCtx is the context a handler runs with: one small allocation per
// attempt that is at once the context.Context (ending at the handler
// timeout, when the subscription is stopped for good, or when the handler
// returns) and the carrier of the event's EventContext. It is allocated on
// its own, so a handler that keeps it keeps nothing else alive.
//
// Its Done channel and timer are made only when the handler asks for Done.
// It has an AfterFunc method, which context.WithCancel, WithTimeout,
// WithDeadline and context.AfterFunc use to cancel what is derived from it,
// so deriving a context starts no goroutine.
type handlerCtx struct {
	parent   context.Context
	deadline time.Time
	ev       *Event // nil for a batch
	sub      string
	attempt  int32
	children atomic.Int32

	mu   sync.Mutex
	ends uint8     // why it ended (endNone while it runs)
	x    *ctxExtra // made by Done or AfterFunc
}

// Why a handler context ended.
const (
	endNone uint8 = iota
	endCanceled
	endDeadline
)

// ctxExtra is what only a context that was waited on needs.
type ctxExtra struct {
	done       chan struct{}
	stopTimer  func() bool
	stopParent func() bool
	afters     []*afterFunc
}

// afterFunc is a function registered with handlerCtx.AfterFunc.
type afterFunc struct{ f func() }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *handlerCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *handlerCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.x != nil && c.x.done != nil {
		return c.x.done
	}
	if c.ends != endNone {
		return closedChan
	}
	if c.watchLocked() {
		return closedChan
	}
	return c.x.done
}

// watchLocked makes the Done channel and arranges for the context to end at
// its deadline or with its parent. It reports true when it ended already.
func (c *handlerCtx) watchLocked() bool {
	if c.x == nil {
		c.x = &ctxExtra{}
	}
	if c.x.done != nil {
		return false
	}
	c.x.done = make(chan struct{})
	d := time.Until(c.deadline)
	if d <= 0 {
		c.endLocked(endDeadline)
		return true
	}
	if err := c.parent.Err(); err != nil {
		c.endLocked(endOf(err))
		return true
	}
	c.x.stopTimer = time.AfterFunc(d, func() { c.cancel(endDeadline) }).Stop
	if c.parent.Done() != nil {
		c.x.stopParent = context.AfterFunc(c.parent, func() { c.cancel(endOf(c.parent.Err())) })
	}
	return false
}

func endOf(err error) uint8 {
	if errors.Is(err, context.DeadlineExceeded) {
		return endDeadline
	}
	return endCanceled
}

func (c *handlerCtx) Err() error {
	c.mu.Lock()
	ends := c.ends
	c.mu.Unlock()
	switch {
	case ends == endCanceled:
		return context.Canceled
	case ends == endDeadline:
		return context.DeadlineExceeded
	case !time.Now().Before(c.deadline):
		c.cancel(endDeadline)
		return context.DeadlineExceeded
	}
	if err := c.parent.Err(); err != nil {
		c.cancel(endOf(err))
		return err
	}
	return nil
}

func (c *handlerCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.parent.Value(key)
}

// AfterFunc arranges for f to run once the context ends (at once, on its
// own goroutine, when it has ended already); stop unregisters f and
// reports whether it did so before f started. The context package finds
// this method: contexts derived from a handler's context are cancelled
// through it rather than by a goroutine each. f runs on the goroutine that
// ends the context, as a cancelCtx runs its children's cancellation:
// context.AfterFunc wraps the caller's function in one that starts its
// own goroutine.
func (c *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.ends != endNone || c.watchLocked() {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.x.afters = append(c.x.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.x == nil {
			return false
		}
		for i, b := range c.x.afters {
			if b == a {
				c.x.afters = slices.Delete(c.x.afters, i, i+1)
				return true
			}
		}
		return false
	}
}

func (c *handlerCtx) cancel(why uint8) {
	c.mu.Lock()
	afters := c.endLocked(why)
	c.mu.Unlock()
	for _, a := range afters {
		a.f()
	}
}

// endLocked ends the context and returns the functions to run.
func (c *handlerCtx) endLocked(why uint8) []*afterFunc {
	if c.ends != endNone {
		return nil
	}
	c.ends = why
	x := c.x
	if x == nil {
		return nil
	}
	if x.done != nil {
		close(x.done)
	}
	if x.stopTimer != nil {
		x.stopTimer()
	}
	if x.stopParent != nil {
		x.stopParent()
	}
	afters := x.afters
	x.afters = nil
	return afters
}

// release ends the context once the handler returned.
func (c *handlerCtx) release() { c.cancel(endCanceled) }

// FromContext returns the EventContext of the event a handler is working
// on, and false when ctx is not the context of a Handler (a BatchHandler's
// context carries no single event).
func FromContext(ctx context.Context) (EventContext, bool) {
	if c := handlerFrom(ctx); c != nil {
		return c.eventContext(), true
	}
	return EventContext{}, false
}

func (c *handlerCtx) eventContext() EventContext {
	e := c.ev
	return EventContext{
		EventID: e.ID, EventName: e.Name, CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		SourcePlugin: e.SourcePlugin, Subject: e.Subject, Metadata: e.Metadata,
		Subscription: c.sub, Attempt: int(c.attempt), Timestamp: e.Timestamp, Position: e.Position,
	}
}

func handlerFrom(ctx context.Context) *handlerCtx {
	if ctx == nil {
		return nil
	}
	if c, ok := ctx.(*handlerCtx); ok {
		if c.ev == nil {
			return nil
		}
		return c
	}
	if c, ok := ctx.Value(ctxKey{}).(*handlerCtx); ok && c.ev != nil {
		return c
	}
	return nil
}
