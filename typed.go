package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// EventType binds the Go type T of an event's data to an event name, a data
// version and, optionally, a JSON Schema, so that events are published and
// handled as T and never as any:
//
//	type RecordingEnded struct {
//		RecordingID string `json:"recording_id"`
//		Path        string `json:"path"`
//	}
//
//	var recordingEnded = herald.Define[RecordingEnded]("recording.ended")
//
//	sub, err := recordingEnded.Subscribe(ctx, bus, func(ctx context.Context, r RecordingEnded) error {
//		return transcribe(ctx, r.Path)
//	}, herald.Durable("transcriber"))
//	...
//	pos, err := recordingEnded.Publish(ctx, bus, RecordingEnded{RecordingID: "r1", Path: "/r1.wav"},
//		herald.WithSubject("recording/r1"))
//
// T must encode to a JSON object: a struct, a pointer to one, a map with
// string keys, or a type with its own MarshalJSON. An EventType is a small
// value, safe to copy and to use from many goroutines.
type EventType[T any] struct {
	name    string
	version int
	schema  []byte
	own     *Schemas // T's schema alone, compiled; nil without one
	err     error
}

// TypeOption configures an EventType.
type TypeOption func(*typeConfig)

type typeConfig struct {
	version int
	schema  []byte
}

// WithSchemaVersion sets the version of the event's data (the events' Version
// field); the default is 1.
func WithSchemaVersion(n int) TypeOption { return func(c *typeConfig) { c.version = n } }

// WithJSONSchema attaches a JSON Schema (draft 2020-12) to the type: New
// checks the data against it, Register adds it to a Schemas registry, and
// Publish and PublishBatch register it with the bus they publish on (see
// Bus.Schemas) when the bus has no schema for the type's name and version,
// so that the bus validates the data and encrypts the fields it marks
// "x-sensitive". By default a type has no schema.
func WithJSONSchema(schema []byte) TypeOption {
	return func(c *typeConfig) { c.schema = append([]byte(nil), schema...) }
}

