package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// pageSize is how many rows one read query fetches.
const pageSize = 512

// pageBytes bounds the event bodies one read query holds in memory (and
// at least one row): a page of 512 large events would take hundreds of
// megabytes for every reader at once.
const pageBytes = 1 << 20

// Append stores events atomically; see herald.EventLog. Concurrent calls
// are committed together by the writer, each in its own savepoint.
func (s *Store) Append(ctx context.Context, events []*herald.Event, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return []herald.AppendResult{}, nil
	}
	if err := checkEvents(events, opts); err != nil {
		return nil, err
	}
	rows := make([]eventRow, len(events))
	for i, e := range events {
		rows[i] = encodeEvent(e)
	}
	results := make([]herald.AppendResult, len(events))
	queue := s.do
	if opts.CheckVersion {
		queue = s.doMayFail
	}
	err := queue(ctx, func(tx *wtx) error {
		return tx.appendEvents(events, rows, opts, results)
	})
	if err != nil {
		return nil, s.fail(ctx, "append", err)
	}
	for i, e := range events {
		e.Position = results[i].Position
	}
	return results, nil
}

// checkEvents validates what Append is given before it is queued.
func checkEvents(events []*herald.Event, opts herald.AppendOptions) error {
	for i, e := range events {
		if e == nil {
			return &herald.ValidationError{Index: i, Reason: "nil event", Err: herald.ErrInvalidEvent}
		}
		if err := e.Validate(); err != nil {
			var ve *herald.ValidationError
			if errors.As(err, &ve) {
				c := *ve
				c.Index = i
				return &c
			}
			return err
		}
		if opts.CheckVersion && (e.Subject == "" || e.Subject != events[0].Subject) {
			return &herald.ValidationError{Index: i, Field: "subject",
				Reason: "an append with an expected version needs every event to have the same non-empty subject",
				Err:    herald.ErrInvalidEvent}
		}
	}
	return nil
}

// eventRow is an event's column values, encoded outside the writer.
type eventRow struct {
	ts      int64
	subject any
	body    []byte
}

func encodeEvent(e *herald.Event) eventRow {
	r := eventRow{body: encodeBody(e)}
	r.ts, _ = encodeTS(e.Timestamp)
	if e.Subject != "" {
		r.subject = e.Subject
	}
	return r
}

// encodeTS returns the ts column of a time: Unix nanoseconds, clamped to
// the int64 range for times nanoseconds cannot hold (the exact time is in
// the body). inRange reports whether no clamping was needed.
func encodeTS(t time.Time) (ns int64, inRange bool) {
	if y := t.Year(); y > 1677 && y < 2262 {
		return t.UnixNano(), true
	}
	if t.Before(time.Unix(0, 0)) {
		return math.MinInt64, false
	}
	return math.MaxInt64, false
}

// appendEvents runs in the writer: it stores the events that are new,
// assigning positions and subject versions, and records each result.
func (tx *wtx) appendEvents(events []*herald.Event, rows []eventRow, opts herald.AppendOptions, results []herald.AppendResult) error {
	clear(results)
	var seen map[string]int // id -> index of its first occurrence in the batch
	if len(events) > 1 {
		seen = make(map[string]int, len(events))
	}
	// versions holds the next version of each subject this batch touches.
	var versions map[string]uint64
	if opts.CheckVersion {
		allDup := true
		for i, e := range events {
			if j, ok := seen[e.ID]; ok {
				results[i] = herald.AppendResult{Position: uint64(j), Duplicate: true} // fixed below
				continue
			}
			if seen != nil {
				seen[e.ID] = i
			}
			pos, found, err := tx.positionOf(e.ID)
			if err != nil {
				return err
			}
			if found {
				results[i] = herald.AppendResult{Position: pos, Duplicate: true}
				continue
			}
			allDup = false
		}
		if allDup {
			fixInBatchDuplicates(events, results, seen)
			return nil
		}
		cur, err := tx.subjectVersion(events[0].Subject)
		if err != nil {
			return err
		}
		if cur != opts.ExpectedVersion {
			return fmt.Errorf("%w: subject %q is at version %d, not %d", herald.ErrConflict, events[0].Subject, cur, opts.ExpectedVersion)
		}
		clear(results)
		clear(seen)
	}
	if len(events) > 1 {
		done, err := tx.appendRows(events, rows, results, seen)
		if err != nil || done {
			return err
		}
		// An event of the batch is stored already: go row by row.
		clear(results)
		clear(seen)
	}
	for i, e := range events {
		if seen != nil {
			if j, ok := seen[e.ID]; ok {
				results[i] = herald.AppendResult{Position: results[j].Position, Duplicate: true}
				continue
			}
			seen[e.ID] = i
		}
		if tx.w.pruned {
			pos, found, err := tx.prunedPosition(e.ID)
			if err != nil {
				return err
			}
			if found {
				results[i] = herald.AppendResult{Position: pos, Duplicate: true}
				continue
			}
		}
		r := rows[i]
		var subjectVersion any
		var next uint64
		if e.Subject != "" {
			if versions == nil {
				versions = make(map[string]uint64)
			}
			v, ok := versions[e.Subject]
			if !ok {
				cur, err := tx.subjectVersion(e.Subject)
				if err != nil {
					return err
				}
				v = cur + 1
			}
			next = v
			subjectVersion = int64(v)
		}
		res, err := tx.st.insertEvent.ExecContext(tx.ctx,
			int64(tx.next), e.ID, e.Name, r.ts, e.CorrelationID, e.SourcePlugin, r.subject, subjectVersion, r.body)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			pos, _, err := tx.positionOf(e.ID)
			if err != nil {
				return err
			}
			results[i] = herald.AppendResult{Position: pos, Duplicate: true}
			continue
		}
		results[i] = herald.AppendResult{Position: tx.next}
		tx.next++
		if e.Subject != "" {
			versions[e.Subject] = next + 1
		}
	}
	return nil
}

