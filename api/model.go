package api

import "github.com/heraldhq/herald/internal/model"

// Limits that apply to every event unless a Bus option raises or lowers them.
const (
	// MaxNameLen is the longest event name, in bytes.
	MaxNameLen = model.MaxNameLen
	// DefaultMaxEventSize is the largest encoded event, in bytes (1 MiB).
	DefaultMaxEventSize = model.DefaultMaxEventSize
	// MaxIDLen is the longest event id, correlation id or causation id.
	MaxIDLen = model.MaxIDLen
	// MaxSubjectLen is the longest subject.
	MaxSubjectLen = model.MaxSubjectLen
	// MaxSourceLen is the longest source_plugin.
	MaxSourceLen = model.MaxSourceLen
	// MaxMetadataEntries is the most metadata entries an event may carry.
	MaxMetadataEntries = model.MaxMetadataEntries
)

// Event is one fact that happened. Its JSON form is the wire form of the
// HTTP API:
//
//	{
//	  "id": "0193...",                      // unique, the idempotency key; made when empty
//	  "name": "recording.completed",        // dot-separated segments of [a-z0-9_]
//	  "timestamp": "2026-01-02T03:04:05Z",  // UTC; now when empty
//	  "data": {"duration": 90},             // a JSON object
//	  "correlation_id": "0193...",          // the chain it belongs to
//	  "causation_id": "0192...",            // the event that caused it, if any
//	  "source_plugin": "recorder",          // who published it
//	  "subject": "recording/123",           // unit of ordering and concurrency, optional
//	  "version": 1,                         // data version: the schema version of data, not the subject's version
//	  "priority": "normal",                 // low, normal, high or critical
//	  "metadata": {"traceparent": "..."},   // free string headers, optional
//	  "position": 42                        // place in the log, set by the store
//	}
//
// Each field's rules are documented on the declaration, in
// github.com/heraldhq/herald/internal/model.
type Event = model.Event

// Priority orders ready events within a subscription. Its JSON form is
// "low", "normal", "high" or "critical"; the zero value is PriorityNormal.
type Priority = model.Priority

// The priorities, lowest first.
const (
	PriorityLow      = model.PriorityLow
	PriorityNormal   = model.PriorityNormal
	PriorityHigh     = model.PriorityHigh
	PriorityCritical = model.PriorityCritical
)

// Duration is a time.Duration whose JSON form is a string such as "100ms",
// "30s", "12h" or "30d" (days are 24 hours); a bare number is nanoseconds.
type Duration = model.Duration

// ValidationError tells which event of a batch, and which of its fields,
// was rejected and why. It wraps ErrInvalidEvent, ErrSchemaViolation or
// ErrTooLarge.
type ValidationError = model.ValidationError

// OutcomeStatus is how handling an event in a subscription ended.
type OutcomeStatus = model.OutcomeStatus

// The outcome statuses.
const (
	OutcomeSucceeded    = model.OutcomeSucceeded
	OutcomeRetrying     = model.OutcomeRetrying
	OutcomeDeadLettered = model.OutcomeDeadLettered
	OutcomeDiscarded    = model.OutcomeDiscarded
)

// Outcome is the result of handling one event in one subscription.
type Outcome = model.Outcome

// AttemptError is one failed attempt in a dead letter's history or an
// outcome's.
type AttemptError = model.AttemptError

// MaxOutcomeHistory is the most failed attempts an Outcome's History
// keeps: the last ones.
const MaxOutcomeHistory = model.MaxOutcomeHistory

// MaxDeadLetterHistory is the most failed attempts a DeadLetter's Errors
// keep: the first and the last ones.
const MaxDeadLetterHistory = model.MaxDeadLetterHistory

// DeadLetter is an event a subscription gave up on, with its error history.
type DeadLetter = model.DeadLetter

// Trace is a correlation's chain of events with every handler's outcome.
type Trace = model.Trace

// TraceEvent is one event of a Trace with its outcomes, by subscription.
type TraceEvent = model.TraceEvent

// SchemaRef names one registered schema: an event name and the version of
// its data.
type SchemaRef = model.SchemaRef

// SubscriptionInfo describes a running subscription.
type SubscriptionInfo = model.SubscriptionInfo

// SubjectInfo describes a subject: its version (how many events were ever
// stored for it) and the positions of its first and last events the log
// holds. It is the answer of GET /v1/subjects/{subject}.
type SubjectInfo = model.SubjectInfo

// SubscriptionStats counts what a subscription did since it started.
type SubscriptionStats = model.SubscriptionStats

// Sentinel errors. Every error herald returns wraps at most one of these;
// the client maps the server's error codes back to the same values, so
// errors.Is works end to end. Each is documented where package herald
// declares it under the same name.
var (
	ErrClosed            = model.ErrClosed
	ErrBackpressure      = model.ErrBackpressure
	ErrOutcomeUnknown    = model.ErrOutcomeUnknown
	ErrConflict          = model.ErrConflict
	ErrNotFound          = model.ErrNotFound
	ErrInvalidEvent      = model.ErrInvalidEvent
	ErrSchemaViolation   = model.ErrSchemaViolation
	ErrTooLarge          = model.ErrTooLarge
	ErrUnauthorized      = model.ErrUnauthorized
	ErrForbidden         = model.ErrForbidden
	ErrRateLimited       = model.ErrRateLimited
	ErrStoreLocked       = model.ErrStoreLocked
	ErrStoreFull         = model.ErrStoreFull
	ErrIncompatibleStore = model.ErrIncompatibleStore
)

// NewEvent returns an event named name whose data is v encoded as JSON. v
// must encode to a JSON object (a struct, a map, json.RawMessage or nil for
// {}). The ID and timestamp are filled at once; the correlation id is left
// empty and resolved when the event is published: its own ID, or, when
// published from a handler, the handled event's correlation id (and the
// ID, while it is still the one NewEvent generated, becomes the
// deterministic ChildID).
func NewEvent(name string, v any) (*Event, error) { return model.NewEvent(name, v) }

// ValidateName reports whether name is a valid event name:
// ^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$, at most MaxNameLen bytes. The error is
// a *ValidationError for field "name".
func ValidateName(name string) error { return model.ValidateName(name) }

// ParsePriority parses "low", "normal", "high" or "critical"; "" is normal.
func ParsePriority(s string) (Priority, error) { return model.ParsePriority(s) }

// ParseDuration parses a Go duration string ("1h30m"), a whole number of
// days ("30d"), or a bare integer number of nanoseconds.
func ParseDuration(s string) (Duration, error) { return model.ParseDuration(s) }

// NewID returns a new UUIDv7 string, the kind of id herald gives events
// that arrive without one.
func NewID() string { return model.NewID() }

// IsTemporary reports whether err, or an error it wraps, was marked
// temporary by a handler or is one of herald's own transient errors
// (ErrBackpressure, ErrRateLimited).
func IsTemporary(err error) bool { return model.IsTemporary(err) }