// Define returns the event type named name whose data is T. It is meant for
// package-level variables, so it does not return an error: an invalid
// name, version or schema, or a T that cannot encode to a JSON object, is
// kept and returned by Err and by every method that uses the type.
func Define[T any](name string, opts ...TypeOption) EventType[T] {
	c := typeConfig{version: 1}
	for _, o := range opts {
		o(&c)
	}
	t := EventType[T]{name: name, version: c.version, schema: c.schema}
	switch {
	case ValidateName(name) != nil:
		t.err = fmt.Errorf("herald: Define %q: %w", name, ValidateName(name))
	case c.version < 1:
		t.err = fmt.Errorf("herald: Define %q: %w", name, invalid("version", "must be 1 or more"))
	default:
		t.err = objectType(reflect.TypeFor[T]())
		if t.err != nil {
			t.err = fmt.Errorf("herald: Define %q: %w", name, t.err)
		}
	}
	if t.err == nil && c.schema != nil {
		t.own = NewSchemas()
		if err := t.own.Register(name, c.version, c.schema); err != nil {
			t.err = fmt.Errorf("herald: Define %q: %w", name, err)
			t.own = nil
		}
	}
	return t
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// objectType reports whether values of t encode to a JSON object.
func objectType(t reflect.Type) error {
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if k := t.Kind(); k == reflect.Struct || k == reflect.Map {
		return nil
	}
	return &ValidationError{Field: "data", Reason: fmt.Sprintf("%v does not encode to a JSON object", t), Err: ErrInvalidEvent}
}

// Name returns the event name.
func (t EventType[T]) Name() string { return t.name }

// Version returns the data version the type publishes.
func (t EventType[T]) Version() int { return t.version }

// Schema returns a copy of the type's JSON Schema, or nil.
func (t EventType[T]) Schema() []byte { return append([]byte(nil), t.schema...) }

// Err returns what was wrong with the definition, or nil.
func (t EventType[T]) Err() error { return t.err }

// Is reports whether e is an event of this type (by name).
func (t EventType[T]) Is(e *Event) bool { return e != nil && e.Name == t.name }

// EventOption sets a field of an event that New or Publish creates.
type EventOption func(*Event)

// WithSubject sets the event's subject, the entity it is about
// ("recording/123"): the unit of ordering and of optimistic concurrency.
func WithSubject(s string) EventOption { return func(e *Event) { e.Subject = s } }

// WithPriority sets the event's priority (default PriorityNormal).
func WithPriority(p Priority) EventOption { return func(e *Event) { e.Priority = p } }

// WithMetadata adds the header key=value to the event's metadata.
func WithMetadata(key, value string) EventOption {
	return func(e *Event) {
		if e.Metadata == nil {
			e.Metadata = make(map[string]string, 1)
		}
		e.Metadata[key] = value
	}
}

// WithCorrelationID sets the event's correlation id. By default it is the
// event's own id, or, when published from a handler, the handled event's.
func WithCorrelationID(id string) EventOption { return func(e *Event) { e.CorrelationID = id } }

// WithID sets the event's id, its idempotency key: publishing the same id
// again stores nothing new. By default a UUIDv7 is generated, or, when
// published from a handler, a deterministic id (see ChildID).
func WithID(id string) EventOption { return func(e *Event) { e.ID = id } }

// WithTimestamp sets the event's timestamp (default: when it is published).
func WithTimestamp(ts time.Time) EventOption { return func(e *Event) { e.Timestamp = ts } }

// event builds the event for data without filling defaults.
func (t EventType[T]) event(data T, opts []EventOption) (*Event, error) {
	if t.err != nil {
		return nil, t.err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, &ValidationError{Field: "data", Reason: err.Error(), Err: ErrInvalidEvent}
	}
	e := &Event{Name: t.name, Version: t.version, Data: raw}
	for _, o := range opts {
		o(e)
	}
	if !isJSONObject(e.Data) {
		return nil, invalid("data", fmt.Sprintf("%T must encode to a JSON object, not %.20s", data, e.Data))
	}
	return e, nil
}

// New returns an event of this type with data, its defaults filled as
// NewEvent fills them (a new id, the time now; the correlation id is
// resolved at publish), and checked against the type's schema. Like
// NewEvent's, an event published with a handler's ctx is a response to the
// handled event (its correlation and causation), and one whose id New
// generated gets a deterministic id instead.
func (t EventType[T]) New(data T, opts ...EventOption) (*Event, error) {
	e, err := t.event(data, opts)
	if err != nil {
		return nil, err
	}
	generated := e.ID == ""
	fillNew(e, time.Now())
	if err := e.Validate(); err != nil {
		return nil, err
	}
	setGenerated(e, generated)
	if err := t.own.Validate(e); err != nil {
		return nil, err
	}
	return e, nil
}

// PublishArg is an argument of EventType.Publish and PublishBatch: an
// EventOption (Subject, WithPriority, ...) or a PublishOption
// (ExpectVersion).
type PublishArg interface{ publishArg() }

func (EventOption) publishArg()   {}
func (PublishOption) publishArg() {}

// split separates event options from publish options.
func split(args []PublishArg) ([]EventOption, []PublishOption) {
	var eo []EventOption
	var po []PublishOption
	for _, a := range args {
		switch o := a.(type) {
		case EventOption:
			eo = append(eo, o)
		case PublishOption:
			po = append(po, o)
		}
	}
	return eo, po
}

// Publish publishes data as an event of this type on b and returns its
// position, as Bus.Publish does; with a handler's ctx the event is a
// response to the handled event. args set fields of the event
// (EventOption) and say how to publish it (PublishOption, such as
// ExpectVersion for optimistic concurrency on its subject). Data that
// breaks the type's schema returns a *ValidationError wrapping
// ErrSchemaViolation and stores nothing.
func (t EventType[T]) Publish(ctx context.Context, b *Bus, data T, args ...PublishArg) (uint64, error) {
	eo, po := split(args)
	e, err := t.event(data, eo)
	if err != nil {
		return 0, err
	}
	if err := t.checkOwn(b, e); err != nil {
		return 0, err
	}
	return b.Publish(ctx, e, po...)
}

// PublishBatch publishes every item of data as an event of this type, in
// one atomic batch, as Bus.PublishBatch does; the event options apply to
// every event, and with ExpectVersion the batch takes the subject's
// versions N+1, N+2, ...
func (t EventType[T]) PublishBatch(ctx context.Context, b *Bus, data []T, args ...PublishArg) ([]AppendResult, error) {
	eo, po := split(args)
	events := make([]*Event, len(data))
	for i, d := range data {
		e, err := t.event(d, eo)
		if err == nil {
			err = t.checkOwn(b, e)
		}
		if err != nil {
			return nil, atIndex(err, i)
		}
		events[i] = e
	}
	return b.PublishBatch(ctx, events, po...)
}

// checkOwn makes sure the bus knows the type's schema before e is
// published: a type with a schema registers it with the bus's registry
// (Bus.Schemas) when the registry has none for its name and version, so
// that the bus validates the data against it and the bus's codec encrypts
// the fields it marks sensitive. When the registry holds another schema
// for them, that schema applies, provided it marks sensitive every field
// the type's schema marks (across the name's versions); otherwise the
// publish fails with an error wrapping ErrInvalidSchema rather than store
// a field the type marks sensitive in clear.
func (t EventType[T]) checkOwn(b *Bus, e *Event) error {
	if t.own == nil {
		return nil
	}
	reg := b.Schemas()
	if reg.adopt(t.own, SchemaRef{Name: t.name, Version: t.version}) {
		return nil
	}
	marked := reg.NameSensitiveFields(t.name)
	for _, f := range t.own.SensitiveFields(t.name, t.version) {
		if !slices.Contains(marked, f) {
			return fmt.Errorf("%w: %s v%d: the bus holds another schema for it, which does not mark %s sensitive as the type's schema does",
				ErrInvalidSchema, t.name, t.version, f)
		}
	}
	return nil
}

// Decode returns the data of e as T. An event of another name, or data that
// does not decode into T, returns a Permanent error wrapping a
// *ValidationError (ErrInvalidEvent) whose Field names the offending value
// ("data.duration"): a handler that returns it sends the event to the
// dead-letter queue instead of retrying it. Decode does not check e's
// Version; unknown fields are ignored.
func (t EventType[T]) Decode(e *Event) (T, error) {
	var v T
	if t.err != nil {
		return v, Permanent(t.err)
	}
	if e == nil {
		return v, Permanent(&ValidationError{Reason: "nil event", Err: ErrInvalidEvent})
	}
	if e.Name != t.name {
		return v, Permanent(invalid("name", fmt.Sprintf("%q is not an event of type %q", e.Name, t.name)))
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, Permanent(decodeError(err, v))
	}
	return v, nil
}

// decodeError turns a JSON decoding error into a *ValidationError naming the
// field.
func decodeError(err error, v any) *ValidationError {
	field := "data"
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		field += "." + ute.Field
	}
	return &ValidationError{Field: field, Reason: fmt.Sprintf("does not decode into %T: %v", v, err), Err: ErrInvalidEvent}
}

