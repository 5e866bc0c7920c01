package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// Checkpoint returns sub's checkpoint; ok is false when sub never committed.
func (s *Store) Checkpoint(ctx context.Context, sub string) (uint64, bool, error) {
	if err := s.checkOpen(); err != nil {
		return 0, false, err
	}
	var pos int64
	err := s.reads.checkpoint.QueryRowContext(ctx, sub).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.fail(ctx, "checkpoint", err)
	}
	return uint64(pos), true, nil
}

// Checkpoints returns every durable subscription's checkpoint.
func (s *Store) Checkpoints(ctx context.Context) (map[string]uint64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.reads.checkpoints.QueryContext(ctx)
	return scanByName[uint64](ctx, s, "checkpoints", rows, err)
}

// scanByName reads the (subscription, integer) rows of a query (run with
// error qerr) into a map, and closes them; what names the query in errors.
func scanByName[V int | uint64](ctx context.Context, s *Store, what string, rows *sql.Rows, qerr error) (map[string]V, error) {
	if qerr != nil {
		return nil, s.fail(ctx, what, qerr)
	}
	defer rows.Close()
	m := make(map[string]V)
	for rows.Next() {
		var sub string
		var n int64
		if err := rows.Scan(&sub, &n); err != nil {
			return nil, s.fail(ctx, what, err)
		}
		m[sub] = V(n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, what, err)
	}
	return m, nil
}

// Commit records p for sub in one transaction, batched by the writer with
// concurrent appends: outcomes, dead letters, resolved dead letters, then
// the checkpoint.
func (s *Store) Commit(ctx context.Context, sub string, p herald.Progress) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if sub == "" {
		return fmt.Errorf("%w: empty subscription name", herald.ErrInvalidEvent)
	}
	type dlRow struct {
		id, eventID   string
		event, errors []byte
		permanent     bool
		deadAt        string
		redrive       bool
	}
	dls := make([]dlRow, len(p.DeadLetters))
	for i, d := range p.DeadLetters {
		if d.Event == nil {
			return fmt.Errorf("%w: dead letter %d has no event", herald.ErrInvalidEvent, i)
		}
		ev, err := json.Marshal(d.Event)
		if err != nil {
			return fmt.Errorf("%w: dead letter %d: %v", herald.ErrInvalidEvent, i, err)
		}
		errs := d.Errors
		if errs == nil {
			errs = []herald.AttemptError{}
		}
		eb, err := json.Marshal(errs)
		if err != nil {
			return fmt.Errorf("%w: dead letter %d: %v", herald.ErrInvalidEvent, i, err)
		}
		id := d.ID
		if id == "" {
			id = herald.DeadLetterID(sub, d.Event.ID)
		}
		dls[i] = dlRow{id: id, eventID: d.Event.ID, event: ev, errors: eb, permanent: d.Permanent,
			deadAt: formatTime(d.DeadAt), redrive: d.Redrive}
	}
	err := s.do(ctx, func(tx *wtx) error {
		if err := tx.upsertOutcomes(sub, p.Outcomes); err != nil {
			return err
		}
		for _, d := range dls {
			if _, err := tx.st.upsertDeadLetter.ExecContext(tx.ctx, d.id, sub, d.eventID, d.event, d.errors,
				d.permanent, d.deadAt, d.redrive); err != nil {
				return err
			}
		}
		for _, id := range p.Resolved {
			if _, err := tx.st.deleteDeadLetter.ExecContext(tx.ctx, id); err != nil {
				return err
			}
		}
		if err := tx.addCounts(sub, p.Counts); err != nil {
			return err
		}
		_, err := tx.st.setCheckpoint.ExecContext(tx.ctx, sub, int64(p.Checkpoint))
		return err
	})
	return s.fail(ctx, "commit", err)
}

// outcomeChunk is how many outcomes one statement records at most.
const outcomeChunk = 32

