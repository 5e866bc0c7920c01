package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"
)

// Limits that apply to every event unless a Bus option raises or lowers them.
const (
	// MaxNameLen is the longest event name, in bytes.
	MaxNameLen = 200
	// DefaultMaxEventSize is the largest encoded event, in bytes (1 MiB).
	DefaultMaxEventSize = 1 << 20
	// MaxIDLen is the longest event id, correlation id or causation id.
	MaxIDLen = 200
	// MaxSubjectLen is the longest subject.
	MaxSubjectLen = 500
	// MaxSourceLen is the longest source_plugin.
	MaxSourceLen = 200
	// MaxMetadataEntries is the most metadata entries an event may carry.
	MaxMetadataEntries = 64
)

// Event is one fact that happened, in the field names of PanottiServer's
// event-system architecture. The JSON form
// is the wire form of the HTTP API; Position is set by the store and is
// output only.
//
// An Event handed to Publish belongs to the bus until Publish returns; an
// Event handed to a handler is shared with every other subscription and
// must not be modified.
type Event struct {
	// ID is unique and the idempotency key. A UUIDv7 is generated when empty.
	ID string `json:"id"`
	// Name is the event's type, e.g. "recording.completed": dot-separated
	// segments of [a-z0-9_], the first starting with a letter, at most
	// MaxNameLen bytes.
	Name string `json:"name"`
	// Timestamp is when the event happened, in UTC; set on creation when zero.
	Timestamp time.Time `json:"timestamp"`
	// Data is the event's payload: a JSON object (possibly {}).
	Data json.RawMessage `json:"data"`
	// CorrelationID ties a chain of events together; it defaults to the
	// event's own ID, and events published from a handler inherit it.
	CorrelationID string `json:"correlation_id"`
	// CausationID is the ID of the event that caused this one; empty for roots.
	CausationID string `json:"causation_id,omitempty"`
	// SourcePlugin names who published the event. On an authenticated
	// server it is the caller's identity, whatever the body says.
	SourcePlugin string `json:"source_plugin"`
	// Subject is the entity the event is about ("recording/123"): the unit of
	// ordering and of optimistic concurrency. Optional.
	Subject string `json:"subject,omitempty"`
	// Version is the schema version of Data (its data version); 0 is read
	// as 1. It is not the version of the event's subject, which counts the
	// events stored for the subject (Bus.SubjectVersion, ExpectVersion).
	Version int `json:"version"`
	// Priority orders ready events within a subscription; the zero value is
	// PriorityNormal.
	Priority Priority `json:"priority"`
	// Metadata holds free string headers; trace context lives here.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Position is the event's place in the global log, strictly increasing,
	// assigned by the store. Zero until stored.
	Position uint64 `json:"position,omitempty"`

	// generatedID is the ID NewEvent (or EventType.New) generated: while
	// the event still has it, published from a handler it is given the
	// deterministic child ID instead. Generated and SetGenerated read and
	// write it for the bus.
	generatedID string
}

// Generated reports whether e's ID is still the one NewEvent (or
// EventType.New) generated rather than one chosen by the caller.
func Generated(e *Event) bool { return e.generatedID != "" && e.ID == e.generatedID }

// SetGenerated records whether e's current ID was generated.
func SetGenerated(e *Event, generated bool) {
	e.generatedID = ""
	if generated {
		e.generatedID = e.ID
	}
}

// NewEvent returns an event named name whose data is v encoded as JSON. v
// must encode to a JSON object (a struct, a map, json.RawMessage or nil for
// {}). The ID and timestamp are filled at once; the correlation id is left
// empty for Publish to resolve.
func NewEvent(name string, v any) (*Event, error) {
	data, err := encodeData(v)
	if err != nil {
		return nil, err
	}
	e := &Event{Name: name, Data: data}
	FillNew(e, time.Now())
	e.generatedID = e.ID
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

func encodeData(v any) (json.RawMessage, error) {
	switch d := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		return d, nil
	case []byte:
		return json.RawMessage(d), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &ValidationError{Field: "data", Reason: err.Error(), Err: ErrInvalidEvent}
	}
	return b, nil
}

// FillDefaults sets the ID, timestamp, version and correlation id where they
// are empty. It does not validate.
func FillDefaults(e *Event, now time.Time) {
	FillNew(e, now)
	if e.CorrelationID == "" {
		e.CorrelationID = e.ID
	}
}

// FillNew sets what NewEvent sets where it is empty: the ID, timestamp,
// version and data, not the correlation id, which Publish resolves (a
// response event inherits its parent's). It does not validate.
func FillNew(e *Event, now time.Time) {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = now.UTC()
	} else if e.Timestamp.Location() != time.UTC {
		e.Timestamp = e.Timestamp.UTC()
	}
	if e.Version == 0 {
		e.Version = 1
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
}

// Prepare fills an event's defaults (ID, UTC timestamp, version, correlation
// id, empty data) and validates it, as Publish does before storing it. Stores
// and servers call it on events that did not come through a Bus.
func (e *Event) Prepare(now time.Time) error {
	FillDefaults(e, now)
	return e.Validate()
}

