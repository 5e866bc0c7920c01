package model

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error herald returns wraps at most one of these, so
// callers test for them with errors.Is; the HTTP client maps the server's
// error codes back to the same values, so errors.Is works end to end.
var (
	// ErrClosed is returned by every call on a Bus, Subscription or Store
	// after Close.
	ErrClosed = errors.New("herald: closed")

	// ErrBackpressure is returned by Publish when the bus could not accept
	// the event before the context's deadline (5 s when it has none).
	ErrBackpressure = errors.New("herald: backpressure: the bus is full, retry later")

	// ErrOutcomeUnknown is returned when a write was sent but its fate is
	// unknown: the store did not confirm it in time (a timeout waiting for
	// the acknowledgement, a cluster that lost its quorum, a connection lost
	// after sending). It may be stored, now or once the store recovers, or
	// not. Retry with the same event id: an id is stored at most once, so
	// the retry either stores the event or finds it already stored. Retried
	// with a new id, the event may be stored twice.
	ErrOutcomeUnknown = errors.New("herald: outcome unknown, retry with the same id")

	// ErrConflict is returned when a conditional write finds the state it
	// depends on changed: an append states an expected subject version and
	// the subject is at another version, a KV create finds the key already
	// there, a KV update finds the key no longer at the revision it names.
	// Nothing is stored.
	ErrConflict = errors.New("herald: conflict")

	// ErrNotFound is returned when an event, dead letter, subscription or
	// schema does not exist.
	ErrNotFound = errors.New("herald: not found")

	// ErrInvalidEvent is wrapped by every *ValidationError about the event's
	// shape: its name, its data, its size or its fields.
	ErrInvalidEvent = errors.New("herald: invalid event")

	// ErrSchemaViolation is wrapped by a *ValidationError when the event's
	// data does not satisfy the JSON Schema registered for its name and version.
	ErrSchemaViolation = errors.New("herald: schema violation")

	// ErrTooLarge is returned when an event, a batch or a body exceeds its limit.
	ErrTooLarge = errors.New("herald: payload too large")

	// ErrUnauthorized is returned when a caller has no valid credentials.
	ErrUnauthorized = errors.New("herald: unauthorized")

	// ErrForbidden is returned when a caller's identity may not do what it asked.
	ErrForbidden = errors.New("herald: forbidden")

	// ErrRateLimited is returned when a caller exceeds its rate limit.
	ErrRateLimited = errors.New("herald: rate limited")

	// ErrStoreLocked is returned by a store that only one process may own
	// when another process owns it.
	ErrStoreLocked = errors.New("herald: store is in use by another process")

	// ErrStoreFull is returned when the store has no room left (a full disk,
	// a size limit). Nothing of the failed append is stored; appends work
	// again once space returns.
	ErrStoreFull = errors.New("herald: store is full")

	// ErrIncompatibleStore is returned when a store's files were written by
	// a newer herald, or are not a herald store at all. They are never
	// overwritten.
	ErrIncompatibleStore = errors.New("herald: incompatible store")
)

// ValidationError tells which event of a batch, and which of its fields, was
// rejected and why. It wraps ErrInvalidEvent, ErrSchemaViolation or
// ErrTooLarge.
type ValidationError struct {
	// Index is the event's place in its batch (0 for a single event).
	Index int
	// Field names the offending field in the wire form ("name", "data",
	// "data.duration"), or is empty when the whole event is at fault.
	Field string
	// Reason says what is wrong, for a person.
	Reason string
	// Err is the sentinel this error wraps.
	Err error
}

func (e *ValidationError) Error() string {
	var field string
	if e.Field != "" {
		field = " field " + e.Field + ":"
	}
	return fmt.Sprintf("%v: event %d:%s %s", e.Err, e.Index, field, e.Reason)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// permanentError and temporaryError mark a handler's error with what the bus
// should do with it.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

type temporaryError struct{ err error }

func (e temporaryError) Error() string { return e.err.Error() }
func (e temporaryError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the bus does not retry it and moves the
// event straight to the dead-letter queue. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Temporary marks err as temporary: the bus retries the event with backoff
// until the subscription's attempt limit. Temporary(nil) is nil.
func Temporary(err error) error {
	if err == nil {
		return nil
	}
	return temporaryError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// IsTemporary reports whether err, or an error it wraps, was marked with
// Temporary, or is one of herald's own transient errors (ErrBackpressure,
// ErrRateLimited, ErrOutcomeUnknown: retry that one with the same id). An error marked neither way is treated by the bus like a
// temporary one, but is logged with its stack as unexpected.
func IsTemporary(err error) bool {
	var t temporaryError
	return errors.As(err, &t) || errors.Is(err, ErrBackpressure) || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrOutcomeUnknown)
}
