package herald_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// PanottiServer's first two plugins, typed.
type recordingEnded struct {
	RecordingID string  `json:"recording_id"`
	Path        string  `json:"path"`
	Duration    float64 `json:"duration"`
}

type noiseReduced struct {
	RecordingID string `json:"recording_id"`
	CleanPath   string `json:"clean_path"`
}

const recordingEndedSchema = `{
	"type": "object",
	"properties": {
		"recording_id": {"type": "string", "minLength": 1},
		"path": {"type": "string"},
		"duration": {"type": "number", "minimum": 0}
	},
	"required": ["recording_id", "path"]
}`

var (
	recordingEndedType = herald.Define[recordingEnded]("recording.ended", herald.WithJSONSchema([]byte(recordingEndedSchema)))
	noiseReducedType   = herald.Define[noiseReduced]("noise_reduction.completed", herald.WithSchemaVersion(2))
)

func newTypedBus(t *testing.T, opts ...herald.Option) *herald.Bus {
	t.Helper()
	b, err := herald.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestDefineRejects(t *testing.T) {
	type payload struct{ A int }
	cases := map[string]interface{ Err() error }{
		"bad name":      herald.Define[payload]("Bad.Name"),
		"empty name":    herald.Define[payload](""),
		"version 0":     herald.Define[payload]("a.b", herald.WithSchemaVersion(0)),
		"string data":   herald.Define[string]("a.b"),
		"slice data":    herald.Define[[]int]("a.b"),
		"interface":     herald.Define[any]("a.b"),
		"bad schema":    herald.Define[payload]("a.b", herald.WithJSONSchema([]byte(`{"type":"objekt"}`))),
		"schema is not": herald.Define[payload]("a.b", herald.WithJSONSchema([]byte(`{`))),
	}
	for name, typ := range cases {
		if typ.Err() == nil {
			t.Errorf("%s: Define accepted it", name)
		}
	}
	bad := herald.Define[payload]("Bad.Name")
	b := newTypedBus(t)
	if _, err := bad.New(payload{}); err == nil {
		t.Error("New of a bad type succeeded")
	}
	if _, err := bad.Publish(t.Context(), b, payload{}); err == nil {
		t.Error("Publish of a bad type succeeded")
	}
	if _, err := bad.Subscribe(t.Context(), b, func(context.Context, payload) error { return nil }); err == nil {
		t.Error("Subscribe of a bad type succeeded")
	}
	if err := bad.Register(herald.NewSchemas()); err == nil {
		t.Error("Register of a bad type succeeded")
	}
	if h, _ := b.Store().Head(t.Context()); h != 0 {
		t.Errorf("a bad type stored events: head %d", h)
	}

	// Types that encode to objects are accepted.
	for name, typ := range map[string]interface{ Err() error }{
		"struct":         herald.Define[payload]("a.b"),
		"pointer":        herald.Define[*payload]("a.b"),
		"map":            herald.Define[map[string]int]("a.b"),
		"raw marshaler":  herald.Define[json.RawMessage]("a.b"),
		"versioned":      herald.Define[payload]("a.b", herald.WithSchemaVersion(3)),
		"with schema":    herald.Define[payload]("a.b", herald.WithJSONSchema([]byte(`{"type":"object"}`))),
		"boolean schema": herald.Define[payload]("a.b", herald.WithJSONSchema([]byte(`true`))),
	} {
		if err := typ.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTypedNew(t *testing.T) {
	ts := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	e, err := noiseReducedType.New(noiseReduced{RecordingID: "r1", CleanPath: "/c.wav"},
		herald.WithSubject("recording/r1"), herald.WithPriority(herald.PriorityHigh),
		herald.WithMetadata("traceparent", "00-1"), herald.WithMetadata("k", "v"),
		herald.WithCorrelationID("corr-1"), herald.WithID("ev-1"), herald.WithTimestamp(ts))
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "noise_reduction.completed" || e.Version != 2 || e.Subject != "recording/r1" ||
		e.Priority != herald.PriorityHigh || e.Metadata["traceparent"] != "00-1" || e.Metadata["k"] != "v" ||
		e.CorrelationID != "corr-1" || e.ID != "ev-1" || !e.Timestamp.Equal(ts) {
		t.Errorf("New did not apply its options: %+v", e)
	}
	if string(e.Data) != `{"recording_id":"r1","clean_path":"/c.wav"}` {
		t.Errorf("Data = %s", e.Data)
	}
	got, err := noiseReducedType.Decode(e)
	if err != nil || got != (noiseReduced{RecordingID: "r1", CleanPath: "/c.wav"}) {
		t.Errorf("Decode(New(x)) = %+v, %v", got, err)
	}

	// Defaults as NewEvent fills them.
	d, err := recordingEndedType.New(recordingEnded{RecordingID: "r2", Path: "/r2.wav"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.CorrelationID != "" || d.Version != 1 || d.Timestamp.IsZero() || d.Timestamp.Location() != time.UTC {
		t.Errorf("defaults not filled: %+v", d)
	}

	// The type's schema is checked.
	_, err = recordingEndedType.New(recordingEnded{RecordingID: "", Path: "/p"})
	var ve *herald.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, herald.ErrSchemaViolation) || ve.Field != "data.recording_id" {
		t.Errorf("New breaking the schema: %v, want a violation of data.recording_id", err)
	}
	// A nil pointer does not make an object.
	ptr := herald.Define[*noiseReduced]("a.b")
	if _, err := ptr.New(nil); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Errorf("New(nil pointer): %v, want ErrInvalidEvent", err)
	}
}

func TestTypedDecode(t *testing.T) {
	raw := func(name, data string) *herald.Event {
		return &herald.Event{ID: "x", Name: name, Data: json.RawMessage(data)}
	}
	v, err := recordingEndedType.Decode(raw("recording.ended", `{"recording_id":"r","path":"/p","duration":1.5,"extra":[1]}`))
	if err != nil || v != (recordingEnded{"r", "/p", 1.5}) {
		t.Errorf("Decode = %+v, %v", v, err)
	}
	if v, err := recordingEndedType.Decode(raw("recording.ended", ``)); err != nil || v != (recordingEnded{}) {
		t.Errorf("Decode of empty data = %+v, %v; want the zero value", v, err)
	}
	tests := []struct {
		name, data, field string
	}{
		{"recording.ended", `{"duration":"long"}`, "data.duration"},
		{"recording.ended", `{"recording_id":5}`, "data.recording_id"},
		{"recording.ended", `[1,2]`, "data"},
		{"recording.ended", `{"path":`, "data"},
		{"recording.started", `{}`, "name"},
	}
	for _, tt := range tests {
		_, err := recordingEndedType.Decode(raw(tt.name, tt.data))
		var ve *herald.ValidationError
		if !herald.IsPermanent(err) || !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, herald.ErrInvalidEvent) {
			t.Errorf("Decode(%s %s) = %v; want a permanent error on field %s", tt.name, tt.data, err, tt.field)
		}
	}
	if _, err := recordingEndedType.Decode(nil); !herald.IsPermanent(err) {
		t.Errorf("Decode(nil) = %v, want a permanent error", err)
	}
	if !recordingEndedType.Is(raw("recording.ended", "{}")) || recordingEndedType.Is(raw("recording.other", "{}")) || recordingEndedType.Is(nil) {
		t.Error("Is does not compare names")
	}
}

// TestTypedPipeline runs two typed plugins of PanottiServer's chain on a real
// bus: the response a handler publishes inherits the correlation id, has
// the parent as causation and a deterministic id.
func TestTypedPipeline(t *testing.T) {
	b := newTypedBus(t, herald.WithSource("test"))
	ctx := t.Context()
	var mu sync.Mutex
	var cleaned []noiseReduced
	var contexts []herald.EventContext

	denoiser, err := recordingEndedType.Subscribe(ctx, b, func(ctx context.Context, r recordingEnded) error {
		_, err := noiseReducedType.Publish(ctx, b, noiseReduced{RecordingID: r.RecordingID, CleanPath: r.Path + ".clean"},
			herald.WithSubject("recording/"+r.RecordingID))
		return err
	}, herald.Durable("denoiser"))
	if err != nil {
		t.Fatal(err)
	}
	defer denoiser.Close(context.Background())
	notes, err := noiseReducedType.Subscribe(ctx, b, func(ctx context.Context, n noiseReduced) error {
		ec, _ := herald.FromContext(ctx)
		mu.Lock()
		cleaned = append(cleaned, n)
		contexts = append(contexts, ec)
		mu.Unlock()
		return nil
	}, herald.Durable("notes"))
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close(context.Background())

	pos, err := recordingEndedType.Publish(ctx, b, recordingEnded{RecordingID: "r1", Path: "/r1.wav", Duration: 12},
		herald.WithSubject("recording/r1"), herald.WithCorrelationID("session-1"))
	if err != nil || pos == 0 {
		t.Fatalf("Publish = %d, %v", pos, err)
	}
	testwait.For(t, "the response to reach the second plugin", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(cleaned) == 1
	})
	mu.Lock()
	got, ec := cleaned[0], contexts[0]
	mu.Unlock()
	if got != (noiseReduced{RecordingID: "r1", CleanPath: "/r1.wav.clean"}) {
		t.Errorf("second plugin got %+v", got)
	}
	var parentEv *herald.Event
	for e, err := range b.Store().Read(ctx, 0, herald.Filter{Name: "recording.ended"}) {
		if err != nil {
			t.Fatal(err)
		}
		parentEv = e
	}
	if parentEv == nil {
		t.Fatal("the published event is not in the store")
	}
	if ec.CorrelationID != "session-1" || ec.CausationID != parentEv.ID || ec.Subject != "recording/r1" || ec.EventName != "noise_reduction.completed" {
		t.Errorf("response's context = %+v; want correlation session-1, causation %s", ec, parentEv.ID)
	}
	if want := herald.ChildID(parentEv.ID, "denoiser", 0); ec.EventID != want {
		t.Errorf("response id = %s, want the deterministic %s", ec.EventID, want)
	}
	child, err := b.Store().Get(ctx, ec.EventID)
	if err != nil || child.Version != 2 || child.SourcePlugin != "test" {
		t.Errorf("stored response = %+v, %v; want version 2 from source test", child, err)
	}
}

// TestTypedSubscribeDeadLettersUndecodable checks that an event whose data
// does not fit the type is dead-lettered at once, without a retry, a panic
// or a call to the handler, and that the subscription goes on.
func TestTypedSubscribeDeadLettersUndecodable(t *testing.T) {
	b := newTypedBus(t)
	ctx := t.Context()
	var mu sync.Mutex
	var handled []string
	sub, err := recordingEndedType.Subscribe(ctx, b, func(ctx context.Context, r recordingEnded) error {
		mu.Lock()
		handled = append(handled, r.RecordingID)
		mu.Unlock()
		return nil
	}, herald.Durable("strict"), herald.Backoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	bad := &herald.Event{Name: "recording.ended", Data: json.RawMessage(`{"recording_id":"r1","duration":"very long"}`)}
	if _, err := b.Publish(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := recordingEndedType.Publish(ctx, b, recordingEnded{RecordingID: "r2", Path: "/r2"}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the good event to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 1
	})
	var dls []herald.DeadLetter
	testwait.For(t, "the bad event's dead letter", func() bool {
		dls, err = b.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "strict"})
		return err == nil && len(dls) == 1
	})
	dl := dls[0]
	if dl.Event.ID != bad.ID || !dl.Permanent || len(dl.Errors) != 1 {
		t.Errorf("dead letter = %+v; want the bad event, permanent, after one attempt", dl)
	}
	if len(dl.Errors) > 0 && !strings.Contains(dl.Errors[0].Error, "data.duration") {
		t.Errorf("dead letter error %q does not name the field", dl.Errors[0].Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0] != "r2" {
		t.Errorf("handler saw %v, want only r2", handled)
	}
}

func TestTypedSchemaValidation(t *testing.T) {
	ctx := t.Context()
	// Without a registry, the type's own schema is checked.
	b := newTypedBus(t)
	_, err := recordingEndedType.Publish(ctx, b, recordingEnded{RecordingID: "r1", Duration: -1, Path: "/p"})
	var ve *herald.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, herald.ErrSchemaViolation) || ve.Field != "data.duration" {
		t.Errorf("Publish breaking the schema: %v, want a violation of data.duration", err)
	}
	res, err := recordingEndedType.PublishBatch(ctx, b, []recordingEnded{{RecordingID: "a", Path: "/a"}, {RecordingID: "b", Path: "/b", Duration: -5}})
	if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "data.duration" {
		t.Errorf("PublishBatch with a bad second item = %v, %v; want index 1, field data.duration", res, err)
	}
	if h, _ := b.Store().Head(ctx); h != 0 {
		t.Errorf("rejected events were stored: head %d", h)
	}

	// Registered, the schema also guards untyped publishers.
	schemas := herald.NewSchemas()
	if err := recordingEndedType.Register(schemas); err != nil {
		t.Fatal(err)
	}
	if got, err := schemas.Get("recording.ended", 1); err != nil || string(got) != recordingEndedSchema {
		t.Errorf("registered schema = %s, %v", got, err)
	}
	if err := noiseReducedType.Register(schemas); err != nil {
		t.Errorf("Register of a type without a schema: %v", err)
	}
	if refs := schemas.List(); len(refs) != 1 {
		t.Errorf("registry holds %v, want only recording.ended", refs)
	}
	rb := newTypedBus(t, herald.WithSchemas(schemas))
	_, err = rb.Publish(ctx, &herald.Event{Name: "recording.ended", Data: json.RawMessage(`{"path":"/p"}`)})
	if !errors.As(err, &ve) || ve.Field != "data.recording_id" {
		t.Errorf("untyped Publish breaking the registered schema: %v", err)
	}
	res, err = recordingEndedType.PublishBatch(ctx, rb, []recordingEnded{{RecordingID: "a", Path: "/a"}, {RecordingID: "b", Path: "/b"}}, herald.WithSubject("batch/1"))
	if err != nil || len(res) != 2 || res[1].Position != res[0].Position+1 {
		t.Errorf("PublishBatch = %v, %v", res, err)
	}
}