// Validate checks the event's shape: the name grammar, the lengths of its
// fields, that Data is a JSON object and that Priority is known. It does
// not check schemas (see Bus options) and does not modify the event. The
// error is a *ValidationError wrapping ErrInvalidEvent.
func (e *Event) Validate() error {
	if err := ValidateName(e.Name); err != nil {
		return err
	}
	switch {
	case e.ID == "":
		return Invalid("id", "must not be empty")
	case len(e.ID) > MaxIDLen:
		return Invalid("id", fmt.Sprintf("longer than %d bytes", MaxIDLen))
	case !Printable(e.ID):
		return Invalid("id", "must be printable ASCII without spaces")
	case len(e.CorrelationID) > MaxIDLen:
		return Invalid("correlation_id", fmt.Sprintf("longer than %d bytes", MaxIDLen))
	case len(e.CausationID) > MaxIDLen:
		return Invalid("causation_id", fmt.Sprintf("longer than %d bytes", MaxIDLen))
	case len(e.Subject) > MaxSubjectLen:
		return Invalid("subject", fmt.Sprintf("longer than %d bytes", MaxSubjectLen))
	case len(e.SourcePlugin) > MaxSourceLen:
		return Invalid("source_plugin", fmt.Sprintf("longer than %d bytes", MaxSourceLen))
	case e.Version < 0:
		return Invalid("version", "must be 1 or more")
	case !encodableYear(e.Timestamp):
		return Invalid("timestamp", "must be between years 0000 and 9999")
	case e.Priority < PriorityLow || e.Priority > PriorityCritical:
		return Invalid("priority", "must be low, normal, high or critical")
	case len(e.Metadata) > MaxMetadataEntries:
		return Invalid("metadata", fmt.Sprintf("more than %d entries", MaxMetadataEntries))
	}
	if !IsJSONObject(e.Data) {
		return Invalid("data", "must be a JSON object")
	}
	if !utf8.Valid(e.Data) {
		return Invalid("data", "must be valid UTF-8 (JSON text is)")
	}
	return nil
}

// Invalid returns the *ValidationError wrapping ErrInvalidEvent for field
// (in wire form) and reason.
func Invalid(field, reason string) *ValidationError {
	return &ValidationError{Field: field, Reason: reason, Err: ErrInvalidEvent}
}

// encodableYear reports whether t's year is within 0–9999, the years an
// RFC 3339 timestamp can carry. It reads the year once: Year is not free.
func encodableYear(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// Printable reports whether s is printable ASCII without spaces.
func Printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// IsJSONObject reports whether b is a JSON object. It checks the first and
// last non-space bytes and, for anything but the common small cases, that b
// is valid JSON.
func IsJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	if len(b) == 2 {
		return true
	}
	return ValidJSON(b)
}

// ValidateName reports whether name is a valid event name:
// ^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$, at most MaxNameLen bytes. The error is a
// *ValidationError for field "name".
func ValidateName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if len(name) > MaxNameLen {
		return Invalid("name", fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if !ValidSegment(name[start:i], start == 0) {
				return Invalid("name", fmt.Sprintf("%q must be dot-separated segments of [a-z0-9_], the first starting with a letter", name))
			}
			start = i + 1
		}
	}
	return nil
}

// ValidSegment reports whether s is one segment of an event name: [a-z0-9_]+,
// starting with a letter when first is set.
func ValidSegment(s string, first bool) bool {
	if s == "" {
		return false
	}
	if first && (s[0] < 'a' || s[0] > 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Clone returns a copy of e that shares nothing mutable with it.
func (e *Event) Clone() *Event {
	c := *e
	c.Data = bytes.Clone(e.Data)
	c.Metadata = maps.Clone(e.Metadata)
	return &c
}

// Decode unmarshals the event's data into v.
func (e *Event) Decode(v any) error {
	return json.Unmarshal(e.Data, v)
}

// Priority orders ready events within a subscription: among events that may
// run, the higher priority goes first. Its JSON form is "low", "normal",
// "high" or "critical"; the zero value is PriorityNormal.
type Priority int8

// The priorities, lowest first.
const (
	PriorityLow      Priority = -1
	PriorityNormal   Priority = 0
	PriorityHigh     Priority = 1
	PriorityCritical Priority = 2
)

var priorityNames = [...]string{"low", "normal", "high", "critical"}

func (p Priority) String() string {
	if p < PriorityLow || p > PriorityCritical {
		return fmt.Sprintf("priority(%d)", int8(p))
	}
	return priorityNames[p+1]
}

// ParsePriority parses "low", "normal", "high" or "critical"; "" is normal.
func ParsePriority(s string) (Priority, error) {
	if s == "" {
		return PriorityNormal, nil
	}
	for i, n := range priorityNames {
		if n == s {
			return Priority(i - 1), nil
		}
	}
	return 0, Invalid("priority", fmt.Sprintf("%q is not low, normal, high or critical", s))
}

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) {
	if p < PriorityLow || p > PriorityCritical {
		return nil, Invalid("priority", "unknown priority")
	}
	return []byte(priorityNames[p+1]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
