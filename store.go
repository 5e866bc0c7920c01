package herald

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// Store is the durable log behind a Bus and the state of its durable
// subscriptions. Memory, SQLite and NATS JetStream implement it, and
// store/storetest specifies it: every backend runs that suite unchanged.
//
// A Store is safe for concurrent use. After Close every method returns
// ErrClosed. Events handed to Append belong to the store from then on, and
// events a store returns are shared: callers must not modify either.
type Store interface {
	EventLog
	SubscriptionState
	KV

	// Close flushes what the store holds and releases it. It is safe to call
	// more than once.
	Close() error
}

// Sizer is implemented by a store that can tell how much room its data
// takes: the bus reports it as the herald_store_size_bytes gauge. SQLite
// answers the size of its files (the database, its WAL and shared
// memory); JetStream the bytes of herald's streams.
type Sizer interface {
	// Size returns the bytes the store's data takes now. After Close it
	// returns ErrClosed.
	Size(ctx context.Context) (int64, error)
}

// EventLog is the append-only, totally ordered event log.
type EventLog interface {
	// Append stores events atomically: all of them or none. Each new event
	// gets the next position, strictly increasing; an event whose ID is
	// already stored is not stored again and its result carries its first
	// position with Duplicate set. When opts.CheckVersion is set, every event
	// must have the same non-empty Subject, and the append succeeds only
	// while that subject's version (the number of events stored for it) is
	// opts.ExpectedVersion; otherwise nothing is stored and the error wraps
	// ErrConflict. A batch whose events are all duplicates succeeds without
	// the version check, so a retried conditional append is idempotent.
	//
	// The events must have been prepared (Event.Prepare); Append sets their
	// Position. It returns only once the write is as durable as the store's
	// setting says. A full store returns an error wrapping ErrStoreFull and
	// stores nothing; a bounded store that cannot take more right now may
	// return ErrBackpressure.
	Append(ctx context.Context, events []*Event, opts AppendOptions) ([]AppendResult, error)

	// Read yields the events after position `after` (exclusive) that match
	// f, in position order, up to f.Limit (0 means no limit). A reader never
	// sees position N+1 before N: every position it yields is committed, and
	// no smaller position is committed after it. The iterator reads lazily;
	// its error, if any, comes as the last pair.
	Read(ctx context.Context, after uint64, f Filter) iter.Seq2[*Event, error]

	// Get returns the event with the given ID, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Event, error)

	// Head returns the position of the last event appended (0 when empty).
	Head(ctx context.Context) (uint64, error)

	// Wait blocks until the log's head is past `after`, then returns the
	// head. It returns ctx's error when ctx ends first, and ErrClosed when
	// the store is closed. Data is then read with Read.
	Wait(ctx context.Context, after uint64) (uint64, error)

	// SubjectVersion returns the number of events stored for subject (0
	// before the first). It counts every event ever appended for the
	// subject and does not go down when retention deletes some, so
	// optimistic concurrency keeps working for aggregates pruned after a
	// snapshot.
	SubjectVersion(ctx context.Context, subject string) (uint64, error)

	// DeleteEvents deletes the events at positions (in ascending order,
	// each once) and reports how many it deleted; positions it does not
	// hold are skipped. With each event go its outcomes and dead letters,
	// so that nothing refers to an event the log no longer holds. Deleting
	// never lowers the head or a subject's version, and a position is never
	// used again. It decides nothing: what to delete is the retention
	// planner's business (see Prune), which every store shares.
	DeleteEvents(ctx context.Context, positions []uint64) (int, error)
}

// DamagedEventError is what a store's Read yields, as its last pair, when
// the next event it holds cannot be decoded: its stored bytes were damaged
// on disk. The events before it were yielded; a read after Position goes
// on past it. It wraps ErrIncompatibleStore and the store's reason (Err).
//
// A durable subscription that meets one does not stop there: it records
// the event as a permanent dead letter carrying this error, without
// calling its handler, and reads on. A redrive of that dead letter does
// not deliver it either (it has no data to deliver): restore the store
// from a backup to get the event back.
type DamagedEventError struct {
	// Position is where the damaged event lies in the log.
	Position uint64
	// Event stands in for the damaged event: Position and what the store
	// could still read of it (its id, name, time, correlation id, source
	// and subject, when the store keeps copies of them). Its Data is
	// empty, which no stored event's is (a dead letter kept as JSON
	// holds it as null), and its ID may be empty.
	Event *Event
	// Err is the store's reason.
	Err error
}

func (e *DamagedEventError) Error() string {
	msg := fmt.Sprintf("herald: the stored event at position %d is damaged and cannot be read", e.Position)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DamagedEventError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrIncompatibleStore}
	}
	return []error{ErrIncompatibleStore, e.Err}
}

