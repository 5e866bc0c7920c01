package sensitive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/heraldhq/herald/internal/testlog"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
)

// On a bus with the codec, handlers see plaintext, the store holds
// ciphertext, logs hold neither, and Forget shreds for every later reader.
func TestBusWithCodec(t *testing.T) {
	ctx := context.Background()
	st, sc, c := setup(t)
	var logs testlog.Buffer
	bus, err := herald.New(herald.WithStore(st), herald.WithSchemas(sc), herald.WithCodec(c),
		herald.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(ctx)

	durable := make(chan *herald.Event, 4)
	live := make(chan *herald.Event, 4)
	failOnce := true
	if _, err := bus.Subscribe(ctx, "customer.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if failOnce { // a failure gets logged: the log must not hold the data
			failOnce = false
			return errors.New("try again")
		}
		durable <- e
		return nil
	}), herald.Durable("crm"), herald.Backoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Subscribe(ctx, "customer.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		live <- e
		return nil
	})); err != nil {
		t.Fatal(err)
	}

	e := customer(t, "customer/9")
	orig := bytes.Clone(e.Data)
	if _, err := bus.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan *herald.Event{"durable": durable, "ephemeral": live} {
		select {
		case got := <-ch:
			assertSameJSON(t, orig, got.Data)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s subscription got nothing", name)
		}
	}
	stored, err := st.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(stored)
	assertNoSecrets(t, "the stored event", raw)
	assertNoSecrets(t, "the bus's log", []byte(logs.String()))
	if !bytes.Contains([]byte(logs.String()), []byte("try again")) {
		t.Fatalf("the failed attempt was not logged; the log check above proves nothing:\n%s", []byte(logs.String()))
	}

	// A subject-less event with sensitive data is refused, nothing stored.
	before, _ := st.Head(ctx)
	if _, err := bus.Publish(ctx, customer(t, "")); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent, got %v", err)
	}
	if after, _ := st.Head(ctx); after != before {
		t.Fatal("a refused event was stored")
	}

	// After Forget, a replay reads the event with its sensitive fields null.
	if err := c.Forget(ctx, "customer/9"); err != nil {
		t.Fatal(err)
	}
	replay := make(chan *herald.Event, 1)
	if _, err := bus.Subscribe(ctx, "customer.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		replay <- e
		return nil
	}), herald.Durable("replay"), herald.StartAt(herald.StartEarliest)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-replay:
		assertNoSecrets(t, "a forgotten event", got.Data)
		if got.Metadata[sensitive.ShreddedMetadata] == "" || !bytes.Contains(got.Data, []byte(`"name":"Ada"`)) {
			t.Fatalf("forgotten event %s %v", got.Data, got.Metadata)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replay got nothing")
	}
}
