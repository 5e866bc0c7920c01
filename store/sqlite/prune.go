package sqlite

import (
	"context"
	"strconv"
	"strings"
)

// DeleteEvents implements herald.EventLog: it deletes the events at the
// given positions with their outcomes and dead letters, in one
// transaction, then gives the freed pages back to the file system. It
// records the head first
// (so positions are never reused even when the newest events go), the
// subject versions of the deleted events (so versions never go back) and
// their ids with their positions (so appending one again is a duplicate).
func (s *Store) DeleteEvents(ctx context.Context, positions []uint64) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if len(positions) == 0 {
		return 0, nil
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range positions {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(p, 10))
	}
	b.WriteByte(']')
	set := b.String()
	var n int64
	err := s.do(ctx, func(tx *wtx) error {
		stmts := []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO meta (key, value) VALUES ('head', ?)
				ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, []any{int64(tx.next - 1)}},
			{`INSERT INTO subject_floor (subject, version)
				SELECT subject, max(subject_version) FROM events
				WHERE position IN (SELECT value FROM json_each(?)) AND subject IS NOT NULL GROUP BY subject
				ON CONFLICT (subject) DO UPDATE SET version = max(version, excluded.version)`, []any{set}},
			{`INSERT OR IGNORE INTO pruned_ids (id, position)
				SELECT id, position FROM events WHERE position IN (SELECT value FROM json_each(?))`, []any{set}},
			{`DELETE FROM outcomes WHERE event_id IN
				(SELECT id FROM events WHERE position IN (SELECT value FROM json_each(?)))`, []any{set}},
			{`DELETE FROM dead_letters WHERE event_id IN
				(SELECT id FROM events WHERE position IN (SELECT value FROM json_each(?)))`, []any{set}},
		}
		for _, st := range stmts {
			if _, err := tx.conn.ExecContext(tx.ctx, st.sql, st.args...); err != nil {
				return err
			}
		}
		res, err := tx.conn.ExecContext(tx.ctx, `DELETE FROM events WHERE position IN (SELECT value FROM json_each(?))`, set)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if n > 0 {
			tx.w.pruned = true
			_, err = tx.conn.ExecContext(tx.ctx, "PRAGMA incremental_vacuum")
		}
		return err
	})
	if err != nil {
		return 0, s.fail(ctx, "prune", err)
	}
	return int(n), nil
}