// Subscribe subscribes h to the events of this type on b, as Bus.Subscribe
// does with the options given. h gets each event's data as T; the event's
// context (correlation id, subject, attempt, ...) is in ctx (FromContext).
// An event whose data does not decode into T is dead-lettered at once as a
// permanent error, without calling h.
func (t EventType[T]) Subscribe(ctx context.Context, b *Bus, h func(ctx context.Context, data T) error, opts ...SubscribeOption) (*Subscription, error) {
	if t.err != nil {
		return nil, t.err
	}
	if h == nil {
		return nil, errors.New("herald: nil handler")
	}
	return b.Subscribe(ctx, t.name, HandlerFunc(func(ctx context.Context, e *Event) error {
		v, err := t.Decode(e)
		if err != nil {
			return err
		}
		return h(ctx, v)
	}), opts...)
}

// SubscribeBatch subscribes h to the events of this type on b, as
// Bus.SubscribeBatch does, delivering up to BatchSize items at a time. h
// returns nil when every item succeeded, or one error per item (nil for
// those that succeeded): each failed item is retried or dead-lettered on its
// own. Events whose data does not decode into T are left out of the batch
// and dead-lettered at once as permanent errors.
func (t EventType[T]) SubscribeBatch(ctx context.Context, b *Bus, h func(ctx context.Context, data []T) []error, opts ...SubscribeOption) (*Subscription, error) {
	if t.err != nil {
		return nil, t.err
	}
	if h == nil {
		return nil, errors.New("herald: nil batch handler")
	}
	return b.SubscribeBatch(ctx, t.name, BatchHandlerFunc(func(ctx context.Context, events []*Event) []error {
		var errs []error // nil while every event succeeds
		items := make([]T, 0, len(events))
		index := make([]int, 0, len(events)) // items[k] is events[index[k]]
		for i, e := range events {
			v, err := t.Decode(e)
			if err != nil {
				if errs == nil {
					errs = make([]error, len(events))
				}
				errs[i] = err
				continue
			}
			items = append(items, v)
			index = append(index, i)
		}
		if len(items) == 0 {
			return errs
		}
		res := h(ctx, items)
		if len(res) == 0 {
			return errs
		}
		if errs == nil {
			errs = make([]error, len(events))
		}
		if len(res) != len(items) {
			err := fmt.Errorf("herald: batch handler returned %d results for %d items", len(res), len(items))
			for _, i := range index {
				errs[i] = err
			}
			return errs
		}
		for k, err := range res {
			errs[index[k]] = err
		}
		return errs
	}), opts...)
}

// Register adds the type's schema to s, for its name and version. A type
// without a schema registers nothing.
func (t EventType[T]) Register(s *Schemas) error {
	if t.err != nil {
		return t.err
	}
	if t.schema == nil {
		return nil
	}
	return s.Register(t.name, t.version, t.schema)
}
