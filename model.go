package herald

import (
	"time"

	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/internal/model"
)

// The event model, the sentinel errors and the plain data types the HTTP API
// returns are declared in package api, which imports only the standard
// library, so the Go client links them without the bus. The names below are
// aliases: herald.Event and api.Event are one type, herald.ErrNotFound and
// api.ErrNotFound one value.

// Limits that apply to every event unless a Bus option raises or lowers them.
const (
	// MaxNameLen is the longest event name, in bytes.
	MaxNameLen = api.MaxNameLen
	// DefaultMaxEventSize is the largest encoded event, in bytes (1 MiB).
	DefaultMaxEventSize = api.DefaultMaxEventSize
	// MaxIDLen is the longest event id, correlation id or causation id.
	MaxIDLen = api.MaxIDLen
	// MaxSubjectLen is the longest subject.
	MaxSubjectLen = api.MaxSubjectLen
	// MaxSourceLen is the longest source_plugin.
	MaxSourceLen = api.MaxSourceLen
	// MaxMetadataEntries is the most metadata entries an event may carry.
	MaxMetadataEntries = api.MaxMetadataEntries
)

// Event is one fact that happened. The JSON form is the wire form of the
// HTTP API (see api.Event); Position is set by the store and is output only.
// Its fields' rules are documented on the declaration, in
// github.com/heraldhq/herald/internal/model.
//
// An Event handed to Publish belongs to the bus until Publish returns; an
// Event handed to a handler is shared with every other subscription and
// must not be modified.
type Event = api.Event

// Priority orders ready events within a subscription: among events that may
// run, the higher priority goes first. Its JSON form is "low", "normal",
// "high" or "critical"; the zero value is PriorityNormal.
type Priority = api.Priority

// The priorities, lowest first.
const (
	PriorityLow      = api.PriorityLow
	PriorityNormal   = api.PriorityNormal
	PriorityHigh     = api.PriorityHigh
	PriorityCritical = api.PriorityCritical
)

// Duration is a time.Duration whose JSON and YAML form is a string such as
// "100ms", "30s", "12h" or "30d" (days are 24 hours). A bare number is read
// as nanoseconds, for compatibility with time.Duration's own JSON.
type Duration = api.Duration

// ValidationError tells which event of a batch, and which of its fields, was
// rejected and why. It wraps ErrInvalidEvent, ErrSchemaViolation or
// ErrTooLarge.
type ValidationError = api.ValidationError

// OutcomeStatus is how handling an event in a subscription ended.
type OutcomeStatus = api.OutcomeStatus

// The outcome statuses.
const (
	// OutcomeSucceeded: the handler returned nil.
	OutcomeSucceeded = api.OutcomeSucceeded
	// OutcomeRetrying: the last attempt failed and another is scheduled.
	OutcomeRetrying = api.OutcomeRetrying
	// OutcomeDeadLettered: the event is in the dead-letter queue.
	OutcomeDeadLettered = api.OutcomeDeadLettered
	// OutcomeDiscarded: its dead letter was discarded.
	OutcomeDiscarded = api.OutcomeDiscarded
)

// Outcome is the result of handling one event in one subscription.
type Outcome = api.Outcome

// AttemptError is one failed attempt in a dead letter's history or an
// outcome's.
type AttemptError = api.AttemptError

// DeadLetter is an event a subscription gave up on, with its error history.
type DeadLetter = api.DeadLetter

// Trace is a correlation's chain of events with every handler's outcome.
type Trace = api.Trace

// TraceEvent is one event of a Trace with its outcomes, by subscription.
type TraceEvent = api.TraceEvent

// SchemaRef names one registered schema: an event name and the version of
// its data.
type SchemaRef = api.SchemaRef

// SubscriptionInfo describes a running subscription.
type SubscriptionInfo = api.SubscriptionInfo

// SubjectInfo describes a subject: its version and the positions of its
// first and last events the log holds (see Bus.Subject).
type SubjectInfo = api.SubjectInfo

// SubscriptionStats counts what a subscription did since it started.
type SubscriptionStats = api.SubscriptionStats

// Sentinel errors. Every error herald returns wraps at most one of these, so
// callers test for them with errors.Is; the HTTP client maps the server's
// error codes back to the same values, so errors.Is works end to end.
var (
	// ErrClosed is returned by every call on a Bus, Subscription or Store
	// after Close.
	ErrClosed = api.ErrClosed

	// ErrBackpressure is returned by Publish when the bus could not accept
	// the event before the context's deadline (5 s when it has none).
	ErrBackpressure = api.ErrBackpressure

	// ErrOutcomeUnknown is returned when a write was sent but its fate is
	// unknown: the store did not confirm it in time (a timeout waiting for
	// the acknowledgement, a cluster that lost its quorum, a connection lost
	// after sending). It may be stored, now or once the store recovers, or
	// not. Retry with the same event id (Publish has set e.ID): an id is
	// stored at most once, so the retry either stores the event or finds it
	// already stored. Retried with a new id, the event may be stored twice.
	// It is not ErrBackpressure, which says that nothing was stored.
	ErrOutcomeUnknown = api.ErrOutcomeUnknown

	// ErrConflict is returned when a conditional write finds the state it
	// depends on changed: an append states an expected subject version and
	// the subject is at another version, a KV create finds the key already
	// there, a KV update finds the key no longer at the revision it names.
	// Nothing is stored.
	ErrConflict = api.ErrConflict

	// ErrNotFound is returned when an event, dead letter, subscription or
	// schema does not exist.
	ErrNotFound = api.ErrNotFound

	// ErrInvalidEvent is wrapped by every *ValidationError about the event's
	// shape: its name, its data, its size or its fields.
	ErrInvalidEvent = api.ErrInvalidEvent

	// ErrSchemaViolation is wrapped by a *ValidationError when the event's
	// data does not satisfy the JSON Schema registered for its name and version.
	ErrSchemaViolation = api.ErrSchemaViolation

	// ErrTooLarge is returned when an event, a batch or a body exceeds its limit.
	ErrTooLarge = api.ErrTooLarge

	// ErrUnauthorized is returned when a caller has no valid credentials.
	ErrUnauthorized = api.ErrUnauthorized

	// ErrForbidden is returned when a caller's identity may not do what it asked.
	ErrForbidden = api.ErrForbidden

	// ErrRateLimited is returned when a caller exceeds its rate limit.
	ErrRateLimited = api.ErrRateLimited

	// ErrStoreLocked is returned by a store that only one process may own
	// when another process owns it.
	ErrStoreLocked = api.ErrStoreLocked

	// ErrStoreFull is returned when the store has no room left (a full disk,
	// a size limit). Nothing of the failed append is stored; appends work
	// again once space returns.
	ErrStoreFull = api.ErrStoreFull

	// ErrIncompatibleStore is returned when a store's files were written by
	// a newer herald, or are not a herald store at all. They are never
	// overwritten.
	ErrIncompatibleStore = api.ErrIncompatibleStore
)

