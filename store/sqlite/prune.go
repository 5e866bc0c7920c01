package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// pruneChunk is how many events one retention transaction deletes, so that
// appends queued meanwhile wait for one chunk at most.
const pruneChunk = 2000

// Prune applies retention rules as of now; see herald.Store. It deletes in
// chunks through the writer, with the outcomes and dead letters of the
// deleted events, then returns the freed pages to the file system.
func (s *Store) Prune(ctx context.Context, rules []herald.RetentionRule, now time.Time) (herald.PruneResult, error) {
	var res herald.PruneResult
	if err := s.checkOpen(); err != nil {
		return res, err
	}
	for i, r := range rules {
		if err := herald.ValidatePattern(r.Pattern); err != nil {
			return res, fmt.Errorf("sqlite: retention rule %d: %w", i, err)
		}
		if r.MaxAge < 0 || r.MaxCount < 0 {
			return res, fmt.Errorf("%w: retention rule %d: negative limit", herald.ErrInvalidEvent, i)
		}
	}
	// Each stored name goes to the first rule that matches it.
	names, err := s.distinctNames(ctx)
	if err != nil {
		return res, s.fail(ctx, "prune", err)
	}
	byRule := make([][]string, len(rules))
	for _, n := range names {
		for i, r := range rules {
			if herald.MatchName(r.Pattern, n) {
				byRule[i] = append(byRule[i], n)
				break
			}
		}
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return res, err
	}
	var minCheckpoint uint64
	hasCheckpoint := false
	for _, p := range cps {
		if !hasCheckpoint || p < minCheckpoint {
			minCheckpoint, hasCheckpoint = p, true
		}
	}
	snaps, err := s.snapshotPositions(ctx)
	if err != nil {
		return res, err
	}
	for i, r := range rules {
		if len(byRule[i]) == 0 || (r.MaxAge == 0 && r.MaxCount == 0) {
			continue
		}
		held := func(pos uint64, subject string) bool {
			if !r.Force && hasCheckpoint && minCheckpoint < pos {
				return true
			}
			if sp, ok := snaps[subject]; ok && subject != "" && pos > sp {
				return true
			}
			return false
		}
		d, h, err := s.pruneRule(ctx, r, byRule[i], now, held)
		res.Deleted += d
		res.Held += h
		if err != nil {
			return res, err
		}
	}
	if res.Deleted > 0 {
		err := s.do(ctx, func(tx *wtx) error {
			_, err := tx.conn.ExecContext(tx.ctx, "PRAGMA incremental_vacuum")
			return err
		})
		if err != nil {
			return res, s.fail(ctx, "prune: vacuum", err)
		}
	}
	return res, nil
}

func (s *Store) distinctNames(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT DISTINCT name FROM events")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// snapshotPositions reads the snapshot bucket: subject → position of the
// last event folded into its snapshot. A value that does not parse holds
// every event of its subject.
func (s *Store) snapshotPositions(ctx context.Context) (map[string]uint64, error) {
	vals, err := s.ListValues(ctx, herald.SnapshotBucket)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint64, len(vals))
	for subject, v := range vals {
		var snap struct {
			Position uint64 `json:"position"`
		}
		if err := json.Unmarshal(v, &snap); err != nil {
			s.log.Warn("retention: unreadable snapshot holds its subject", "subject", subject)
		}
		m[subject] = snap.Position
	}
	return m, nil
}

// pruneRule deletes the events named in names that rule r expires, except
// those held, and reports how many it deleted and held.
func (s *Store) pruneRule(ctx context.Context, r herald.RetentionRule, names []string, now time.Time,
	held func(pos uint64, subject string) bool) (deleted, heldN int, err error) {
	nameSet, _ := json.Marshal(names) // strings always encode
	var conds []string
	var args []any
	args = append(args, string(nameSet))
	if r.MaxAge > 0 {
		ns, _ := encodeTS(now.Add(-r.MaxAge.Std()))
		conds = append(conds, "ts < ?")
		args = append(args, ns)
	}
	if r.MaxCount > 0 {
		var threshold int64
		err := s.rdb.QueryRowContext(ctx, `SELECT position FROM events
			WHERE name IN (SELECT value FROM json_each(?)) ORDER BY position DESC LIMIT 1 OFFSET ?`,
			string(nameSet), r.MaxCount).Scan(&threshold)
		if err == nil {
			conds = append(conds, "position <= ?")
			args = append(args, threshold)
		}
		// No row: fewer than MaxCount events, nothing to delete by count.
	}
	if len(conds) == 0 {
		return 0, 0, nil
	}
	q := `SELECT position, coalesce(subject, '') FROM events
		WHERE name IN (SELECT value FROM json_each(?)) AND (` + strings.Join(conds, " OR ") + `)
		AND position > ? ORDER BY position LIMIT ?`
	var after uint64
	for {
		if err := ctx.Err(); err != nil {
			return deleted, heldN, err
		}
		page, last, n, err := s.pruneCandidates(ctx, q, args, after)
		if err != nil {
			return deleted, heldN, s.fail(ctx, "prune", err)
		}
		var doomed []uint64
		for _, c := range page {
			if held(c.pos, c.subject) {
				heldN++
				continue
			}
			doomed = append(doomed, c.pos)
		}
		if len(doomed) > 0 {
			d, err := s.deleteEvents(ctx, doomed)
			deleted += d
			if err != nil {
				return deleted, heldN, err
			}
		}
		if n < pruneChunk {
			return deleted, heldN, nil
		}
		after = last
	}
}

type candidate struct {
	pos     uint64
	subject string
}

func (s *Store) pruneCandidates(ctx context.Context, q string, args []any, after uint64) ([]candidate, uint64, int, error) {
	all := append(append([]any{}, args...), int64(after), pruneChunk)
	rows, err := s.rdb.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, 0, 0, err
	}
	defer rows.Close()
	var page []candidate
	var last uint64
	for rows.Next() {
		var c candidate
		var pos int64
		if err := rows.Scan(&pos, &c.subject); err != nil {
			return nil, 0, 0, err
		}
		c.pos = uint64(pos)
		last = c.pos
		page = append(page, c)
	}
	return page, last, len(page), rows.Err()
}

// deleteEvents deletes the events at the given positions with their
// outcomes and dead letters, in one transaction. It records the head first
// (so positions are never reused even when the newest events go), the
// subject versions of the deleted events (so versions never go back) and
// their ids with their positions (so appending one again is a duplicate).
func (s *Store) deleteEvents(ctx context.Context, positions []uint64) (int, error) {
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
		}
		return nil
	})
	if err != nil {
		return 0, s.fail(ctx, "prune", err)
	}
	return int(n), nil
}

// runRetention prunes with the configured rules every interval until ctx
// ends.
func (s *Store) runRetention(ctx context.Context) {
	defer close(s.retentionDone)
	t := time.NewTicker(s.cfg.retentionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			res, err := s.Prune(ctx, s.cfg.rules, now)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("retention run failed", "err", err)
			case err == nil && (res.Deleted > 0 || res.Held > 0):
				s.log.Info("retention run", "deleted", res.Deleted, "held", res.Held)
			}
		}
	}
}