// insertChunk is how many events one INSERT statement writes at most.
const insertChunk = 64

// appendRows is appendEvents for a batch believed new: it inserts the
// events insertChunk rows per statement. When one turns out to be stored
// already, it removes what it inserted, puts the next position back and
// reports done=false, and the batch is written again row by row.
func (tx *wtx) appendRows(events []*herald.Event, rows []eventRow, results []herald.AppendResult, seen map[string]int) (done bool, err error) {
	start := tx.next
	var versions map[string]uint64
	args := make([]any, 0, insertChunk*9)
	n := 0
	flush := func() (bool, error) {
		if n == 0 {
			return true, nil
		}
		stmt, err := tx.st.insertN(tx.ctx, tx.conn, n)
		if err != nil {
			return false, err
		}
		res, err := stmt.ExecContext(tx.ctx, args...)
		if err != nil {
			return false, err
		}
		affected, err := res.RowsAffected()
		if err != nil || affected != int64(n) {
			return false, err
		}
		args, n = args[:0], 0
		return true, nil
	}
	for i, e := range events {
		if j, ok := seen[e.ID]; ok {
			results[i] = herald.AppendResult{Position: results[j].Position, Duplicate: true}
			continue
		}
		seen[e.ID] = i
		if tx.w.pruned {
			pos, found, err := tx.prunedPosition(e.ID)
			if err != nil {
				return false, err
			}
			if found {
				results[i] = herald.AppendResult{Position: pos, Duplicate: true}
				continue
			}
		}
		r := rows[i]
		var subjectVersion any
		if e.Subject != "" {
			if versions == nil {
				versions = make(map[string]uint64)
			}
			v, ok := versions[e.Subject]
			if !ok {
				cur, err := tx.subjectVersion(e.Subject)
				if err != nil {
					return false, err
				}
				v = cur + 1
			}
			versions[e.Subject] = v + 1
			subjectVersion = int64(v)
		}
		args = append(args, int64(tx.next), e.ID, e.Name, r.ts, e.CorrelationID, e.SourcePlugin, r.subject, subjectVersion, r.body)
		results[i] = herald.AppendResult{Position: tx.next}
		tx.next++
		n++
		if n == insertChunk {
			ok, err := flush()
			if err != nil {
				return false, err
			}
			if !ok {
				return false, tx.undoRows(start)
			}
		}
	}
	ok, err := flush()
	if err != nil {
		return false, err
	}
	if !ok {
		return false, tx.undoRows(start)
	}
	return true, nil
}

// undoRows deletes the events inserted from position start on and puts
// the next position back to start.
func (tx *wtx) undoRows(start uint64) error {
	_, err := tx.st.deleteFrom.ExecContext(tx.ctx, int64(start))
	tx.next = start
	return err
}