// NewEvent returns an event named name whose data is v encoded as JSON. v
// must encode to a JSON object (a struct, a map, json.RawMessage or nil for
// {}). The ID and timestamp are filled at once; the correlation id is left
// empty and resolved when the event is published: its own ID, or, when
// published from a handler, the handled event's correlation id (and the
// ID, while it is still the one NewEvent generated, becomes the
// deterministic ChildID).
func NewEvent(name string, v any) (*Event, error) { return api.NewEvent(name, v) }

// ValidateName reports whether name is a valid event name:
// ^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$, at most MaxNameLen bytes. The error is a
// *ValidationError for field "name".
func ValidateName(name string) error { return api.ValidateName(name) }

// ParsePriority parses "low", "normal", "high" or "critical"; "" is normal.
func ParsePriority(s string) (Priority, error) { return api.ParsePriority(s) }

// ParseDuration parses a Go duration string ("1h30m"), a whole number of
// days ("30d"), or a bare integer number of nanoseconds.
func ParseDuration(s string) (Duration, error) { return api.ParseDuration(s) }

// NewID returns a new UUIDv7 string, the kind of id herald gives events that
// arrive without one.
func NewID() string { return api.NewID() }

// ChildID returns the deterministic id of the index-th event published by
// subscription sub while handling the event parentID: a UUIDv8 made from the
// SHA-256 of the three. A handler that runs again for the same event
// publishes the same ids, so the store keeps each response once.
func ChildID(parentID, sub string, index int) string { return model.ChildID(parentID, sub, index) }

// DeadLetterID returns the ID of the dead-letter entry of event eventID in
// subscription sub. Every store uses it, so an entry keeps its ID wherever
// it is stored.
func DeadLetterID(sub, eventID string) string { return model.DeadLetterID(sub, eventID) }

// Permanent marks err as permanent: the bus does not retry it and moves the
// event straight to the dead-letter queue. Permanent(nil) is nil.
func Permanent(err error) error { return model.Permanent(err) }

// Temporary marks err as temporary: the bus retries the event with backoff
// until the subscription's attempt limit. Temporary(nil) is nil.
func Temporary(err error) error { return model.Temporary(err) }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool { return model.IsPermanent(err) }

// IsTemporary reports whether err, or an error it wraps, was marked with
// Temporary, or is one of herald's own transient errors (ErrBackpressure,
// ErrRateLimited). An error marked neither way is treated by the bus like a
// temporary one, but is logged with its stack as unexpected.
func IsTemporary(err error) bool { return api.IsTemporary(err) }

// Helpers of the event model that the bus uses under their old names.

func invalid(field, reason string) *ValidationError { return model.Invalid(field, reason) }
func fillDefaults(e *Event, now time.Time)          { model.FillDefaults(e, now) }
func fillNew(e *Event, now time.Time)               { model.FillNew(e, now) }
func isJSONObject(b []byte) bool                    { return model.IsJSONObject(b) }
func validJSON(b []byte) bool                       { return model.ValidJSON(b) }
func newIDAt(now time.Time) string                  { return model.NewIDAt(now) }

// generated reports whether NewEvent or EventType.New generated e's ID and
// correlation id; setGenerated records it.
func generated(e *Event) bool               { return model.Generated(e) }
func setGenerated(e *Event, generated bool) { model.SetGenerated(e, generated) }

// MatchName reports whether the event name matches pattern. Patterns are
// dot-separated like names; a segment "*" matches exactly one segment, a
// last segment ">" matches one or more segments, and ">" alone matches every
// name: "recording.completed", "recording.*", "recording.>", ">".
// MatchName does not allocate.
func MatchName(pattern, name string) bool { return api.MatchName(pattern, name) }

// ValidatePattern reports whether pattern is a valid subscription pattern:
// segments of [a-z0-9_] (the first segment starts with a letter), "*" for
// one segment, ">" only as the last segment.
func ValidatePattern(pattern string) error { return api.ValidatePattern(pattern) }

// IsLiteralPattern reports whether pattern has no wildcard, so it matches
// exactly one name.
func IsLiteralPattern(pattern string) bool { return api.IsLiteralPattern(pattern) }

// validSubName reports whether s is a valid durable subscription name.
func validSubName(s string) bool { return api.ValidateSubscriptionName(s) == nil }
