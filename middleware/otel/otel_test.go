package heraldotel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/middleware"
	heraldotel "github.com/heraldhq/herald/middleware/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracing is a tracer provider recording every ended span in memory.
type tracing struct {
	tp  *sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

func newTracing(t *testing.T) *tracing {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &tracing{tp: tp, rec: rec}
}

// wait returns the ended spans once there are at least n, failing the test
// after testwait.Timeout.
func (tr *tracing) wait(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	testwait.For(t, fmt.Sprintf("%d ended spans", n), func() bool { return len(tr.rec.Ended()) >= n })
	return tr.rec.Ended()
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// byName returns the spans named name.
func byName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := byName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q among %v, want 1", len(got), name, names(spans))
	}
	return got[0]
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, key string, want any) {
	t.Helper()
	v, ok := attr(s, key)
	if !ok {
		t.Errorf("span %q has no attribute %s", s.Name(), key)
		return
	}
	if got := v.AsInterface(); got != want {
		t.Errorf("span %q: %s = %v (%T), want %v (%T)", s.Name(), key, got, got, want, want)
	}
}

func newBus(t *testing.T) *herald.Bus {
	t.Helper()
	b, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	return b
}

func newPublisher(t *testing.T, b *herald.Bus, opts ...heraldotel.Option) *heraldotel.Publisher {
	t.Helper()
	p, err := heraldotel.NewPublisher(b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// A request publishes an event, its handler publishes a child event, and
// the child's handler runs: one trace, each span the child of the one
// before, and the bus's own rules (FromContext, response ids) intact.
func TestChainSharesOneTrace(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	pub := newPublisher(t, bus, heraldotel.WithTracerProvider(tr.tp))
	mw := heraldotel.Middleware(heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()

	var (
		mu          sync.Mutex
		placed      *herald.Event
		placedCtx   herald.EventContext
		placedCtxOK bool
		billed      *herald.Event
		child       *herald.Event
	)
	done := make(chan struct{})
	_, err := bus.Subscribe(ctx, "order.placed", mw(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		ec, ok := herald.FromContext(ctx)
		c := &herald.Event{Name: "order.billed", Data: []byte(`{"amount":3}`)}
		if _, err := pub.Publish(ctx, c); err != nil {
			return herald.Permanent(err)
		}
		mu.Lock()
		placed, placedCtx, placedCtxOK, child = e, ec, ok, c
		mu.Unlock()
		return nil
	})), herald.Durable("biller"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bus.Subscribe(ctx, "order.billed", mw(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		mu.Lock()
		billed = e
		mu.Unlock()
		close(done)
		return nil
	})), herald.Durable("shipper"))
	if err != nil {
		t.Fatal(err)
	}

	rctx, root := tr.tp.Tracer("test").Start(ctx, "request")
	ev := &herald.Event{Name: "order.placed", Data: []byte(`{"order":1}`)}
	if _, err := pub.Publish(rctx, ev); err != nil {
		t.Fatal(err)
	}
	root.End()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("order.billed was not handled")
	}
	spans := tr.wait(t, 5)
	mu.Lock()
	defer mu.Unlock()

	request := one(t, spans, "request")
	pubPlaced := one(t, spans, "publish order.placed")
	procPlaced := one(t, spans, "process order.placed")
	pubBilled := one(t, spans, "publish order.billed")
	procBilled := one(t, spans, "process order.billed")

	traceID := request.SpanContext().TraceID()
	for _, s := range spans {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
	}
	for _, link := range []struct{ child, parent sdktrace.ReadOnlySpan }{
		{pubPlaced, request}, {procPlaced, pubPlaced}, {pubBilled, procPlaced}, {procBilled, pubBilled},
	} {
		if got, want := link.child.Parent().SpanID(), link.parent.SpanContext().SpanID(); got != want {
			t.Errorf("parent of %q is %s, want %q (%s)", link.child.Name(), got, link.parent.Name(), want)
		}
	}
	if !procPlaced.Parent().IsRemote() {
		t.Error("the parent of a process span should come from the event's metadata (remote)")
	}
	for _, s := range []sdktrace.ReadOnlySpan{pubPlaced, pubBilled} {
		if s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("span %q is %v, want producer", s.Name(), s.SpanKind())
		}
	}
	for _, s := range []sdktrace.ReadOnlySpan{procPlaced, procBilled} {
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("span %q is %v, want consumer", s.Name(), s.SpanKind())
		}
		if s.Status().Code != codes.Ok {
			t.Errorf("span %q status %v, want Ok", s.Name(), s.Status())
		}
	}

	// Metadata carries the producer span's context.
	if got, want := placed.Metadata["traceparent"], traceparent(pubPlaced.SpanContext()); got != want {
		t.Errorf("order.placed traceparent %q, want %q", got, want)
	}
	if got, want := billed.Metadata["traceparent"], traceparent(pubBilled.SpanContext()); got != want {
		t.Errorf("order.billed traceparent %q, want %q", got, want)
	}

	// The bus's context is still there under the span's.
	if !placedCtxOK || placedCtx.EventID != placed.ID || placedCtx.Subscription != "biller" || placedCtx.Attempt != 1 {
		t.Errorf("FromContext in the wrapped handler = %+v, %v", placedCtx, placedCtxOK)
	}
	if want := herald.ChildID(placed.ID, "biller", 0); child.ID != want || billed.ID != want {
		t.Errorf("child id %q (handled %q), want the deterministic %q", child.ID, billed.ID, want)
	}
	if billed.CausationID != placed.ID || billed.CorrelationID != placed.CorrelationID {
		t.Errorf("child causation %q correlation %q, want %q and %q", billed.CausationID, billed.CorrelationID, placed.ID, placed.CorrelationID)
	}

	// Attributes.
	wantAttr(t, pubPlaced, "messaging.system", "herald")
	wantAttr(t, pubPlaced, "messaging.operation.type", "send")
	wantAttr(t, pubPlaced, "messaging.destination.name", "order.placed")
	wantAttr(t, pubPlaced, "messaging.message.id", placed.ID)
	wantAttr(t, pubPlaced, "messaging.message.conversation_id", placed.CorrelationID)
	wantAttr(t, pubPlaced, "herald.position", int64(placed.Position))
	wantAttr(t, pubBilled, "messaging.message.id", billed.ID)
	wantAttr(t, procPlaced, "messaging.system", "herald")
	wantAttr(t, procPlaced, "messaging.operation.type", "process")
	wantAttr(t, procPlaced, "messaging.destination.name", "order.placed")
	wantAttr(t, procPlaced, "messaging.message.id", placed.ID)
	wantAttr(t, procPlaced, "messaging.message.conversation_id", placed.CorrelationID)
	wantAttr(t, procPlaced, "messaging.destination.subscription.name", "biller")
	wantAttr(t, procPlaced, "herald.attempt", int64(1))
	wantAttr(t, procBilled, "messaging.destination.subscription.name", "shipper")
	wantAttr(t, procBilled, "herald.causation_id", placed.ID)
	if _, ok := attr(procPlaced, "herald.causation_id"); ok {
		t.Error("a root event's span has a causation id")
	}
}

