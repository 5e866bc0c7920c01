package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewEventDefaults(t *testing.T) {
	before := time.Now()
	e, err := NewEvent("recording.completed", map[string]any{"recording_id": "r1"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if !uuidV7.MatchString(e.ID) {
		t.Errorf("ID %q is not a UUIDv7", e.ID)
	}
	if e.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp location = %v, want UTC", e.Timestamp.Location())
	}
	if e.Timestamp.Before(before.Add(-time.Millisecond)) || e.Timestamp.After(after.Add(time.Millisecond)) {
		t.Errorf("Timestamp %v not between %v and %v", e.Timestamp, before, after)
	}
	if e.CorrelationID != "" {
		t.Errorf("CorrelationID = %q, want it left for Publish", e.CorrelationID)
	}
	if e.Version != 1 {
		t.Errorf("Version = %d, want 1", e.Version)
	}
	if e.Priority != PriorityNormal {
		t.Errorf("Priority = %v, want normal", e.Priority)
	}
	if e.CausationID != "" || e.Position != 0 {
		t.Errorf("CausationID %q, Position %d: want empty", e.CausationID, e.Position)
	}
	if string(e.Data) != `{"recording_id":"r1"}` {
		t.Errorf("Data = %s", e.Data)
	}
	// Two events get different ids.
	e2, _ := NewEvent("recording.completed", nil)
	if e2.ID == e.ID {
		t.Error("two events share an id")
	}
	if string(e2.Data) != "{}" {
		t.Errorf("nil data = %s, want {}", e2.Data)
	}
}

func TestNewEventData(t *testing.T) {
	type payload struct {
		Path string `json:"path"`
	}
	tests := []struct {
		name string
		v    any
		ok   bool
	}{
		{"struct", payload{"/a"}, true},
		{"pointer to struct", &payload{"/a"}, true},
		{"map", map[string]int{"a": 1}, true},
		{"raw object", json.RawMessage(`{"a":[1,2]}`), true},
		{"bytes object", []byte(` {"a":1} `), true},
		{"nil", nil, true},
		{"string", "hello", false},
		{"number", 42, false},
		{"array", []int{1, 2}, false},
		{"nil pointer", (*payload)(nil), false},
		{"raw array", json.RawMessage(`[1]`), false},
		{"raw invalid", json.RawMessage(`{"a":}`), false},
		{"raw two objects", json.RawMessage(`{"a":1}{"b":2}`), false},
		{"raw empty", json.RawMessage(``), true},
		{"unencodable", map[string]any{"f": func() {}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEvent("a.b", tt.v)
			if tt.ok {
				if err != nil {
					t.Fatalf("NewEvent: %v", err)
				}
				return
			}
			if e != nil || err == nil {
				t.Fatalf("NewEvent = %v, %v; want an error", e, err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "data" || !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("error %v: want a *ValidationError for field data wrapping ErrInvalidEvent", err)
			}
		})
	}
}

// TestEventJSONWireForm checks the field names of the wire form, which are
// those of PanottiServer's event-system architecture.
func TestEventJSONWireForm(t *testing.T) {
	e := &Event{
		ID:            "0190a0b2-0000-7000-8000-000000000001",
		Name:          "recording.completed",
		Timestamp:     time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC),
		Data:          json.RawMessage(`{"recording_id":"r1"}`),
		CorrelationID: "corr-1",
		CausationID:   "cause-1",
		SourcePlugin:  "recorder",
		Subject:       "recording/r1",
		Version:       2,
		Priority:      PriorityHigh,
		Metadata:      map[string]string{"traceparent": "00-abc-def-01"},
		Position:      42,
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0190a0b2-0000-7000-8000-000000000001","name":"recording.completed",` +
		`"timestamp":"2026-03-04T05:06:07.89Z","data":{"recording_id":"r1"},` +
		`"correlation_id":"corr-1","causation_id":"cause-1","source_plugin":"recorder",` +
		`"subject":"recording/r1","version":2,"priority":"high",` +
		`"metadata":{"traceparent":"00-abc-def-01"},"position":42}`
	if string(b) != want {
		t.Errorf("wire form:\n got %s\nwant %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, e) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *e)
	}

	// Optional fields are omitted when empty.
	min := &Event{ID: "x", Name: "a", Timestamp: e.Timestamp, Data: json.RawMessage(`{}`), CorrelationID: "x", Version: 1}
	b, _ = json.Marshal(min)
	for _, absent := range []string{"causation_id", "subject", "metadata", "position"} {
		if bytes.Contains(b, []byte(`"`+absent+`"`)) {
			t.Errorf("empty %s is not omitted: %s", absent, b)
		}
	}
	if !bytes.Contains(b, []byte(`"priority":"normal"`)) {
		t.Errorf("zero priority does not encode as normal: %s", b)
	}
}

func TestEventJSONFromPanottiShape(t *testing.T) {
	// PanottiServer's minimal event: id, name, timestamp, data, correlation_id,
	// source_plugin — with a non-UTC timestamp and no version or priority.
	in := `{"id":"ev-1","name":"transcription_local.completed","timestamp":"2026-01-02T10:00:00+02:00",
		"data":{"text":"hello"},"correlation_id":null,"source_plugin":"transcriber"}`
	var e Event
	if err := json.Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	if err := e.Prepare(time.Now()); err != nil {
		t.Fatal(err)
	}
	if e.Timestamp.Location() != time.UTC || e.Timestamp.Hour() != 8 {
		t.Errorf("Timestamp = %v, want 08:00 UTC", e.Timestamp)
	}
	if e.CorrelationID != "ev-1" || e.Version != 1 || e.Priority != PriorityNormal || e.SourcePlugin != "transcriber" {
		t.Errorf("defaults not filled: %+v", e)
	}
}

func TestPrepareKeepsGivenFields(t *testing.T) {
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &Event{ID: "given", Name: "a.b", Timestamp: ts, CorrelationID: "c", Version: 3}
	if err := e.Prepare(time.Now()); err != nil {
		t.Fatal(err)
	}
	if e.ID != "given" || !e.Timestamp.Equal(ts) || e.CorrelationID != "c" || e.Version != 3 || string(e.Data) != "{}" {
		t.Errorf("Prepare changed given fields or missed defaults: %+v", e)
	}
	now := time.Date(2026, 5, 5, 5, 5, 5, 0, time.FixedZone("X", 3600))
	e2 := &Event{Name: "a.b"}
	if err := e2.Prepare(now); err != nil {
		t.Fatal(err)
	}
	if !e2.Timestamp.Equal(now) || e2.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp = %v, want %v in UTC", e2.Timestamp, now)
	}
}

func TestEventValidate(t *testing.T) {
	valid := func() *Event {
		e := &Event{Name: "a.b"}
		if err := e.Prepare(time.Now()); err != nil {
			t.Fatal(err)
		}
		return e
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		edit  func(e *Event)
		field string // "" means valid
	}{
		{"valid", func(e *Event) {}, ""},
		{"empty name", func(e *Event) { e.Name = "" }, "name"},
		{"bad name", func(e *Event) { e.Name = "A.b" }, "name"},
		{"empty id", func(e *Event) { e.ID = "" }, "id"},
		{"id with space", func(e *Event) { e.ID = "a b" }, "id"},
		{"id with control", func(e *Event) { e.ID = "a\nb" }, "id"},
		{"id non-ASCII", func(e *Event) { e.ID = "é" }, "id"},
		{"id at limit", func(e *Event) { e.ID = long(MaxIDLen) }, ""},
		{"id too long", func(e *Event) { e.ID = long(MaxIDLen + 1) }, "id"},
		{"correlation too long", func(e *Event) { e.CorrelationID = long(MaxIDLen + 1) }, "correlation_id"},
		{"causation too long", func(e *Event) { e.CausationID = long(MaxIDLen + 1) }, "causation_id"},
		{"subject at limit", func(e *Event) { e.Subject = long(MaxSubjectLen) }, ""},
		{"subject too long", func(e *Event) { e.Subject = long(MaxSubjectLen + 1) }, "subject"},
		{"source too long", func(e *Event) { e.SourcePlugin = long(MaxSourceLen + 1) }, "source_plugin"},
		{"negative version", func(e *Event) { e.Version = -1 }, "version"},
		{"version 0 is 1", func(e *Event) { e.Version = 0 }, ""},
		{"priority too low", func(e *Event) { e.Priority = -2 }, "priority"},
		{"priority too high", func(e *Event) { e.Priority = 3 }, "priority"},
		{"critical", func(e *Event) { e.Priority = PriorityCritical }, ""},
		{"too much metadata", func(e *Event) {
			e.Metadata = map[string]string{}
			for i := range MaxMetadataEntries + 1 {
				e.Metadata[long(i+1)] = "v"
			}
		}, "metadata"},
		{"data array", func(e *Event) { e.Data = json.RawMessage(`[]`) }, "data"},
		{"data null", func(e *Event) { e.Data = json.RawMessage(`null`) }, "data"},
		{"data string", func(e *Event) { e.Data = json.RawMessage(`"{}"`) }, "data"},
		{"data empty", func(e *Event) { e.Data = nil }, "data"},
		{"data broken", func(e *Event) { e.Data = json.RawMessage(`{"a":1,}`) }, "data"},
		{"data braces only outside", func(e *Event) { e.Data = json.RawMessage(`{"a":1} {"b":2}`) }, "data"},
		{"data padded", func(e *Event) { e.Data = json.RawMessage(" {\"a\":[{}]}\n") }, ""},
		{"timestamp year 10000", func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "timestamp"},
		{"timestamp negative year", func(e *Event) { e.Timestamp = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.edit(e)
			before := e.Clone()
			err := e.Validate()
			if !reflect.DeepEqual(e, before) {
				t.Error("Validate modified the event")
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: %v, want *ValidationError", err)
			}
			if ve.Field != tt.field || !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Validate: field %q (%v), want field %q wrapping ErrInvalidEvent", ve.Field, err, tt.field)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes: it should not echo long input", len(err.Error()))
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"recording.completed", true},
		{"noise_reduction.completed", true},
		{"a.b.c.d", true},
		{"a1.2b", true},
		{"a._", true},
		{"a_b.c_d_", true},
		{"x." + strings.Repeat("y", MaxNameLen-2), true},
		{"x." + strings.Repeat("y", MaxNameLen-1), false},
		{"", false},
		{"A", false},
		{"Recording.completed", false},
		{"recording.Completed", false},
		{"1abc", false},
		{"_abc", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a.b-c", false},
		{"a b", false},
		{"a.*", false},
		{"a.>", false},
		{">", false},
		{"a/b", false},
		{"é", false},
		{"a\x00", false},
		{"a.b\n", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "name" || !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("ValidateName(%q) error %v: want field name wrapping ErrInvalidEvent", tt.name, err)
			}
		}
	}
	// The limit is exactly MaxNameLen bytes.
	if n := len("x." + strings.Repeat("y", MaxNameLen-2)); n != 200 {
		t.Fatalf("test name is %d bytes", n)
	}
}

func TestEventClone(t *testing.T) {
	e, _ := NewEvent("a.b", map[string]int{"n": 1})
	e.Metadata = map[string]string{"k": "v"}
	c := e.Clone()
	if !reflect.DeepEqual(c, e) {
		t.Fatal("clone differs")
	}
	c.Data[2] = 'X'
	c.Metadata["k"] = "changed"
	if string(e.Data) != `{"n":1}` || e.Metadata["k"] != "v" {
		t.Error("clone shares Data or Metadata with the original")
	}
}

func TestEventDecode(t *testing.T) {
	e, _ := NewEvent("a.b", map[string]any{"n": 7, "s": "x"})
	var v struct {
		N int    `json:"n"`
		S string `json:"s"`
	}
	if err := e.Decode(&v); err != nil || v.N != 7 || v.S != "x" {
		t.Errorf("Decode = %+v, %v", v, err)
	}
	var wrong struct {
		N string `json:"n"`
	}
	if err := e.Decode(&wrong); err == nil {
		t.Error("Decode into a mismatched type: want an error")
	}
}

func TestPriority(t *testing.T) {
	for _, tt := range []struct {
		p    Priority
		text string
	}{{PriorityLow, "low"}, {PriorityNormal, "normal"}, {PriorityHigh, "high"}, {PriorityCritical, "critical"}} {
		b, err := json.Marshal(tt.p)
		if err != nil || string(b) != `"`+tt.text+`"` {
			t.Errorf("Marshal(%v) = %s, %v", tt.p, b, err)
		}
		var p Priority
		if err := json.Unmarshal(b, &p); err != nil || p != tt.p {
			t.Errorf("Unmarshal(%s) = %v, %v", b, p, err)
		}
		if tt.p.String() != tt.text {
			t.Errorf("String = %q, want %q", tt.p.String(), tt.text)
		}
		if p, err := ParsePriority(tt.text); err != nil || p != tt.p {
			t.Errorf("ParsePriority(%q) = %v, %v", tt.text, p, err)
		}
	}
	if !(PriorityLow < PriorityNormal && PriorityNormal < PriorityHigh && PriorityHigh < PriorityCritical) {
		t.Error("priorities are not ordered lowest first")
	}
	if p, err := ParsePriority(""); err != nil || p != PriorityNormal {
		t.Errorf(`ParsePriority("") = %v, %v; want normal`, p, err)
	}
	for _, bad := range []string{`"urgent"`, `"HIGH"`, `1`, `"normal "`} {
		var p Priority
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, p)
		}
	}
	if _, err := json.Marshal(Priority(5)); err == nil {
		t.Error("Marshal of an unknown priority: want an error")
	}
	if s := Priority(5).String(); s != "priority(5)" {
		t.Errorf("String of unknown = %q", s)
	}
	var e Event
	if err := json.Unmarshal([]byte(`{"name":"a","priority":"critical"}`), &e); err != nil || e.Priority != PriorityCritical {
		t.Errorf("event priority = %v, %v", e.Priority, err)
	}
}