// fixInBatchDuplicates turns the index placeholders of in-batch duplicates
// into the position of their first occurrence.
func fixInBatchDuplicates(events []*herald.Event, results []herald.AppendResult, seen map[string]int) {
	for i, e := range events {
		if j := seen[e.ID]; j != i {
			results[i] = herald.AppendResult{Position: results[j].Position, Duplicate: true}
		}
	}
}

// positionOf returns the position of the stored event id, and
// found=false for an id not stored.
func (tx *wtx) positionOf(id string) (uint64, bool, error) {
	return queryPosition(tx, tx.st.positionByID, id)
}

// prunedPosition returns the first position of an event retention
// deleted, and found=false for an id never pruned.
func (tx *wtx) prunedPosition(id string) (uint64, bool, error) {
	return queryPosition(tx, tx.st.prunedPosition, id)
}

// queryPosition runs q, a query of one position by id.
func queryPosition(tx *wtx, q *sql.Stmt, id string) (uint64, bool, error) {
	var pos int64
	err := q.QueryRowContext(tx.ctx, id).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return uint64(pos), true, nil
}

func (tx *wtx) subjectVersion(subject string) (uint64, error) {
	var v int64
	err := tx.st.subjectVersion.QueryRowContext(tx.ctx, subject).Scan(&v)
	return uint64(v), err
}

// Get returns the event with the given id, or an error wrapping
// herald.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*herald.Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	e, err := scanEvent(s.reads.getEvent.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: event %q", herald.ErrNotFound, id)
	}
	if err != nil {
		return nil, s.fail(ctx, "get", err)
	}
	return e, nil
}

// SubjectVersion returns the number of events ever stored for subject.
func (s *Store) SubjectVersion(ctx context.Context, subject string) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var v int64
	if err := s.reads.subjectVersion.QueryRowContext(ctx, subject).Scan(&v); err != nil {
		return 0, s.fail(ctx, "subject version", err)
	}
	return uint64(v), nil
}

type scanner interface{ Scan(dest ...any) error }

func scanEvent(row scanner) (*herald.Event, error) {
	var pos int64
	var body []byte
	if err := row.Scan(&pos, &body); err != nil {
		return nil, err
	}
	return decodeEvent(pos, body)
}

// decodeEvent decodes a body read from the store, which it takes over.
func decodeEvent(pos int64, body []byte) (*herald.Event, error) {
	e, err := decodeBody(uint64(pos), body)
	if err != nil {
		return nil, damaged(pos)
	}
	return e, nil
}

func damaged(pos int64) error {
	return &opError{op: "read", reason: fmt.Sprintf("the stored event at position %d is damaged", pos),
		sentinel: herald.ErrIncompatibleStore, damaged: true}
}

// damagedEvent is the error of a read that met, at pos, an event whose
// body does not decode: a herald.DamagedEventError whose stand-in holds
// what the row's other columns still tell.
func (s *Store) damagedEvent(ctx context.Context, pos int64) error {
	de := &herald.DamagedEventError{Position: uint64(pos), Err: damaged(pos)}
	e := &herald.Event{Position: uint64(pos)}
	var ts int64
	var subject sql.NullString
	err := s.rdb.QueryRowContext(ctx, `SELECT id, name, ts, correlation_id, source_plugin, subject FROM events WHERE position = ?`, pos).
		Scan(&e.ID, &e.Name, &ts, &e.CorrelationID, &e.SourcePlugin, &subject)
	if err == nil {
		e.Timestamp, e.Subject = time.Unix(0, ts).UTC(), subject.String
		de.Event = e
	}
	return de
}

// Read yields the events after `after` matching f, in position order,
// querying pageSize rows at a time; see herald.EventLog.
func (s *Store) Read(ctx context.Context, after uint64, f herald.Filter) iter.Seq2[*herald.Event, error] {
	return func(yield func(*herald.Event, error) bool) {
		q, args, exact := buildRead(f)
		// The cursor: the last position read, and with a subject filter the
		// last subject version read, which the subject index pages by.
		var cur cursor
		yielded := 0
		for {
			if err := s.checkOpen(); err != nil {
				yield(nil, err)
				return
			}
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			limit := pageSize
			if exact && f.Limit > 0 && f.Limit-yielded < limit {
				limit = f.Limit - yielded
			}
			var page []*herald.Event
			var more bool
			var err error
			page, cur, more, err = s.readPage(ctx, q, f.Subject != "", after, cur, args, limit)
			// On a damaged event, page holds the events before it.
			for _, e := range page {
				if !exact && !f.Match(e) {
					continue
				}
				if !yield(e, nil) {
					return
				}
				yielded++
				if f.Limit > 0 && yielded >= f.Limit {
					return
				}
			}
			if err != nil {
				yield(nil, s.fail(ctx, "read", err))
				return
			}
			if len(page) < limit && !more {
				return
			}
		}
	}
}

