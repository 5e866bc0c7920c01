package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func event(name string) *herald.Event {
	e, err := herald.NewEvent(name, json.RawMessage(`{"secret":"do-not-log"}`))
	if err != nil {
		panic(err)
	}
	return e
}

func TestChainOrder(t *testing.T) {
	var trail []string
	mw := func(name string) middleware.Middleware {
		return func(next herald.Handler) herald.Handler {
			return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
				trail = append(trail, name)
				return next.Handle(ctx, e)
			})
		}
	}
	h := middleware.Chain(herald.HandlerFunc(func(context.Context, *herald.Event) error {
		trail = append(trail, "h")
		return nil
	}), mw("a"), mw("b"))
	if err := h.Handle(context.Background(), event("x.y")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(trail, ",") != "a,b,h" {
		t.Fatalf("order %v", trail)
	}
}

func TestLoggingNeverLogsPayload(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := middleware.Logging(l, slog.LevelInfo)(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if e.Name == "x.fail" {
			return herald.Permanent(errors.New("nope"))
		}
		return nil
	}))
	ok, bad := event("x.ok"), event("x.fail")
	h.Handle(context.Background(), ok)
	if err := h.Handle(context.Background(), bad); !herald.IsPermanent(err) {
		t.Fatalf("error not passed through: %v", err)
	}
	out := buf.String()
	if strings.Contains(out, "do-not-log") {
		t.Fatalf("payload logged: %s", out)
	}
	for _, want := range []string{ok.ID, bad.ID, `"level":"INFO"`, `"level":"WARN"`, `"permanent":true`, `"correlation_id"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s: %s", want, out)
		}
	}
	// Through a bus the subscription and attempt are logged too.
	buf.Reset()
	b, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	done := make(chan struct{})
	_, err = b.Subscribe(context.Background(), "x.>", middleware.Chain(herald.HandlerFunc(func(context.Context, *herald.Event) error {
		close(done)
		return nil
	}), middleware.Logging(l, slog.LevelInfo)), herald.Durable("logged"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), event("x.ok")); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := b.Close(context.Background()); err != nil { // waits for the handler, logging included
		t.Fatal(err)
	}
	if s := buf.String(); !strings.Contains(s, `"subscription":"logged"`) || !strings.Contains(s, `"attempt":1`) {
		t.Fatalf("log lacks subscription or attempt: %s", s)
	}
	if h := middleware.Logging(nil, slog.LevelInfo)(herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil })); h.Handle(context.Background(), ok) != nil {
		t.Fatal("nil logger")
	}
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, testTimeout)
}

func testTimeout(t *testing.T) {
	h := middleware.Timeout(20 * time.Millisecond)(herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	start := time.Now()
	err := h.Handle(context.Background(), event("x.y"))
	if !herald.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if el := time.Since(start); el != 20*time.Millisecond {
		t.Fatalf("took %v, want 20ms", el)
	}
	fast := middleware.Timeout(time.Second)(herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil }))
	if err := fast.Handle(context.Background(), event("x.y")); err != nil {
		t.Fatal(err)
	}
}

func TestRecover(t *testing.T) {
	boom := herald.HandlerFunc(func(context.Context, *herald.Event) error { panic("kaboom") })
	err := middleware.Recover(false)(boom).Handle(context.Background(), event("x.y"))
	var pe *middleware.PanicError
	if !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 || herald.IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	err = middleware.Recover(true)(boom).Handle(context.Background(), event("x.y"))
	if !herald.IsPermanent(err) || !errors.As(err, &pe) {
		t.Fatalf("permanent recover: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var calls atomic.Int32
	mw, err := middleware.Metrics(reg, "indexer")
	if err != nil {
		t.Fatal(err)
	}
	h := mw(herald.HandlerFunc(func(context.Context, *herald.Event) error {
		if calls.Add(1) == 2 {
			return herald.Permanent(errors.New("bad"))
		}
		return nil
	}))
	h.Handle(context.Background(), event("doc.saved"))
	h.Handle(context.Background(), event("doc.saved"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 2 {
		t.Fatalf("metrics %v, want one histogram with ok and permanent series", mfs)
	}
	if _, err := middleware.Metrics(reg, "other"); err != nil {
		t.Fatalf("second Metrics on the same registry: %v", err)
	}
}
