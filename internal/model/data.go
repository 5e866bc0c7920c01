package model

import "time"

// OutcomeStatus is how handling an event in a subscription ended.
type OutcomeStatus string

// The outcome statuses.
const (
	// OutcomeSucceeded: the handler returned nil.
	OutcomeSucceeded OutcomeStatus = "succeeded"
	// OutcomeRetrying: the last attempt failed and another is scheduled.
	OutcomeRetrying OutcomeStatus = "retrying"
	// OutcomeDeadLettered: the event is in the dead-letter queue.
	OutcomeDeadLettered OutcomeStatus = "dead_lettered"
	// OutcomeDiscarded: its dead letter was discarded.
	OutcomeDiscarded OutcomeStatus = "discarded"
)

// Outcome is the result of handling one event in one subscription.
type Outcome struct {
	Subscription  string        `json:"subscription"`
	EventID       string        `json:"event_id"`
	EventName     string        `json:"event_name"`
	Position      uint64        `json:"position"`
	CorrelationID string        `json:"correlation_id"`
	Status        OutcomeStatus `json:"status"`
	// Attempts counts every attempt so far, redriven ones included.
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Duration is how long the last attempt took: the successful one of a
	// succeeded outcome, the last failed one otherwise (0 for an outcome
	// no handler ran for, such as a damaged event's).
	Duration  Duration  `json:"duration"`
	UpdatedAt time.Time `json:"updated_at"`
	// Redriven is set when the outcome comes from a delivery made by a
	// redrive of the event's dead letter (Bus.Redrive); it stays set on the
	// later outcomes of that delivery in the same subscription — its
	// retries, its success, its dead letter again — and on those of further
	// redrives. Attempts then counts the attempts before the redrive too.
	// The outcome Bus.Discard records for a dead letter does not carry it.
	Redriven bool `json:"redriven,omitempty"`
	// History is the failed attempts of the event in the subscription,
	// oldest first: the last MaxOutcomeHistory of them, those before a
	// redrive included (see Attempts). It is empty when no attempt failed,
	// so a retried event that succeeded shows what each failed attempt took
	// and why, and Duration what the successful one took; for a retrying,
	// dead-lettered or discarded outcome its last entry is the last attempt
	// (LastError, Duration). The dead letter keeps more (see
	// MaxDeadLetterHistory).
	History []AttemptError `json:"history,omitempty"`
}

// MaxOutcomeHistory is the most failed attempts an Outcome's History
// keeps: the last ones.
const MaxOutcomeHistory = 16

// AttemptError is one failed attempt in a dead letter's history or an
// outcome's.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"` // when the attempt ended
	// Duration is how long the attempt took (0 when no handler ran, and
	// for attempts recorded before herald kept it).
	Duration Duration `json:"duration"`
	Error    string   `json:"error"`
}

// DeadLetter is an event a subscription gave up on, with its error history.
type DeadLetter struct {
	// ID identifies the entry; it is unique per (Subscription, Event.ID).
	ID           string `json:"id"`
	Subscription string `json:"subscription"`
	Event        *Event `json:"event"`
	// Errors are its failed attempts, oldest first, redrives' included:
	// all of them up to MaxDeadLetterHistory, beyond that the first and the
	// last MaxDeadLetterHistory-1 (see Attempts for how many there were).
	Errors []AttemptError `json:"errors"`
	// Permanent is set when the handler marked the error permanent.
	Permanent bool      `json:"permanent"`
	DeadAt    time.Time `json:"dead_at"`
	// Redrive is set while a redrive is requested and not yet handled.
	Redrive bool `json:"redrive"`
}

// MaxDeadLetterHistory is the most failed attempts a DeadLetter's Errors
// keep: the first and the last ones, so that an event redriven again and
// again keeps a dead letter a store can hold.
const MaxDeadLetterHistory = 100

// Attempts is how many attempts the dead letter's event had, redrives'
// included: the highest attempt number in Errors, or how many entries it
// has if that is more (entries recorded without a number).
func (d DeadLetter) Attempts() int {
	n := len(d.Errors)
	for _, ae := range d.Errors {
		n = max(n, ae.Attempt)
	}
	return n
}

// DeadLetterID returns the ID of the dead-letter entry of event eventID in
// subscription sub. Every store uses it, so an entry keeps its ID wherever
// it is stored.
func DeadLetterID(sub, eventID string) string {
	return ChildID(eventID, sub, -1)
}

// Trace is a correlation's chain of events with every handler's outcome.
type Trace struct {
	CorrelationID string       `json:"correlation_id"`
	Events        []TraceEvent `json:"events"`
}

// TraceEvent is one event of a Trace with its outcomes, by subscription.
type TraceEvent struct {
	Event    *Event    `json:"event"`
	Outcomes []Outcome `json:"outcomes"`
}

// SchemaRef names one registered schema: an event name and the version of
// its data.
type SchemaRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// SubjectInfo describes a subject: its version and the events of it the
// log holds.
type SubjectInfo struct {
	Subject string `json:"subject"`
	// Version counts every event ever stored for the subject (0 before the
	// first); retention does not lower it. It is what an expected version
	// (ExpectVersion, Herald-Expected-Version) is compared with. It is not
	// an event's Version, the schema version of its data.
	Version uint64 `json:"version"`
	// FirstPosition and LastPosition are the positions of the subject's
	// first and last events the log still holds; 0 when it holds none.
	FirstPosition uint64 `json:"first_position"`
	LastPosition  uint64 `json:"last_position"`
}

// SubscriptionInfo describes a running subscription.
type SubscriptionInfo struct {
	Name    string            `json:"name"`
	Pattern string            `json:"pattern"`
	Durable bool              `json:"durable"`
	Stats   SubscriptionStats `json:"stats"`
}

// SubscriptionStats counts what a subscription did since it started.
type SubscriptionStats struct {
	// Position is the durable subscription's checkpoint (every event up to
	// it is done) and Lag the events in the log after it; for an ephemeral
	// subscription Lag counts the events it holds (queued and in flight)
	// and Position is Head minus Lag. Head is the log's head.
	Position uint64 `json:"position"`
	Head     uint64 `json:"head"`
	Lag      uint64 `json:"lag"`
	// Handled counts events handled successfully, Failed failed attempts,
	// Retried scheduled retries, DeadLettered events given up on, Dropped
	// events dropped by DropOldest.
	Handled      uint64 `json:"handled"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
	// InFlight is the number of events being handled now.
	InFlight int `json:"in_flight"`
}