// A failing handler's span records the error; each attempt is a span of
// its own under the same producer span.
func TestHandlerErrorRecorded(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	pub := newPublisher(t, bus, heraldotel.WithTracerProvider(tr.tp))
	mw := heraldotel.Middleware(heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()

	var mu sync.Mutex
	calls := 0
	_, err := bus.Subscribe(ctx, "job.run", mw(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("disk busy")
		}
		return herald.Permanent(errors.New("bad job"))
	})), herald.Durable("runner"), herald.MaxAttempts(3), herald.Backoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, &herald.Event{Name: "job.run", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	spans := tr.wait(t, 3)
	producer := one(t, spans, "publish job.run")
	procs := byName(spans, "process job.run")
	if len(procs) != 2 {
		t.Fatalf("%d process spans, want 2 (a temporary failure, then a permanent one)", len(procs))
	}
	for i, s := range procs {
		wantAttr(t, s, "herald.attempt", int64(i+1))
		if s.Parent().SpanID() != producer.SpanContext().SpanID() {
			t.Errorf("attempt %d is not a child of the producer span", i+1)
		}
		if s.Status().Code != codes.Error {
			t.Errorf("attempt %d status %v, want Error", i+1, s.Status())
		}
		if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
			t.Errorf("attempt %d events %v, want one exception", i+1, s.Events())
		}
	}
	if !strings.Contains(procs[0].Status().Description, "disk busy") {
		t.Errorf("status %q does not name the error", procs[0].Status().Description)
	}
	if _, ok := attr(procs[0], "herald.permanent"); ok {
		t.Error("a temporary error is marked permanent")
	}
	wantAttr(t, procs[1], "herald.permanent", true)
	var found bool
	for _, kv := range procs[1].Events()[0].Attributes {
		if kv.Key == "exception.message" && strings.Contains(kv.Value.AsString(), "bad job") {
			found = true
		}
	}
	if !found {
		t.Errorf("exception event %v does not carry the error message", procs[1].Events()[0].Attributes)
	}
}