func TestErrorClassification(t *testing.T) {
	base := errors.New("boom")
	if Permanent(nil) != nil || Temporary(nil) != nil {
		t.Error("Permanent(nil) or Temporary(nil) is not nil")
	}
	p := Permanent(base)
	if !IsPermanent(p) || IsTemporary(p) || !errors.Is(p, base) || p.Error() != "boom" {
		t.Errorf("Permanent: %v", p)
	}
	tmp := Temporary(base)
	if IsPermanent(tmp) || !IsTemporary(tmp) || !errors.Is(tmp, base) {
		t.Errorf("Temporary: %v", tmp)
	}
	wrapped := errors.Join(errors.New("ctx"), p)
	if !IsPermanent(wrapped) {
		t.Error("a wrapped permanent error is not permanent")
	}
	if IsPermanent(base) || IsTemporary(base) {
		t.Error("an unmarked error is classified")
	}
	if !IsTemporary(ErrBackpressure) || !IsTemporary(ErrRateLimited) {
		t.Error("ErrBackpressure and ErrRateLimited are temporary")
	}
	ve := &ValidationError{Index: 3, Field: "data.x", Reason: "bad", Err: ErrSchemaViolation}
	if !errors.Is(ve, ErrSchemaViolation) || !strings.Contains(ve.Error(), "event 3") || !strings.Contains(ve.Error(), "data.x") {
		t.Errorf("ValidationError: %v", ve)
	}
}
