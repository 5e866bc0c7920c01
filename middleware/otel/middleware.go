package heraldotel

import (
	"context"
	"errors"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// errHandlerPanicked is recorded on the span of a handler that panicked.
var errHandlerPanicked = errors.New("handler panicked")

// Middleware returns a middleware.Middleware that traces each call of the
// handler in a consumer span named "process <name>". The span's parent is
// the trace context in the event's metadata (see Extract); without one it
// is the span already in the handler's context, if any, else the span
// starts a new trace.
//
// The span carries messaging.system "herald", messaging.operation.type
// "process", messaging.destination.name (the event's name),
// messaging.message.id, messaging.message.conversation_id (the correlation
// id), herald.position, herald.causation_id when the event has a cause,
// and, when the handler runs under a bus (herald.FromContext),
// messaging.destination.subscription.name and herald.attempt. A handler
// error is recorded on the span with status Error (and herald.permanent
// true when it is marked herald.Permanent), a nil error sets status Ok,
// and a panic is recorded (with its stack, not its value), ends the span
// and goes on up to the bus untouched.
//
// The handler gets a context that wraps the bus's: herald.FromContext,
// the deadline and the bus's response-event rules still apply, and the
// span is the current span in it, so a Publisher given that context
// publishes children of the span. The middleware is safe for concurrent
// use.
func Middleware(opts ...Option) middleware.Middleware {
	c := newConfig(opts)
	tracer := c.tracer()
	return func(next herald.Handler) herald.Handler {
		return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) (err error) {
			if e == nil {
				return next.Handle(ctx, e)
			}
			attrs := make([]attribute.KeyValue, 0, 10)
			attrs = append(attrs, messagingSystem,
				semconv.MessagingOperationName("process"), semconv.MessagingOperationTypeProcess,
				semconv.MessagingDestinationName(e.Name), semconv.MessagingMessageID(e.ID),
				semconv.MessagingMessageConversationID(e.CorrelationID),
				PositionKey.Int64(int64(e.Position)))
			if e.CausationID != "" {
				attrs = append(attrs, CausationIDKey.String(e.CausationID))
			}
			if ec, ok := herald.FromContext(ctx); ok {
				attrs = append(attrs, semconv.MessagingDestinationSubscriptionName(ec.Subscription),
					AttemptKey.Int(ec.Attempt))
			}
			ctx, span := tracer.Start(extract(ctx, c.prop(), e), spanName("process", e.Name),
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
			returned := false
			defer func() {
				if !returned {
					// Panicking: the stack still holds the panic's frames.
					// The panic goes on to the bus untouched.
					span.RecordError(errHandlerPanicked, trace.WithStackTrace(true))
					span.SetStatus(codes.Error, errHandlerPanicked.Error())
				}
				span.End()
			}()
			err = next.Handle(ctx, e)
			returned = true
			if err != nil {
				if herald.IsPermanent(err) {
					span.SetAttributes(PermanentKey.Bool(true))
				}
				failed(span, err)
			} else {
				span.SetStatus(codes.Ok, "")
			}
			return err
		})
	}
}
