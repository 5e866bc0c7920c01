// Package sqlite is herald's embedded store: the whole herald.Store (event
// log, durable subscription state, key-value space) in one SQLite file, with
// no server to run. It is the default store of `herald serve`.
//
// # Driver
//
// The store uses modernc.org/sqlite, a translation of SQLite's C source to
// Go, so herald builds with CGO_ENABLED=0 and cross-compiles like any Go
// program. Measured with ~300-byte rows, an index on correlation_id and an
// fsync on every commit, it inserted 69k rows/s in transactions of 1,000
// and 2.1k rows/s one row per transaction, against 92k and 2.3k for the cgo
// driver mattn/go-sqlite3. The gap closes where it matters: with fsync on
// every commit a store is bound by the disk, not by the driver, and group
// commit turns many small publishes into few large transactions. A pure-Go
// build is worth more than the remaining difference on large batches.
//
// # Writes
//
// One writer goroutine owns the only connection that writes. Concurrent
// Append, Commit, KV and retention calls queue to it; it gathers whatever is
// queued into one transaction, commits once and syncs once, then answers
// every caller with its own result. One caller's conflict or failure does
// not fail the others: a group with a conditional append gives each call
// its own savepoint, and any other group whose call fails is rolled back
// and written again that way. A batch's events are inserted up to 64 rows
// per statement, and a commit's outcomes up to 32. Positions are assigned
// by that goroutine in commit order, so a reader never sees position N+1
// before N.
//
// # Durability
//
// The file is in WAL mode. WithDurability(Full), the default, syncs the WAL on
// every commit (synchronous=FULL): once Append returns, the events survive
// a process crash, a kernel panic and a power failure. WithDurability(Normal)
// syncs only when the WAL is checkpointed into the database
// (synchronous=NORMAL): an acknowledged append survives a crash of the
// process, but a power failure or an operating-system crash can lose the
// transactions committed since the last checkpoint (at most about the last
// thousand pages of writes). In both modes the file is never corrupted:
// what is lost is a suffix of the log, never a hole in it.
//
// # Storage
//
// Each event is one row: its position (the row id), copies of the fields
// reads filter on (id, name, timestamp, correlation id, source, subject
// and subject version) for the indexes, and the whole event in a compact
// binary body, so that a replay decodes one column per event. A read
// decodes a page of rows at a time into shared blocks: an event's text
// fields and data share one copy of its body, and an event kept after the
// read keeps its block (at most 64 KiB) in memory. Checkpoints,
// outcomes, dead letters and the key-value space are tables in the same
// file, so a subscription's Commit and the appends around it share
// transactions.
//
// # Ownership
//
// One process owns a store file at a time: Open takes an exclusive lock on
// path+".lock" and a second opener gets an error wrapping
// herald.ErrStoreLocked. The lock is released by Close or by the end of
// the process, however it ends; the lock file itself stays. A file that is not a herald store, is damaged, or
// was written by a newer herald is refused with an error wrapping
// herald.ErrIncompatibleStore and is never modified.
//
// # Damage
//
// Open runs SQLite's quick check on an existing file (WithQuickCheck) and
// keeps a marker beside it, path+".id", holding the store's identity and
// the last position given at the last open or clean close (and at most a
// minute before the store stopped). A file that
// fails the check, or that is empty, another store or older than its
// marker says, is refused with an error wrapping ErrDamaged that says what
// to do; deleting the marker is how an operator starts over, or keeps a
// restored copy, on purpose. An event whose stored body does not decode
// ends a Read with a herald.DamagedEventError. From the first damage an
// operation meets, Ready reports it.
//
// # Retention
//
// Retention is decided by herald.Prune (run by a bus with
// herald.WithRetention, or by Bus.Prune); the store only deletes the
// positions it is given (Store.DeleteEvents). Deleted space is given back to the file
// system with incremental vacuum. Idempotency by event id is forever:
// retention keeps the id and position of every event it deletes (about 50
// bytes each, in a table of their own), so appending a deleted event's id
// again returns its first position as a duplicate and stores nothing.
//
// Errors returned to callers name a herald sentinel and a short reason; the
// underlying SQLite detail goes to the store's logger.
package sqlite
