package herald_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

const orderSchema = `{
	"type": "object",
	"properties": {
		"order_id": {"type": "string", "pattern": "^o-[0-9]+$"},
		"items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["sku", "qty"]}},
		"address": {"type": "object", "properties": {"city": {"type": "string"}}}
	},
	"required": ["order_id"]
}`

func rawEvent(name, data string) *herald.Event {
	return &herald.Event{Name: name, Data: json.RawMessage(data)}
}

// expectRejected checks that err is a *ValidationError for index and field
// wrapping sentinel.
func expectRejected(t *testing.T, err error, sentinel error, index int, field string) {
	t.Helper()
	var ve *herald.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v: want a *ValidationError", err)
	}
	if !errors.Is(err, sentinel) || ve.Index != index || ve.Field != field {
		t.Errorf("error %v: index %d field %q; want %v at index %d field %q", err, ve.Index, ve.Field, sentinel, index, field)
	}
	if ve.Reason == "" {
		t.Errorf("error %v has no reason", err)
	}
}

func expectHead(t *testing.T, b *herald.Bus, want uint64) {
	t.Helper()
	if h, err := b.Store().Head(context.Background()); err != nil || h != want {
		t.Errorf("store head = %d, %v; want %d", h, err, want)
	}
}

func TestValidateSchemaNamesField(t *testing.T) {
	schemas := herald.NewSchemas()
	if err := schemas.Register("order.placed", 1, []byte(orderSchema)); err != nil {
		t.Fatal(err)
	}
	b := newTypedBus(t, herald.WithSchemas(schemas))
	var delivered atomic.Int32
	// The id is chosen here: Publish fills in the event it is given, which
	// the handler must not read.
	const sentinelID = "order-sentinel"
	sentinel := rawEvent("order.sentinel", `{}`)
	sentinel.ID = sentinelID
	var sentinelSeen atomic.Bool
	sub, err := b.Subscribe(t.Context(), ">", herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
		if e.ID == sentinelID {
			sentinelSeen.Store(true)
			return nil
		}
		delivered.Add(1)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	tests := []struct {
		name, data, field string
	}{
		{"missing required", `{}`, "data.order_id"},
		{"pattern", `{"order_id":"x-1"}`, "data.order_id"},
		{"array item field", `{"order_id":"o-1","items":[{"sku":"a","qty":1},{"sku":"b","qty":0}]}`, "data.items.1.qty"},
		{"array item required", `{"order_id":"o-1","items":[{"qty":1}]}`, "data.items.0.sku"},
		{"nested object", `{"order_id":"o-1","address":{"city":7}}`, "data.address.city"},
		{"wrong type", `{"order_id":1}`, "data.order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Publish(t.Context(), rawEvent("order.placed", tt.data))
			expectRejected(t, err, herald.ErrSchemaViolation, 0, tt.field)
		})
	}
	expectHead(t, b, 0)
	pos, err := b.Publish(t.Context(), rawEvent("order.placed", `{"order_id":"o-1","items":[{"sku":"a","qty":2}]}`))
	if err != nil || pos != 1 {
		t.Fatalf("a valid event: %d, %v", pos, err)
	}
	// Rejected events would be delivered before anything published after
	// them: once the sentinel is in, every delivery is counted.
	if _, err := b.Publish(t.Context(), sentinel); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the sentinel event", sentinelSeen.Load)
	if n := delivered.Load(); n != 1 {
		t.Errorf("%d events delivered, want only the valid one", n)
	}
}