// TestTypedSubscribeBatch checks typed batches: items arrive as T, one
// failing item is retried alone, and undecodable events are dead-lettered
// without reaching the handler.
func TestTypedSubscribeBatch(t *testing.T) {
	b := newTypedBus(t)
	ctx := t.Context()
	var mu sync.Mutex
	seen := map[string]int{}
	sub, err := recordingEndedType.SubscribeBatch(ctx, b, func(ctx context.Context, items []recordingEnded) []error {
		mu.Lock()
		defer mu.Unlock()
		errs := make([]error, len(items))
		for i, r := range items {
			seen[r.RecordingID]++
			if r.RecordingID == "flaky" && seen["flaky"] == 1 {
				errs[i] = herald.Temporary(errors.New("first try fails"))
			}
		}
		return errs
	}, herald.Durable("batcher"), herald.BatchSize(10), herald.Backoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	var batch []*herald.Event
	for _, id := range []string{"a", "flaky", "b"} {
		e, err := recordingEndedType.New(recordingEnded{RecordingID: id, Path: "/" + id})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, e)
	}
	batch = append(batch, &herald.Event{Name: "recording.ended", Data: json.RawMessage(`{"recording_id":["not","a","string"]}`)})
	if _, err := b.PublishBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the flaky item's retry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["flaky"] == 2
	})
	var dls []herald.DeadLetter
	testwait.For(t, "the undecodable event's dead letter", func() bool {
		dls, err = b.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "batcher"})
		return err == nil && len(dls) == 1
	})
	if dls[0].Event.ID != batch[3].ID || !dls[0].Permanent {
		t.Errorf("dead letter = %+v, want the undecodable event, permanent", dls[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["a"] != 1 || seen["b"] != 1 || len(seen) != 3 {
		t.Errorf("handled %v; want a and b once, flaky twice, nothing else", seen)
	}
}

// TestTypedPublishExpectVersion checks optimistic concurrency through typed
// publishing: event options and publish options mix.
func TestTypedPublishExpectVersion(t *testing.T) {
	b := newTypedBus(t)
	ctx := t.Context()
	subj := herald.WithSubject("recording/9")
	if _, err := noiseReducedType.Publish(ctx, b, noiseReduced{RecordingID: "9"}, subj, herald.ExpectVersion(0)); err != nil {
		t.Fatal(err)
	}
	_, err := noiseReducedType.Publish(ctx, b, noiseReduced{RecordingID: "9"}, herald.ExpectVersion(0), subj)
	if !errors.Is(err, herald.ErrConflict) {
		t.Errorf("stale version: %v, want ErrConflict", err)
	}
	res, err := noiseReducedType.PublishBatch(ctx, b, []noiseReduced{{RecordingID: "9"}, {RecordingID: "9"}}, subj, herald.ExpectVersion(1), herald.WithPriority(herald.PriorityLow))
	if err != nil || len(res) != 2 {
		t.Fatalf("batch at version 1: %v, %v", res, err)
	}
	if v, _ := b.Store().SubjectVersion(ctx, "recording/9"); v != 3 {
		t.Errorf("subject version = %d, want 3", v)
	}
	e, err := b.Store().Get(ctx, firstID(t, b))
	if err != nil || e.Priority != herald.PriorityNormal {
		t.Errorf("first event = %+v, %v", e, err)
	}
}

// TestTypedNewInHandler checks that an event made with New inside a handler
// and published with the handler's ctx is a response, as with NewEvent,
// unless its id was chosen.
func TestTypedNewInHandler(t *testing.T) {
	b := newTypedBus(t)
	ctx := t.Context()
	sub, err := recordingEndedType.Subscribe(ctx, b, func(ctx context.Context, r recordingEnded) error {
		made, err := noiseReducedType.New(noiseReduced{RecordingID: r.RecordingID})
		if err != nil {
			return err
		}
		if _, err := b.Publish(ctx, made); err != nil {
			return err
		}
		chosen, err := noiseReducedType.New(noiseReduced{RecordingID: r.RecordingID}, herald.WithID("chosen-"+r.RecordingID))
		if err != nil {
			return err
		}
		_, err = b.Publish(ctx, chosen)
		return err
	}, herald.Durable("maker"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(context.Background())
	if _, err := recordingEndedType.Publish(ctx, b, recordingEnded{RecordingID: "r1", Path: "/p"}, herald.WithID("parent-1"), herald.WithCorrelationID("corr-1")); err != nil {
		t.Fatal(err)
	}
	var children []*herald.Event
	testwait.For(t, "both responses", func() bool {
		children = children[:0]
		for e, err := range b.Store().Read(ctx, 0, herald.Filter{Name: "noise_reduction.completed"}) {
			if err != nil {
				return false
			}
			children = append(children, e)
		}
		return len(children) == 2
	})
	if c := children[0]; c.ID != herald.ChildID("parent-1", "maker", 0) || c.CorrelationID != "corr-1" || c.CausationID != "parent-1" {
		t.Errorf("New's event published from a handler = id %s correlation %s causation %s; want a deterministic child of parent-1", c.ID, c.CorrelationID, c.CausationID)
	}
	if c := children[1]; c.ID != "chosen-r1" || c.CausationID != "parent-1" {
		t.Errorf("event with a chosen id = id %s causation %s; want chosen-r1 caused by parent-1", c.ID, c.CausationID)
	}
}