// upsertOutcomes records outcomes of sub, outcomeChunk per statement.
func (tx *wtx) upsertOutcomes(sub string, outcomes []herald.Outcome) error {
	args := make([]any, 0, 13*min(len(outcomes), outcomeChunk))
	for len(outcomes) > 0 {
		chunk := outcomes[:min(len(outcomes), outcomeChunk)]
		outcomes = outcomes[len(chunk):]
		stmt, err := tx.st.upsertOutcomesN(tx.ctx, tx.conn, len(chunk))
		if err != nil {
			return err
		}
		args = args[:0]
		for _, o := range chunk {
			var history []byte // NULL when no attempt failed
			if len(o.History) > 0 {
				if history, err = json.Marshal(o.History); err != nil {
					return fmt.Errorf("%w: outcome of %s: %v", herald.ErrInvalidEvent, o.EventID, err)
				}
			}
			args = append(args, sub, o.EventID, o.EventName, o.EventID, int64(o.Position), o.CorrelationID,
				string(o.Status), o.Attempts, o.LastError, int64(o.Duration), formatTime(o.UpdatedAt), o.Redriven, history)
		}
		if _, err := stmt.ExecContext(tx.ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// DeleteSubscription removes sub's checkpoint and its outcomes and sets
// its counts back to zero; its dead letters stay.
func (s *Store) DeleteSubscription(ctx context.Context, sub string) error {
	err := s.do(ctx, func(tx *wtx) error {
		if _, err := tx.st.deleteCheckpoint.ExecContext(tx.ctx, sub); err != nil {
			return err
		}
		if _, err := tx.conn.ExecContext(tx.ctx, `DELETE FROM outcomes WHERE subscription = ?`, sub); err != nil {
			return err
		}
		return tx.deleteCounts(sub)
	})
	return s.fail(ctx, "delete subscription", err)
}

// timeLayout is RFC 3339 with a fixed-width fraction, so that stored times
// sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Outcomes returns the outcomes matching q, by event position and then
// subscription name.
func (s *Store) Outcomes(ctx context.Context, q herald.OutcomeQuery) ([]herald.Outcome, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if q.EventID == "" && q.CorrelationID == "" && q.Subscription == "" {
		return nil, fmt.Errorf("%w: an outcome query needs an event id, a correlation id or a subscription", herald.ErrInvalidEvent)
	}
	var where []string
	var args []any
	if q.EventID != "" {
		where = append(where, "event_id = ?")
		args = append(args, q.EventID)
	}
	if q.CorrelationID != "" {
		where = append(where, "correlation_id = ?")
		args = append(args, q.CorrelationID)
	}
	if q.Subscription != "" {
		where = append(where, "subscription = ?")
		args = append(args, q.Subscription)
	}
	limit := herald.OutcomeLimit(q.Limit)
	query := `SELECT subscription, event_id, event_name, position, correlation_id, status, attempts,
		last_error, duration, updated_at, redriven, history FROM outcomes`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY position, subscription LIMIT ?"
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, "outcomes", err)
	}
	defer rows.Close()
	out := []herald.Outcome{}
	for rows.Next() {
		var o herald.Outcome
		var pos, dur int64
		var status, updated string
		var history []byte
		if err := rows.Scan(&o.Subscription, &o.EventID, &o.EventName, &pos, &o.CorrelationID, &status,
			&o.Attempts, &o.LastError, &dur, &updated, &o.Redriven, &history); err != nil {
			return nil, s.fail(ctx, "outcomes", err)
		}
		if history != nil {
			if err := json.Unmarshal(history, &o.History); err != nil {
				return nil, s.fail(ctx, "outcomes", fmt.Errorf("damaged history of outcome %s/%s: %w", o.Subscription, o.EventID, err))
			}
		}
		o.Position = uint64(pos)
		o.Status = herald.OutcomeStatus(status)
		o.Duration = herald.Duration(dur)
		o.UpdatedAt = parseTime(updated)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "outcomes", err)
	}
	return out, nil
}