func TestValidateSchemaPerVersion(t *testing.T) {
	schemas := herald.NewSchemas()
	b := newTypedBus(t, herald.WithSchemas(schemas))
	// Registered after the bus was made: the registry is shared.
	if err := schemas.Register("user.created", 1, []byte(`{"type":"object","required":["name"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := schemas.Register("user.created", 2, []byte(`{"type":"object","required":["first_name","last_name"]}`)); err != nil {
		t.Fatal(err)
	}
	v1 := rawEvent("user.created", `{"name":"Ada"}`)
	if _, err := b.Publish(t.Context(), v1); err != nil {
		t.Errorf("v1 event against the v1 schema: %v", err)
	}
	v2 := rawEvent("user.created", `{"name":"Ada"}`)
	v2.Version = 2
	_, err := b.Publish(t.Context(), v2)
	expectRejected(t, err, herald.ErrSchemaViolation, 0, "data.first_name")
	v3 := rawEvent("user.created", `{"anything":true}`)
	v3.Version = 3
	if _, err := b.Publish(t.Context(), v3); err != nil {
		t.Errorf("a version without a schema is not checked: %v", err)
	}
	expectHead(t, b, 2)
}

func TestValidateBatchNamesIndex(t *testing.T) {
	schemas := herald.NewSchemas()
	if err := schemas.Register("order.placed", 1, []byte(orderSchema)); err != nil {
		t.Fatal(err)
	}
	b := newTypedBus(t, herald.WithSchemas(schemas), herald.WithMaxEventSize(4096))
	good := func() *herald.Event { return rawEvent("order.placed", `{"order_id":"o-1"}`) }
	tests := []struct {
		name     string
		bad      *herald.Event
		at       int
		sentinel error
		field    string
	}{
		{"schema", rawEvent("order.placed", `{"order_id":"o-1","items":[{"sku":"a"}]}`), 2, herald.ErrSchemaViolation, "data.items.0.qty"},
		{"name", rawEvent("Order.Placed", `{}`), 1, herald.ErrInvalidEvent, "name"},
		{"data not an object", rawEvent("order.note", `["x"]`), 3, herald.ErrInvalidEvent, "data"},
		{"too large", rawEvent("order.note", `{"text":"`+strings.Repeat("x", 5000)+`"}`), 4, herald.ErrTooLarge, ""},
		{"first", rawEvent("order.placed", `{}`), 0, herald.ErrSchemaViolation, "data.order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := make([]*herald.Event, 5)
			for i := range batch {
				batch[i] = good()
			}
			batch[tt.at] = tt.bad
			res, err := b.PublishBatch(t.Context(), batch)
			if res != nil {
				t.Errorf("a rejected batch returned results %v", res)
			}
			expectRejected(t, err, tt.sentinel, tt.at, tt.field)
			expectHead(t, b, 0)
		})
	}
}

func TestValidateBusinessRules(t *testing.T) {
	type ctxKey struct{}
	var calls atomic.Int32
	b := newTypedBus(t,
		herald.WithSource("checkout"),
		// A context rule: every event needs a source; the bus fills it first.
		herald.WithValidator(herald.ValidatorFunc(func(ctx context.Context, e *herald.Event) error {
			calls.Add(1)
			if e.SourcePlugin == "" {
				return &herald.ValidationError{Field: "source_plugin", Reason: "is required", Err: herald.ErrInvalidEvent}
			}
			return nil
		})),
		// A business rule naming the field it rejects.
		herald.WithValidator(herald.ValidatorFunc(func(ctx context.Context, e *herald.Event) error {
			if ctx.Value(ctxKey{}) == "deny" {
				return errors.New("denied by the caller's context")
			}
			if e.Name != "order.placed" {
				return nil
			}
			var o struct {
				Total float64 `json:"total"`
			}
			if err := json.Unmarshal(e.Data, &o); err != nil || o.Total <= 0 {
				return &herald.ValidationError{Field: "data.total", Reason: "must be positive", Err: herald.ErrInvalidEvent}
			}
			return nil
		})),
	)
	ctx := t.Context()
	if _, err := b.Publish(ctx, rawEvent("order.placed", `{"total":10}`)); err != nil {
		t.Fatalf("a valid order: %v", err)
	}
	_, err := b.Publish(ctx, rawEvent("order.placed", `{"total":-1}`))
	expectRejected(t, err, herald.ErrInvalidEvent, 0, "data.total")

	_, err = b.PublishBatch(ctx, []*herald.Event{rawEvent("order.placed", `{"total":1}`), rawEvent("order.placed", `{"total":0}`)})
	expectRejected(t, err, herald.ErrInvalidEvent, 1, "data.total")

	// A plain error from a validator still rejects, as an invalid event.
	_, err = b.Publish(context.WithValue(ctx, ctxKey{}, "deny"), rawEvent("note.added", `{}`))
	var ve *herald.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, herald.ErrInvalidEvent) || !strings.Contains(err.Error(), "denied") {
		t.Errorf("a validator's plain error: %v, want an invalid event saying why", err)
	}
	expectHead(t, b, 1)
	if calls.Load() == 0 {
		t.Error("validators were not called")
	}
	// The source came from WithSource, so the context rule passed.
	e, err := b.Store().Get(ctx, firstID(t, b))
	if err != nil || e.SourcePlugin != "checkout" {
		t.Errorf("stored event = %+v, %v; want source checkout", e, err)
	}
}

func firstID(t *testing.T, b *herald.Bus) string {
	t.Helper()
	for e, err := range b.Store().Read(t.Context(), 0, herald.Filter{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	t.Fatal("the store is empty")
	return ""
}

type order struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

var orderPlacedType = herald.Define[order]("order.placed")

func TestValidateTypedRulesAndRequireSource(t *testing.T) {
	orderV2 := herald.Define[order]("order.placed", herald.WithSchemaVersion(2))
	b := newTypedBus(t,
		herald.WithValidator(herald.RequireSource()),
		herald.WithValidator(orderPlacedType.Validator(func(ctx context.Context, o order) error {
			if o.Total <= 0 {
				return herald.FieldError("data.total", "must be positive")
			}
			return nil
		})),
	)
	ctx := t.Context()
	// No source: the context rule rejects it.
	_, err := orderPlacedType.Publish(ctx, b, order{OrderID: "o-1", Total: 5})
	expectRejected(t, err, herald.ErrInvalidEvent, 0, "source_plugin")

	src := herald.EventOption(func(e *herald.Event) { e.SourcePlugin = "checkout" })
	if _, err := orderPlacedType.Publish(ctx, b, order{OrderID: "o-1", Total: 5}, src); err != nil {
		t.Fatalf("a valid order: %v", err)
	}
	_, err = orderPlacedType.Publish(ctx, b, order{OrderID: "o-2", Total: 0}, src)
	expectRejected(t, err, herald.ErrInvalidEvent, 0, "data.total")

	_, err = orderPlacedType.PublishBatch(ctx, b, []order{{"o-3", 1}, {"o-4", 2}, {"o-5", -1}}, src)
	expectRejected(t, err, herald.ErrInvalidEvent, 2, "data.total")

	// Untyped publishers meet the same rule; data that does not fit the
	// type names the field.
	raw := rawEvent("order.placed", `{"order_id":"o-6","total":"lots"}`)
	raw.SourcePlugin = "legacy"
	_, err = b.Publish(ctx, raw)
	expectRejected(t, err, herald.ErrInvalidEvent, 0, "data.total")

	// Other names and versions are not the rule's business.
	if _, err := orderV2.Publish(ctx, b, order{OrderID: "o-7", Total: 0}, src); err != nil {
		t.Errorf("a version-2 order met the version-1 rule: %v", err)
	}
	other := rawEvent("order.cancelled", `{"total":-5}`)
	other.SourcePlugin = "checkout"
	if _, err := b.Publish(ctx, other); err != nil {
		t.Errorf("another event met the order rule: %v", err)
	}
	expectHead(t, b, 3)
}

// TestValidateDefaultSizeLimit checks the default bound on an encoded event
// (1 MiB) at the bus, alone and in a batch.
func TestValidateDefaultSizeLimit(t *testing.T) {
	b := newTypedBus(t)
	ctx := t.Context()
	payload := func(n int) string { return `{"blob":"` + strings.Repeat("x", n) + `"}` }
	if _, err := b.Publish(ctx, rawEvent("blob.stored", payload(herald.DefaultMaxEventSize-4096))); err != nil {
		t.Fatalf("an event just under 1 MiB: %v", err)
	}
	_, err := b.Publish(ctx, rawEvent("blob.stored", payload(herald.DefaultMaxEventSize)))
	expectRejected(t, err, herald.ErrTooLarge, 0, "")
	_, err = b.PublishBatch(ctx, []*herald.Event{rawEvent("blob.small", `{}`), rawEvent("blob.stored", payload(herald.DefaultMaxEventSize+1))})
	expectRejected(t, err, herald.ErrTooLarge, 1, "")
	// Escapes are counted as encoded: 300,000 escaped quotes are 600,000 bytes.
	if _, err := b.Publish(ctx, rawEvent("blob.quoted", `{"q":"`+strings.Repeat(`\"`, 300_000)+`"}`)); err != nil {
		t.Errorf("an event of escaped quotes under the limit: %v", err)
	}
	expectHead(t, b, 2)
}
