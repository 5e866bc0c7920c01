package herald

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ctxKey is the context key of a handler's context.
type ctxKey struct{}

// handlerCtx is the context a handler runs with: one allocation per attempt
// that is at once the context.Context (ending at the handler timeout or
// when the subscription is stopped for good) and the carrier of the
// event's EventContext. Its Done channel and timer are made only when the
// handler asks for Done.
type handlerCtx struct {
	parent   context.Context
	deadline time.Time
	ev       *Event // nil for a batch
	sub      string
	attempt  int32
	children atomic.Int32

	mu         sync.Mutex
	done       chan struct{}
	err        error
	stopTimer  func() bool
	stopParent func() bool
}

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
	if c.done != nil {
		return c.done
	}
	if c.err != nil {
		c.done = closedChan
		return c.done
	}
	c.done = make(chan struct{})
	d := time.Until(c.deadline)
	if d <= 0 {
		c.cancelLocked(context.DeadlineExceeded)
		return c.done
	}
	c.stopTimer = time.AfterFunc(d, func() { c.cancel(context.DeadlineExceeded) }).Stop
	if c.parent.Done() != nil {
		c.stopParent = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	}
	return c.done
}

func (c *handlerCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		c.cancel(context.DeadlineExceeded)
		return context.DeadlineExceeded
	}
	if err := c.parent.Err(); err != nil {
		c.cancel(err)
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

func (c *handlerCtx) cancel(err error) {
	c.mu.Lock()
	c.cancelLocked(err)
	c.mu.Unlock()
}

func (c *handlerCtx) cancelLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil && c.done != closedChan {
		close(c.done)
	}
	if c.stopTimer != nil {
		c.stopTimer()
	}
	if c.stopParent != nil {
		c.stopParent()
	}
}

// release ends the context once the handler returned.
func (c *handlerCtx) release() { c.cancel(context.Canceled) }

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