// cursor is where a paged read stands.
type cursor struct {
	pos     uint64 // last position read
	version int64  // last subject version read, for subject reads
}

// readPage runs one page of a read query built by buildRead. A subject
// read pages by subject version (which follows position order within a
// subject) so that its index serves the order; other reads page by
// position. A page stops early, with more set, once its bodies reach
// pageBytes.
func (s *Store) readPage(ctx context.Context, q string, bySubject bool, after uint64, cur cursor, args []any, limit int) (page []*herald.Event, _ cursor, more bool, _ error) {
	all := make([]any, 0, len(args)+3)
	if bySubject {
		all = append(all, cur.version, int64(after))
	} else {
		all = append(all, int64(max(after, cur.pos)))
	}
	all = append(all, args...)
	all = append(all, limit)
	rows, err := s.rdb.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, cur, false, err
	}
	defer rows.Close()
	page = make([]*herald.Event, 0, min(limit, 64))
	size := 0
	var alloc slab
	var pos int64
	var body sql.RawBytes // valid until the next row: copied into alloc
	dest := []any{&pos, &body}
	if bySubject {
		dest = append(dest, &cur.version)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, cur, false, err
		}
		e := alloc.event()
		if err := decodeInto(e, uint64(pos), alloc.copy(body)); err != nil {
			// Free the connection first: the stand-in is read with one.
			rows.Close()
			return page, cur, false, s.damagedEvent(ctx, pos)
		}
		cur.pos = e.Position
		page = append(page, e)
		if size += len(body); size >= pageBytes && len(page) < limit {
			return page, cur, true, rows.Err()
		}
	}
	return page, cur, false, rows.Err()
}

// buildRead turns a filter into a query whose first arguments are the
// cursor (see readPage) and whose last is the page size. exact reports
// whether the query alone decides every field (else rows are also checked
// with Filter.Match).
func buildRead(f herald.Filter) (q string, args []any, exact bool) {
	var b strings.Builder
	if f.Subject != "" {
		b.WriteString("SELECT " + eventColumns + ", subject_version FROM events WHERE subject_version > ? AND position > ?")
	} else {
		b.WriteString("SELECT " + eventColumns + " FROM events WHERE position > ?")
	}
	exact = true
	if f.Name != "" && f.Name != ">" {
		if herald.IsLiteralPattern(f.Name) {
			b.WriteString(" AND name = ?")
			args = append(args, f.Name)
		} else {
			exact = false
			// The literal segments before the first wildcard bound the
			// names by range: "a.b.>" and "a.b.*" fall in ["a.b.", "a.b/").
			var lit []string
			for seg := range strings.SplitSeq(f.Name, ".") {
				if seg == "*" || seg == ">" {
					break
				}
				lit = append(lit, seg)
			}
			if len(lit) > 0 {
				prefix := strings.Join(lit, ".")
				b.WriteString(" AND name >= ? AND name < ?")
				args = append(args, prefix+".", prefix+"/")
			}
		}
	}
	if f.CorrelationID != "" {
		b.WriteString(" AND correlation_id = ?")
		args = append(args, f.CorrelationID)
	}
	if f.Subject != "" {
		b.WriteString(" AND subject = ?")
		args = append(args, f.Subject)
	}
	if f.SourcePlugin != "" {
		b.WriteString(" AND source_plugin = ?")
		args = append(args, f.SourcePlugin)
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if !f.Since.IsZero() {
			ns, inRange := encodeTS(f.Since)
			if !inRange {
				exact = false
			}
			b.WriteString(" AND ts >= ?")
			args = append(args, ns)
		}
		if !f.Until.IsZero() {
			ns, inRange := encodeTS(f.Until)
			if !inRange {
				exact = false
				b.WriteString(" AND ts <= ?")
			} else {
				b.WriteString(" AND ts < ?")
			}
			args = append(args, ns)
		}
	}
	if f.Subject != "" {
		b.WriteString(" ORDER BY subject_version LIMIT ?")
	} else {
		b.WriteString(" ORDER BY position LIMIT ?")
	}
	return b.String(), args, exact
}