// A panicking handler's span is ended with an error and the stack, and the
// panic still reaches the bus, which recovers it.
func TestHandlerPanicRecorded(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	mw := heraldotel.Middleware(heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()
	_, err := bus.Subscribe(ctx, "job.run", mw(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		panic("out of cheese")
	})), herald.Durable("runner"), herald.MaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, &herald.Event{Name: "job.run", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s := tr.wait(t, 1)[0]
	if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "panicked") {
		t.Errorf("status %v, want Error naming the panic", s.Status())
	}
	var stack string
	for _, ev := range s.Events() {
		for _, kv := range ev.Attributes {
			if kv.Key == "exception.stacktrace" {
				stack = kv.Value.AsString()
			}
		}
	}
	if !strings.Contains(stack, "TestHandlerPanicRecorded") {
		t.Errorf("stack trace does not reach the panicking handler:\n%s", stack)
	}
	// Dead-lettered: the bus saw the panic.
	testwait.For(t, "the panicking event dead-lettered", func() bool {
		dls, err := bus.DeadLetters(ctx, herald.DeadLetterQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(dls) == 1
	})
}

// Without trace context in the metadata a process span starts a trace;
// with a traceparent from elsewhere (an HTTP client, another language) it
// continues that trace.
func TestProcessParent(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	mw := heraldotel.Middleware(heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()
	_, err := bus.Subscribe(ctx, "a.b", mw(herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil })),
		herald.Durable("s"))
	if err != nil {
		t.Fatal(err)
	}
	const external = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := bus.Publish(ctx, &herald.Event{ID: "plain", Name: "a.b", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, &herald.Event{ID: "traced", Name: "a.b", Data: []byte(`{}`),
		Metadata: map[string]string{"traceparent": external, "tracestate": "vendor=x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, &herald.Event{ID: "garbage", Name: "a.b", Data: []byte(`{}`),
		Metadata: map[string]string{"traceparent": "00-zz-yy-01\x00", "tracestate": strings.Repeat("k=v,", 5000)}}); err != nil {
		t.Fatal(err)
	}
	spans := tr.wait(t, 3)
	for _, s := range spans {
		id, _ := attr(s, "messaging.message.id")
		switch id.AsString() {
		case "plain", "garbage":
			if s.Parent().IsValid() {
				t.Errorf("event %s: span has parent %v, want a new trace", id.AsString(), s.Parent())
			}
		case "traced":
			if got := traceparent(s.Parent()); got != external {
				t.Errorf("parent %s, want %s", got, external)
			}
			if got := s.SpanContext().TraceState().Get("vendor"); got != "x" {
				t.Errorf("tracestate vendor = %q, want x", got)
			}
		default:
			t.Errorf("unexpected span for %v", id)
		}
	}
}

func TestInject(t *testing.T) {
	tr := newTracing(t)
	ctx := context.Background()

	shared := map[string]string{"k": "v"}
	e := &herald.Event{Name: "a.b", Metadata: shared}
	heraldotel.Inject(ctx, e)
	if len(e.Metadata) != 1 {
		t.Errorf("nothing to propagate, yet metadata became %v", e.Metadata)
	}
	heraldotel.Inject(ctx, nil) // no panic

	sctx, span := tr.tp.Tracer("test").Start(ctx, "op")
	defer span.End()
	heraldotel.Inject(sctx, e) // global propagator unset: W3C Trace Context
	if got, want := e.Metadata["traceparent"], traceparent(span.SpanContext()); got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
	if e.Metadata["k"] != "v" {
		t.Error("Inject lost existing metadata")
	}
	if len(shared) != 1 {
		t.Errorf("Inject wrote into the event's old metadata map: %v", shared)
	}

	got := trace.SpanContextFromContext(heraldotel.Extract(ctx, e))
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("Extract gave %v, want the injected %v", got, span.SpanContext())
	}
	if heraldotel.Extract(ctx, nil) != ctx || heraldotel.Extract(ctx, &herald.Event{}) != ctx {
		t.Error("Extract of an event without metadata should return ctx")
	}

	// A propagator with baggage carries baggage both ways.
	prop := heraldotel.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	m, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(m)
	if err != nil {
		t.Fatal(err)
	}
	e2 := &herald.Event{Name: "a.b"}
	heraldotel.Inject(baggage.ContextWithBaggage(sctx, bag), e2, prop)
	if e2.Metadata["baggage"] != "tenant=acme" || e2.Metadata["traceparent"] == "" {
		t.Errorf("metadata %v, want traceparent and baggage", e2.Metadata)
	}
	if got := baggage.FromContext(heraldotel.Extract(ctx, e2, prop)).Member("tenant").Value(); got != "acme" {
		t.Errorf("extracted baggage tenant = %q", got)
	}
}

func TestPublishFailureRecorded(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	pub := newPublisher(t, bus, heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()

	_, err := pub.Publish(ctx, &herald.Event{Name: "Not A Name", Data: []byte(`{}`)})
	if !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("publish of a bad name: %v, want ErrInvalidEvent", err)
	}
	// Trace context counts against the metadata limit like any entry.
	full := map[string]string{}
	for i := range herald.MaxMetadataEntries {
		full[fmt.Sprint("k", i)] = "v"
	}
	full2 := maps.Clone(full)
	_, err = pub.Publish(ctx, &herald.Event{Name: "a.b", Data: []byte(`{}`), Metadata: full})
	if !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("publish of full metadata: %v, want ErrInvalidEvent", err)
	}
	if !maps.Equal(full, full2) {
		t.Error("Publish wrote into the caller's metadata map")
	}
	if _, err := pub.Publish(ctx, nil); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("publish of nil: %v", err)
	}
	spans := tr.wait(t, 2)
	for _, s := range spans {
		if s.Status().Code != codes.Error || len(s.Events()) != 1 {
			t.Errorf("span %q: status %v, events %v, want the error recorded", s.Name(), s.Status(), s.Events())
		}
	}
	if len(spans) != 2 {
		t.Errorf("spans %v, want two (none for a nil event)", names(spans))
	}

	closed, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cp := newPublisher(t, closed, heraldotel.WithTracerProvider(tr.tp))
	if _, err := cp.Publish(ctx, &herald.Event{Name: "a.b", Data: []byte(`{}`)}); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("publish on a closed bus: %v, want ErrClosed", err)
	}
	if _, err := cp.PublishBatch(ctx, []*herald.Event{{Name: "a.b", Data: []byte(`{}`)}}); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("batch on a closed bus: %v, want ErrClosed", err)
	}
	if cp.Bus() != closed {
		t.Error("Bus() is not the bus given")
	}
	if _, err := heraldotel.NewPublisher(nil); err == nil {
		t.Error("NewPublisher(nil) succeeded")
	}
}

