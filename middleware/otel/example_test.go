package heraldotel_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/heraldhq/herald"
	heraldotel "github.com/heraldhq/herald/middleware/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// An order is placed, its handler bills it, and the billing handler ships
// it: one trace, each span the child of the one before. A real program
// gives WithTracerProvider (or otel.SetTracerProvider) a provider with an
// exporter; here the spans are recorded in memory and printed.
func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	ctx := context.Background()
	bus, err := herald.New()
	if err != nil {
		log.Fatal(err)
	}
	pub, err := heraldotel.NewPublisher(bus, heraldotel.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	traced := heraldotel.Middleware(heraldotel.WithTracerProvider(tp))

	bill := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		// Publishing with the handler's ctx makes order.billed a child
		// event for the bus and a child span for the trace.
		_, err := pub.Publish(ctx, &herald.Event{Name: "order.billed", Data: []byte(`{"amount":42}`)})
		return err
	})
	shipped := make(chan struct{})
	ship := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		fmt.Println("shipping; metadata has traceparent:", e.Metadata["traceparent"] != "")
		close(shipped)
		return nil
	})
	if _, err := bus.Subscribe(ctx, "order.placed", traced(bill), herald.Durable("billing")); err != nil {
		log.Fatal(err)
	}
	if _, err := bus.Subscribe(ctx, "order.billed", traced(ship), herald.Durable("shipping")); err != nil {
		log.Fatal(err)
	}

	if _, err := pub.Publish(ctx, &herald.Event{Name: "order.placed", Data: []byte(`{"order":7}`)}); err != nil {
		log.Fatal(err)
	}
	<-shipped
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := bus.Close(closeCtx); err != nil { // waits for the handlers, and so their spans
		log.Fatal(err)
	}

	ended := spans.Ended()
	name := map[string]string{}
	for _, s := range ended {
		name[s.SpanContext().SpanID().String()] = s.Name()
	}
	var lines []string
	for _, s := range ended {
		parent := name[s.Parent().SpanID().String()]
		if parent == "" {
			parent = "(root)"
		}
		lines = append(lines, fmt.Sprintf("%-22s %-8v parent: %s", s.Name(), s.SpanKind(), parent))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Println("one trace:", ended[0].SpanContext().TraceID() == ended[len(ended)-1].SpanContext().TraceID())
	// Output:
	// shipping; metadata has traceparent: true
	// process order.billed   consumer parent: publish order.billed
	// process order.placed   consumer parent: publish order.placed
	// publish order.billed   producer parent: process order.placed
	// publish order.placed   producer parent: (root)
	// one trace: true
}