// deadLetterWhere turns q into a WHERE clause (possibly empty) and its
// arguments.
func deadLetterWhere(q herald.DeadLetterQuery) (string, []any) {
	var where []string
	var args []any
	if q.Subscription != "" {
		where = append(where, "subscription = ?")
		args = append(args, q.Subscription)
	}
	if len(q.IDs) > 0 {
		ids, _ := json.Marshal(q.IDs) // strings always encode
		where = append(where, "id IN (SELECT value FROM json_each(?))")
		args = append(args, string(ids))
	}
	if q.EventID != "" {
		where = append(where, "event_id = ?")
		args = append(args, q.EventID)
	}
	if q.OnlyRedrive {
		where = append(where, "redrive = 1")
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// DeadLetters returns the dead letters matching q, oldest first.
func (s *Store) DeadLetters(ctx context.Context, q herald.DeadLetterQuery) ([]herald.DeadLetter, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	where, args := deadLetterWhere(q)
	query := "SELECT id, subscription, event, errors, permanent, dead_at, redrive FROM dead_letters" + where +
		" ORDER BY dead_at, seq"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, "dead letters", err)
	}
	defer rows.Close()
	out := []herald.DeadLetter{}
	for rows.Next() {
		var d herald.DeadLetter
		var ev, errs []byte
		var deadAt string
		if err := rows.Scan(&d.ID, &d.Subscription, &ev, &errs, &d.Permanent, &deadAt, &d.Redrive); err != nil {
			return nil, s.fail(ctx, "dead letters", err)
		}
		d.Event = new(herald.Event)
		if err := json.Unmarshal(ev, d.Event); err != nil {
			return nil, s.fail(ctx, "dead letters", fmt.Errorf("damaged dead letter %s: %w", d.ID, err))
		}
		if err := json.Unmarshal(errs, &d.Errors); err != nil {
			return nil, s.fail(ctx, "dead letters", fmt.Errorf("damaged dead letter %s: %w", d.ID, err))
		}
		d.DeadAt = parseTime(deadAt)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "dead letters", err)
	}
	return out, nil
}

// DeadLetterCounts implements herald.SubscriptionState: one pass over
// the index of dead letters by subscription.
func (s *Store) DeadLetterCounts(ctx context.Context) (map[string]int, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, "SELECT subscription, COUNT(*) FROM dead_letters GROUP BY subscription")
	return scanByName[int](ctx, s, "counting dead letters", rows, err)
}