func TestPublishBatch(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	pub := newPublisher(t, bus, heraldotel.WithTracerProvider(tr.tp))
	ctx := context.Background()

	same := []*herald.Event{{Name: "a.b", Data: []byte(`{}`)}, {Name: "a.b", Data: []byte(`{}`)}}
	res, err := pub.PublishBatch(ctx, same)
	if err != nil || len(res) != 2 {
		t.Fatalf("batch: %v, %v", res, err)
	}
	mixed := []*herald.Event{{Name: "a.b", Data: []byte(`{}`)}, {Name: "c.d", Data: []byte(`{}`)}}
	if _, err := pub.PublishBatch(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	if res, err := pub.PublishBatch(ctx, nil); err != nil || res != nil {
		t.Errorf("empty batch: %v, %v", res, err)
	}
	bad := []*herald.Event{{Name: "a.b", Data: []byte(`{}`)}, {Name: "a.b", Data: []byte(`[]`)}}
	if _, err := pub.PublishBatch(ctx, bad); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Errorf("bad batch: %v, want ErrInvalidEvent", err)
	}
	spans := tr.wait(t, 3)
	if len(spans) != 3 {
		t.Fatalf("spans %v, want three (none for an empty batch)", names(spans))
	}
	sameSpan, mixedSpan, badSpan := spans[0], spans[1], spans[2]
	if sameSpan.Name() != "publish a.b" || mixedSpan.Name() != "publish" || badSpan.Name() != "publish a.b" {
		t.Errorf("span names %v", names(spans))
	}
	wantAttr(t, sameSpan, "messaging.batch.message_count", int64(2))
	wantAttr(t, sameSpan, "messaging.destination.name", "a.b")
	if _, ok := attr(mixedSpan, "messaging.destination.name"); ok {
		t.Error("a batch of several names has one destination")
	}
	for _, e := range same {
		if got, want := e.Metadata["traceparent"], traceparent(sameSpan.SpanContext()); got != want {
			t.Errorf("batch event traceparent %q, want %q", got, want)
		}
	}
	if badSpan.Status().Code != codes.Error {
		t.Errorf("failed batch status %v", badSpan.Status())
	}
}

