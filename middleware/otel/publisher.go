package heraldotel

import (
	"context"
	"errors"

	"github.com/heraldhq/herald"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Publisher publishes on a herald.Bus with tracing: every call opens a
// producer span and writes its context into the events' metadata, so the
// handlers of the events continue the trace. Publish from a handler with
// the handler's context (the one Middleware gives it) and the event is a
// child of the handler's span as well as a response event of the bus.
//
// A Publisher is safe for concurrent use. It does not own the bus: closing
// the bus is the caller's business, and a Publisher of a closed bus
// returns herald.ErrClosed like the bus does.
type Publisher struct {
	bus    *herald.Bus
	cfg    config
	tracer trace.Tracer
}

// NewPublisher returns a Publisher over b. It fails when b is nil.
func NewPublisher(b *herald.Bus, opts ...Option) (*Publisher, error) {
	if b == nil {
		return nil, errors.New("heraldotel: nil bus")
	}
	c := newConfig(opts)
	return &Publisher{bus: b, cfg: c, tracer: c.tracer()}, nil
}

// Bus returns the bus p publishes on.
func (p *Publisher) Bus() *herald.Bus { return p.bus }

// Publish publishes e on the bus as herald.Bus.Publish does, within a
// producer span named "publish <name>" whose context it writes into e's
// metadata first (see Inject). The span carries messaging.system "herald",
// messaging.destination.name (the event's name), messaging.message.id,
// messaging.message.conversation_id (the correlation id) and, once
// stored, herald.position; a failed publish records the error on the span
// and sets its status to Error. The error is the bus's, unchanged.
func (p *Publisher) Publish(ctx context.Context, e *herald.Event, opts ...herald.PublishOption) (uint64, error) {
	if e == nil {
		return p.bus.Publish(ctx, e, opts...)
	}
	ctx, span := p.tracer.Start(ctx, spanName("publish", e.Name),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messagingSystem,
			semconv.MessagingOperationName("publish"), semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(e.Name)))
	defer span.End()
	inject(ctx, p.cfg.prop(), e)
	pos, err := p.bus.Publish(ctx, e, opts...)
	// The bus has filled in the id and correlation id, even of a refused
	// event when it got that far.
	span.SetAttributes(eventIDs(e)...)
	if err != nil {
		failed(span, err)
		return pos, err
	}
	span.SetAttributes(PositionKey.Int64(int64(pos)))
	return pos, nil
}

// PublishBatch publishes events atomically as herald.Bus.PublishBatch
// does, within one producer span for the batch whose context it writes
// into every event's metadata. The span is named "publish <name>" when
// all events share a name and "publish" otherwise, and carries
// messaging.batch.message_count; messaging.destination.name only when the
// events share a name, and the message and conversation ids only for a
// batch of one. A failed publish records the error on the span. The
// results and error are the bus's, unchanged.
func (p *Publisher) PublishBatch(ctx context.Context, events []*herald.Event, opts ...herald.PublishOption) ([]herald.AppendResult, error) {
	if len(events) == 0 {
		return p.bus.PublishBatch(ctx, events, opts...)
	}
	name := commonName(events)
	attrs := []attribute.KeyValue{messagingSystem,
		semconv.MessagingOperationName("publish"), semconv.MessagingOperationTypeSend,
		semconv.MessagingBatchMessageCount(len(events))}
	if name != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(name))
	}
	ctx, span := p.tracer.Start(ctx, spanName("publish", name),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()
	prop := p.cfg.prop()
	for _, e := range events {
		inject(ctx, prop, e)
	}
	res, err := p.bus.PublishBatch(ctx, events, opts...)
	if len(events) == 1 && events[0] != nil {
		span.SetAttributes(eventIDs(events[0])...)
	}
	if err != nil {
		failed(span, err)
		return res, err
	}
	return res, nil
}

// commonName returns the name all events share, or "".
func commonName(events []*herald.Event) string {
	name := ""
	for i, e := range events {
		switch {
		case e == nil:
			return ""
		case i == 0:
			name = e.Name
		case e.Name != name:
			return ""
		}
	}
	return name
}

func spanName(op, name string) string {
	if name == "" {
		return op
	}
	return op + " " + name
}

func eventIDs(e *herald.Event) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if e.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(e.ID))
	}
	if e.CorrelationID != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(e.CorrelationID))
	}
	return attrs
}

// failed records err on span and marks the span as failed.
func failed(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