// RedriveDeadLetters marks the dead letters matching q for redrive.
func (s *Store) RedriveDeadLetters(ctx context.Context, q herald.DeadLetterQuery) (int, error) {
	where, args := deadLetterWhere(q)
	var n int64
	err := s.do(ctx, func(tx *wtx) error {
		res, err := tx.conn.ExecContext(tx.ctx, "UPDATE dead_letters SET redrive = 1"+where, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail(ctx, "redrive", err)
	}
	return int(n), nil
}

// DeleteDeadLetters discards the dead letters matching q.
func (s *Store) DeleteDeadLetters(ctx context.Context, q herald.DeadLetterQuery) (int, error) {
	where, args := deadLetterWhere(q)
	var n int64
	err := s.do(ctx, func(tx *wtx) error {
		res, err := tx.conn.ExecContext(tx.ctx, "DELETE FROM dead_letters"+where, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail(ctx, "delete dead letters", err)
	}
	return int(n), nil
}

// PutValue stores value under bucket/key.
func (s *Store) PutValue(ctx context.Context, bucket, key string, value []byte) error {
	_, err := s.writeValue(ctx, "put value", bucket, key, value, false, func(tx *wtx, value []byte, rev int64) error {
		_, err := tx.st.putValue.ExecContext(tx.ctx, bucket, key, value, rev)
		return err
	})
	return err
}

// CreateValue stores value under bucket/key when the key is absent, and
// returns its revision; when the key exists the error wraps
// herald.ErrConflict.
func (s *Store) CreateValue(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	return s.writeValue(ctx, "create value", bucket, key, value, true, func(tx *wtx, value []byte, rev int64) error {
		res, err := tx.st.createValue.ExecContext(tx.ctx, bucket, key, value, rev)
		return changedOne(res, err, "%w: kv %s/%s exists", herald.ErrConflict, bucket, key)
	})
}

// UpdateValue replaces the value under bucket/key while the key is at
// revision rev, and returns the new revision; otherwise the error wraps
// herald.ErrConflict.
func (s *Store) UpdateValue(ctx context.Context, bucket, key string, value []byte, rev uint64) (uint64, error) {
	return s.writeValue(ctx, "update value", bucket, key, value, true, func(tx *wtx, value []byte, next int64) error {
		res, err := tx.st.updateValue.ExecContext(tx.ctx, bucket, key, value, next, int64(rev))
		return changedOne(res, err, "%w: kv %s/%s is not at revision %d", herald.ErrConflict, bucket, key, rev)
	})
}

// changedOne returns err, or the error format and args describe when res
// changed no row.
func changedOne(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf(format, args...)
	}
	return nil
}

// writeValue runs write in the writer with the key's next revision and
// returns that revision.
func (s *Store) writeValue(ctx context.Context, op, bucket, key string, value []byte, mayFail bool,
	write func(tx *wtx, value []byte, rev int64) error) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return 0, err
	}
	if value == nil {
		value = []byte{}
	}
	var rev int64
	fn := func(tx *wtx) error {
		if err := tx.st.nextRevision.QueryRowContext(tx.ctx).Scan(&rev); err != nil {
			return err
		}
		return write(tx, value, rev)
	}
	var err error
	if mayFail {
		err = s.doMayFail(ctx, fn)
	} else {
		err = s.do(ctx, fn)
	}
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return uint64(rev), nil
}

// GetValue returns the value under bucket/key, or an error wrapping
// herald.ErrNotFound.
func (s *Store) GetValue(ctx context.Context, bucket, key string) ([]byte, error) {
	e, err := s.GetEntry(ctx, bucket, key)
	return e.Value, err
}

// GetEntry returns the value under bucket/key with its revision, or an
// error wrapping herald.ErrNotFound.
func (s *Store) GetEntry(ctx context.Context, bucket, key string) (herald.KVEntry, error) {
	if err := s.checkOpen(); err != nil {
		return herald.KVEntry{}, err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return herald.KVEntry{}, err
	}
	var e herald.KVEntry
	var rev int64
	err := s.reads.getValue.QueryRowContext(ctx, bucket, key).Scan(&e.Value, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.KVEntry{}, fmt.Errorf("%w: %s/%s", herald.ErrNotFound, bucket, key)
	}
	if err != nil {
		return herald.KVEntry{}, s.fail(ctx, "get value", err)
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	e.Revision = uint64(rev)
	return e, nil
}

// DeleteValue removes bucket/key; a missing key is not an error. The value
// is erased, not only unlinked: the store overwrites deleted content
// (secure_delete), and before DeleteValue returns, the WAL is checkpointed
// into the database and truncated, so that no file of the store holds the
// value any more.
func (s *Store) DeleteValue(ctx context.Context, bucket, key string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return err
	}
	err := s.do(ctx, func(tx *wtx) error {
		res, err := tx.st.deleteValue.ExecContext(tx.ctx, bucket, key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			tx.w.wipe = true
		}
		return err
	})
	return s.fail(ctx, "delete value", err)
}

// ListValues returns every key of bucket with its value.
func (s *Store) ListValues(ctx context.Context, bucket string) (map[string][]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := herald.ValidateKVBucket(bucket); err != nil {
		return nil, err
	}
	rows, err := s.reads.listValues.QueryContext(ctx, bucket)
	if err != nil {
		return nil, s.fail(ctx, "list values", err)
	}
	defer rows.Close()
	m := make(map[string][]byte)
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.fail(ctx, "list values", err)
		}
		if v == nil {
			v = []byte{}
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "list values", err)
	}
	return m, nil
}