// standIn returns the event that stands in for the damaged one: its
// Position set, and an ID when the store had none to give.
func (e *DamagedEventError) standIn() *Event {
	var ev Event
	if e.Event != nil {
		ev = *e.Event
	}
	ev.Position, ev.Data = e.Position, nil
	if ev.ID == "" {
		ev.ID = fmt.Sprintf("damaged-at-%d", e.Position)
	}
	return &ev
}

// isStandIn reports whether e stands in for a damaged event (see
// DamagedEventError): its Data is empty, or JSON null once a store kept
// it as JSON, where every stored event's Data is a JSON object.
func isStandIn(e *Event) bool { return len(e.Data) == 0 || string(e.Data) == "null" }

// SubscriptionState keeps what a durable subscription needs to resume
// exactly where it stood: its checkpoint, the outcome of each event it
// handled, and its dead letters.
type SubscriptionState interface {
	// Checkpoint returns the position through which the durable
	// subscription sub has handled every event, and ok=false when sub has
	// never committed.
	Checkpoint(ctx context.Context, sub string) (pos uint64, ok bool, err error)

	// Checkpoints returns every durable subscription's checkpoint.
	Checkpoints(ctx context.Context) (map[string]uint64, error)

	// Commit records p for subscription sub in one atomic step: its outcomes
	// (replacing earlier ones for the same subscription and event), its new
	// dead letters (replacing an entry for the same subscription and event),
	// the removal of resolved dead letters, and then the checkpoint. A
	// checkpoint is therefore never saved without the outcomes that justify it.
	Commit(ctx context.Context, sub string, p Progress) error

	// DeleteSubscription removes sub's checkpoint, so that it no longer holds
	// back retention, and its outcomes (with whatever else the store keeps
	// of its attempts), so that a later subscription of the same name —
	// perhaps another owner's — never shows them as its own. Its dead
	// letters are kept: discard them with DeleteDeadLetters.
	DeleteSubscription(ctx context.Context, sub string) error

	// Outcomes returns the outcomes matching q, ordered by event position
	// and then subscription name.
	Outcomes(ctx context.Context, q OutcomeQuery) ([]Outcome, error)

	// DeadLetters returns the dead letters matching q, oldest first.
	DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error)

	// DeadLetterCounts counts the dead letters by subscription (one with
	// none is absent): the entries DeadLetters lists, without reading
	// their events, so that its cost does not grow with their size.
	DeadLetterCounts(ctx context.Context) (map[string]int, error)

	// RedriveDeadLetters marks the dead letters matching q for redrive and
	// returns how many it marked. The subscription that owns each one
	// delivers it again and resolves (removes) it when it succeeds.
	RedriveDeadLetters(ctx context.Context, q DeadLetterQuery) (int, error)

	// DeleteDeadLetters discards the dead letters matching q and returns how
	// many it removed.
	DeleteDeadLetters(ctx context.Context, q DeadLetterQuery) (int, error)
}

// KV is a small key-value space for herald's own configuration (push
// subscriptions, schemas, tokens, snapshots, subject keys), kept in the same
// store as the events. Bucket and key names follow ValidateKVName (1 to
// MaxKVNameLen bytes of [A-Za-z0-9_.-/=]) on every store; a call with
// another name fails with an error wrapping ErrInvalidEvent.
//
// Every write of a key gives it a new revision: a positive number greater
// than any revision the key had before, even across a delete and a new
// create, so a revision read once never matches a later write. Several
// processes may share one KV (JetStream); state they share is written with
// CreateValue and UpdateValue, never read-then-put: of two racing writers
// exactly one wins, and the loser gets ErrConflict and reads the winner.
type KV interface {
	// PutValue stores value under bucket/key, replacing what was there.
	PutValue(ctx context.Context, bucket, key string, value []byte) error
	// GetValue returns the value under bucket/key, or an error wrapping ErrNotFound.
	GetValue(ctx context.Context, bucket, key string) ([]byte, error)
	// GetEntry returns the value under bucket/key with its revision, or an
	// error wrapping ErrNotFound.
	GetEntry(ctx context.Context, bucket, key string) (KVEntry, error)
	// CreateValue stores value under bucket/key only when the key is absent
	// (never written, or deleted since), and returns its revision. When the
	// key exists it stores nothing and returns an error wrapping
	// ErrConflict. Of concurrent creates of one key, exactly one succeeds.
	CreateValue(ctx context.Context, bucket, key string, value []byte) (rev uint64, err error)
	// UpdateValue replaces the value under bucket/key only while the key is
	// at revision rev, and returns the new revision. When the key was
	// written or deleted since rev, it stores nothing and returns an error
	// wrapping ErrConflict.
	UpdateValue(ctx context.Context, bucket, key string, value []byte, rev uint64) (newRev uint64, err error)
	// DeleteValue removes bucket/key; removing a missing key is not an
	// error. A persistent store erases the value from its files before it
	// returns (subject keys are deleted to forget a subject), rather than
	// only unlinking it.
	DeleteValue(ctx context.Context, bucket, key string) error
	// ListValues returns every key of bucket with its value.
	ListValues(ctx context.Context, bucket string) (map[string][]byte, error)
}