// Middleware works outside a bus too: no subscription attributes, and the
// span in the caller's context is the parent when the event has none.
func TestMiddlewareOutsideBus(t *testing.T) {
	tr := newTracing(t)
	h := middleware.Chain(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if e != nil && !trace.SpanFromContext(ctx).IsRecording() {
			t.Error("the handler's context has no recording span")
		}
		return nil
	}), heraldotel.Middleware(heraldotel.WithTracerProvider(tr.tp)))
	ctx, parent := tr.tp.Tracer("test").Start(context.Background(), "caller")
	if err := h.Handle(ctx, &herald.Event{ID: "x", Name: "a.b"}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	s := one(t, tr.wait(t, 2), "process a.b")
	if s.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("without trace context in the event, the caller's span should be the parent")
	}
	if _, ok := attr(s, "messaging.destination.subscription.name"); ok {
		t.Error("subscription attribute outside a bus")
	}
	if err := h.Handle(ctx, nil); err != nil {
		t.Errorf("nil event: %v", err)
	}
}

// Hostile trace context in metadata never breaks the handler: the span
// starts, the handler runs, and the result is a valid span.
func FuzzExtract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x", "")
	f.Add("00-00000000000000000000000000000000-0000000000000000-00", "", "")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b,c=d", "k=v")
	f.Add("\x00\xff", strings.Repeat("x=y,", 100), "%zz")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prop := heraldotel.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	h := heraldotel.Middleware(heraldotel.WithTracerProvider(tp), prop)(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return errors.New("no valid span")
		}
		return nil
	}))
	f.Fuzz(func(t *testing.T, tp, ts, bag string) {
		e := &herald.Event{ID: "x", Name: "a.b", Metadata: map[string]string{"traceparent": tp, "tracestate": ts, "baggage": bag}}
		if err := h.Handle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		_ = heraldotel.Extract(context.Background(), e, prop)
	})
}

func TestPublishArgsTyped(t *testing.T) {
	tr := newTracing(t)
	bus := newBus(t)
	ctx := context.Background()
	type order struct {
		ID int `json:"id"`
	}
	placed := herald.Define[order]("order.placed")
	if args := heraldotel.PublishArgs(ctx); args != nil {
		t.Errorf("nothing to propagate, yet %d args", len(args))
	}
	got := make(chan *herald.Event, 1)
	_, err := bus.Subscribe(ctx, "order.placed", herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
		got <- e
		return nil
	}), herald.Durable("s"))
	if err != nil {
		t.Fatal(err)
	}
	sctx, span := tr.tp.Tracer("test").Start(ctx, "request")
	defer span.End()
	args := append(heraldotel.PublishArgs(sctx), herald.WithSubject("order/7"))
	if _, err := placed.Publish(sctx, bus, order{ID: 7}, args...); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Metadata["traceparent"] != traceparent(span.SpanContext()) || e.Subject != "order/7" {
			t.Errorf("typed event metadata %v subject %q", e.Metadata, e.Subject)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("typed event not delivered")
	}
}
