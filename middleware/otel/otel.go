// Package heraldotel traces herald events with OpenTelemetry.
//
// Trace context travels in an event's metadata, in the W3C Trace Context
// form ("traceparent", "tracestate"; "baggage" too when the propagator
// carries it), so it crosses the event log, restarts, retries and the HTTP
// API unchanged, and an event published by a program in another language
// with a "traceparent" in its metadata continues that program's trace.
//
// On the producer side, a Publisher wraps a *herald.Bus: each Publish or
// PublishBatch opens a producer span "publish <name>" and writes its
// context into the events' metadata. Inject does only the writing, for
// events published some other way, and PublishArgs for typed publishing
// (herald.EventType.Publish).
//
// On the consumer side, Middleware wraps a herald.Handler: each call opens
// a consumer span "process <name>" whose parent is the trace context found
// in the event's metadata, records the handler's error, and hands the
// span's context to the handler. Events the handler publishes through a
// Publisher with that context are then children of the span, in the same
// trace. Extract does only the reading, for batch handlers and other
// consumers.
//
// Spans follow the OpenTelemetry semantic conventions for messaging, with
// messaging.system "herald" and the event's name as the destination.
// Payloads are never recorded.
package heraldotel

import (
	"context"
	"maps"
	"slices"

	"github.com/heraldhq/herald"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer heraldotel uses.
const ScopeName = "github.com/heraldhq/herald/middleware/otel"

// Attribute keys of herald's own that the spans carry besides the
// messaging semantic conventions.
const (
	// AttemptKey is the handler attempt, 1 for the first (consumer spans).
	AttemptKey = attribute.Key("herald.attempt")
	// CausationIDKey is the id of the event that caused this one, when it
	// has one (consumer spans).
	CausationIDKey = attribute.Key("herald.causation_id")
	// PositionKey is the event's position in the log.
	PositionKey = attribute.Key("herald.position")
	// PermanentKey is true on a consumer span whose handler returned an
	// error marked herald.Permanent.
	PermanentKey = attribute.Key("herald.permanent")
)

// messagingSystem is the value of messaging.system on every span.
var messagingSystem = semconv.MessagingSystemKey.String("herald")

// Option configures Middleware, NewPublisher, Inject and Extract.
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
}

// WithTracerProvider sets where spans go. The default (and a nil tp) is
// the global otel.GetTracerProvider(), which follows a provider set later
// with otel.SetTracerProvider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithPropagator sets how trace context is written into and read from
// event metadata. The default (and a nil p) is the global
// otel.GetTextMapPropagator(), looked up on every call; while that is the
// empty default, W3C Trace Context (propagation.TraceContext) is used, so
// tracing works without setting a global propagator. Pass
// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
// propagation.Baggage{}) to carry baggage too.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

func (c *config) tracer() trace.Tracer {
	tp := c.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
}

func (c *config) prop() propagation.TextMapPropagator {
	if c.propagator != nil {
		return c.propagator
	}
	p := otel.GetTextMapPropagator()
	if len(p.Fields()) == 0 {
		// The global is still the empty composite: nothing would travel.
		return propagation.TraceContext{}
	}
	return p
}

// Inject writes the trace context of ctx (its current span, and baggage
// when the propagator carries it) into e's metadata, to be published with
// e. It replaces e.Metadata with a copy holding the new entries and never
// writes into the old map, so a map shared between events is safe. When
// ctx has nothing to propagate, e is left as it is, including trace
// context already in its metadata. Inject adds at most as many entries as
// the propagator has fields (two or three); an event over
// herald.MaxMetadataEntries is refused by Publish. A nil e is ignored.
func Inject(ctx context.Context, e *herald.Event, opts ...Option) {
	c := newConfig(opts)
	inject(ctx, c.prop(), e)
}

func inject(ctx context.Context, p propagation.TextMapPropagator, e *herald.Event) {
	if e == nil {
		return
	}
	carrier := propagation.MapCarrier{}
	p.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return
	}
	m := make(map[string]string, len(e.Metadata)+len(carrier))
	maps.Copy(m, e.Metadata)
	maps.Copy(m, carrier)
	e.Metadata = m
}

// PublishArgs returns the trace context of ctx as event options
// (herald.WithMetadata), for typed publishing, which makes its events
// itself:
//
//	args := append(heraldotel.PublishArgs(ctx), herald.WithSubject("order/7"))
//	pos, err := orderPlaced.Publish(ctx, bus, order, args...)
//
// It returns nil when ctx has nothing to propagate. It opens no span;
// Publisher does that for events made by hand.
func PublishArgs(ctx context.Context, opts ...Option) []herald.PublishArg {
	c := newConfig(opts)
	carrier := propagation.MapCarrier{}
	c.prop().Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil
	}
	args := make([]herald.PublishArg, 0, len(carrier))
	for _, k := range slices.Sorted(maps.Keys(carrier)) {
		args = append(args, herald.WithMetadata(k, carrier[k]))
	}
	return args
}

// Extract returns ctx carrying the trace context (and baggage, when the
// propagator carries it) found in e's metadata, to be the parent of the
// spans of e's processing. Without trace context in the metadata (or with
// a nil e) it returns ctx unchanged. The result wraps ctx, so
// herald.FromContext and publishing from a handler keep working with it.
func Extract(ctx context.Context, e *herald.Event, opts ...Option) context.Context {
	c := newConfig(opts)
	return extract(ctx, c.prop(), e)
}

func extract(ctx context.Context, p propagation.TextMapPropagator, e *herald.Event) context.Context {
	if e == nil || len(e.Metadata) == 0 {
		return ctx
	}
	return p.Extract(ctx, propagation.MapCarrier(e.Metadata))
}