// SnapshotBucket is the KV bucket in which event-sourced aggregates keep
// their snapshots, keyed by subject. Each value is a JSON object with at
// least {"position": N}: the position of the last event folded into it.
// Retention never deletes an event of a subject newer than that position.
const SnapshotBucket = "snapshots"

// AppendOptions are per-call settings of Append.
type AppendOptions struct {
	// CheckVersion turns on optimistic concurrency: the append succeeds only
	// while the events' subject is at ExpectedVersion.
	CheckVersion bool
	// ExpectedVersion is the subject version the append requires when
	// CheckVersion is set (0: the subject has no events yet).
	ExpectedVersion uint64
}

// AppendResult is what Append did with one event.
type AppendResult struct {
	// Position is the event's place in the log: new, or its first one.
	Position uint64 `json:"position"`
	// Duplicate is set when the event's ID was already stored.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Filter selects events in Read. Zero fields select everything.
type Filter struct {
	// Name is a name pattern (see MatchName); "" matches every name.
	Name string
	// CorrelationID, Subject and SourcePlugin match those fields exactly.
	CorrelationID string
	Subject       string
	SourcePlugin  string
	// Since and Until bound the event's Timestamp: Since inclusive, Until
	// exclusive; zero means unbounded.
	Since, Until time.Time
	// Limit caps how many events Read yields; 0 means no cap.
	Limit int
}

// Match reports whether e passes every field of the filter but Limit.
func (f *Filter) Match(e *Event) bool {
	return (f.Name == "" || MatchName(f.Name, e.Name)) &&
		(f.CorrelationID == "" || f.CorrelationID == e.CorrelationID) &&
		(f.Subject == "" || f.Subject == e.Subject) &&
		(f.SourcePlugin == "" || f.SourcePlugin == e.SourcePlugin) &&
		(f.Since.IsZero() || !e.Timestamp.Before(f.Since)) &&
		(f.Until.IsZero() || e.Timestamp.Before(f.Until))
}

// OutcomeQuery selects outcomes; set at least one field.
type OutcomeQuery struct {
	EventID       string
	CorrelationID string
	Subscription  string
	// Limit caps the result; 0 means DefaultOutcomeLimit.
	Limit int
}

// DeadLetterQuery selects dead letters. Zero fields select everything.
type DeadLetterQuery struct {
	Subscription string
	// IDs, when not empty, selects only these entries.
	IDs []string
	// EventID selects the entries of one event.
	EventID string
	// OnlyRedrive selects only entries marked for redrive.
	OnlyRedrive bool
	// Limit caps DeadLetters' result; 0 means no cap.
	Limit int
}

// Progress is what a durable subscription commits in one step.
type Progress struct {
	// Checkpoint is the position through which every event is done.
	Checkpoint uint64
	// Outcomes to record (upserted by subscription and event).
	Outcomes []Outcome
	// DeadLetters to add (upserted by subscription and event).
	DeadLetters []DeadLetter
	// Resolved lists dead-letter IDs to remove: redriven entries that succeeded.
	Resolved []string
	// Counts is what the subscription did since its previous commit; a
	// CountingStore adds it to the subscription's totals, other stores
	// ignore it.
	Counts SubscriptionCounts
}

// RetentionRule says how long events whose names match Pattern are kept.
type RetentionRule struct {
	// Pattern is a name pattern (see MatchName).
	Pattern string `json:"pattern" yaml:"pattern"`
	// MaxAge deletes events older than this; 0 keeps them regardless of age.
	MaxAge Duration `json:"max_age,omitempty" yaml:"max_age,omitempty"`
	// MaxCount keeps at most this many of the newest matching events; 0 means no cap.
	MaxCount int `json:"max_count,omitempty" yaml:"max_count,omitempty"`
	// Force deletes events even when a durable subscription has not
	// processed them yet.
	Force bool `json:"force,omitempty" yaml:"force,omitempty"`
}

// DefaultRetention keeps every event for 30 days, as PanottiServer's
// event-system architecture asks.
func DefaultRetention() []RetentionRule {
	return []RetentionRule{{Pattern: ">", MaxAge: Duration(30 * 24 * time.Hour)}}
}

// PruneResult reports what Prune deleted and held.
type PruneResult struct {
	Deleted int `json:"deleted"`
	// Held counts events a rule would delete but that a durable
	// subscription or a snapshot still needs.
	Held int `json:"held"`
}
