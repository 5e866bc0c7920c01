package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// writeStmts are the writer connection's prepared statements.
type writeStmts struct {
	begin, commit, rollback         *sql.Stmt
	savepoint, rollbackTo, release  *sql.Stmt
	insertEvent, positionByID       *sql.Stmt
	prunedPosition, anyPruned       *sql.Stmt
	deleteFrom                      *sql.Stmt
	subjectVersion                  *sql.Stmt
	upsertDeadLetter                *sql.Stmt
	deleteDeadLetter                *sql.Stmt
	setCheckpoint, deleteCheckpoint *sql.Stmt
	putValue, deleteValue           *sql.Stmt
	createValue, updateValue        *sql.Stmt
	nextRevision                    *sql.Stmt
	all                             []*sql.Stmt
	// insertRows and upsertOutcomes hold the statements writing n rows at
	// once, by n, prepared when first needed.
	insertRows, upsertOutcomes map[int]*sql.Stmt
}

const (
	// eventColumns are the columns an event is read from.
	eventColumns = `position, body`
	// insertColumns are the columns an event is written to.
	insertColumns     = `position, id, name, ts, correlation_id, source_plugin, subject, subject_version, body`
	subjectVersionSQL = `SELECT max(coalesce((SELECT max(subject_version) FROM events WHERE subject = ?1), 0),
		coalesce((SELECT version FROM subject_floor WHERE subject = ?1), 0))`
)

func prepareWriteStmts(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	st := &writeStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.begin, "BEGIN IMMEDIATE"},
		{&st.commit, "COMMIT"},
		{&st.rollback, "ROLLBACK"},
		{&st.savepoint, "SAVEPOINT req"},
		{&st.rollbackTo, "ROLLBACK TO req"},
		{&st.release, "RELEASE req"},
		{&st.insertEvent, `INSERT INTO events (` + insertColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&st.positionByID, `SELECT position FROM events WHERE id = ?1
			UNION ALL SELECT position FROM pruned_ids WHERE id = ?1 LIMIT 1`},
		{&st.prunedPosition, `SELECT position FROM pruned_ids WHERE id = ?`},
		{&st.anyPruned, `SELECT EXISTS (SELECT 1 FROM pruned_ids)`},
		{&st.deleteFrom, `DELETE FROM events WHERE position >= ?`},
		{&st.subjectVersion, subjectVersionSQL},
		// REPLACE gives a replaced entry a new seq, as if it were new.
		{&st.upsertDeadLetter, `INSERT OR REPLACE INTO dead_letters (id, subscription, event_id, event, errors,
			permanent, dead_at, redrive) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.deleteDeadLetter, `DELETE FROM dead_letters WHERE id = ?`},
		{&st.setCheckpoint, `INSERT INTO checkpoints (subscription, position) VALUES (?, ?)
			ON CONFLICT (subscription) DO UPDATE SET position = excluded.position`},
		{&st.deleteCheckpoint, `DELETE FROM checkpoints WHERE subscription = ?`},
		{&st.nextRevision, `UPDATE meta SET value = value + 1 WHERE key = 'kv_revision' RETURNING value`},
		{&st.putValue, `INSERT INTO kv (bucket, key, value, rev) VALUES (?, ?, ?, ?)
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, rev = excluded.rev`},
		{&st.createValue, `INSERT INTO kv (bucket, key, value, rev) VALUES (?, ?, ?, ?)
			ON CONFLICT (bucket, key) DO NOTHING`},
		{&st.updateValue, `UPDATE kv SET value = ?3, rev = ?4 WHERE bucket = ?1 AND key = ?2 AND rev = ?5`},
		{&st.deleteValue, `DELETE FROM kv WHERE bucket = ? AND key = ?`},
	} {
		s, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		*p.dst = s
		st.all = append(st.all, s)
	}
	return st, nil
}

func (st *writeStmts) close() {
	for _, s := range st.all {
		s.Close()
	}
}

// insertN returns the statement inserting n events (n ≤ insertChunk),
// preparing it on conn when first needed.
func (st *writeStmts) insertN(ctx context.Context, conn *sql.Conn, n int) (*sql.Stmt, error) {
	return st.prepared(ctx, conn, &st.insertRows, n, func() string {
		return `INSERT INTO events (` + insertColumns + `) VALUES ` +
			repeatJoin("(?, ?, ?, ?, ?, ?, ?, ?, ?)", n) + ` ON CONFLICT (id) DO NOTHING`
	})
}

// upsertOutcomesN returns the statement recording n outcomes (n ≤
// outcomeChunk), preparing it on conn when first needed. An outcome's
// position is its event's when the event is stored, else the one given.
func (st *writeStmts) upsertOutcomesN(ctx context.Context, conn *sql.Conn, n int) (*sql.Stmt, error) {
	return st.prepared(ctx, conn, &st.upsertOutcomes, n, func() string {
		return `INSERT INTO outcomes (subscription, event_id, event_name, position, correlation_id,
			status, attempts, last_error, duration, updated_at, redriven, history) VALUES ` +
			repeatJoin("(?, ?, ?, coalesce((SELECT position FROM events WHERE id = ?), ?), ?, ?, ?, ?, ?, ?, ?, ?)", n) + `
			ON CONFLICT (subscription, event_id) DO UPDATE SET event_name = excluded.event_name,
			position = excluded.position, correlation_id = excluded.correlation_id, status = excluded.status,
			attempts = excluded.attempts, last_error = excluded.last_error, duration = excluded.duration,
			updated_at = excluded.updated_at, redriven = excluded.redriven, history = excluded.history`
	})
}

// prepared returns (*cache)[n], preparing the statement build gives on
// conn when first needed.
func (st *writeStmts) prepared(ctx context.Context, conn *sql.Conn, cache *map[int]*sql.Stmt, n int, build func() string) (*sql.Stmt, error) {
	if s, ok := (*cache)[n]; ok {
		return s, nil
	}
	s, err := conn.PrepareContext(ctx, build())
	if err != nil {
		return nil, err
	}
	if *cache == nil {
		*cache = make(map[int]*sql.Stmt)
	}
	(*cache)[n] = s
	st.all = append(st.all, s)
	return s, nil
}

// repeatJoin returns n copies of s joined by commas.
func repeatJoin(s string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

// readStmts are statements the read pool prepares on each connection as
// it is used.
type readStmts struct {
	getEvent, subjectVersion *sql.Stmt
	checkpoint, checkpoints  *sql.Stmt
	getValue, listValues     *sql.Stmt
	all                      []*sql.Stmt
}

func newReadStmts(db *sql.DB) (*readStmts, error) {
	rs := &readStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&rs.getEvent, `SELECT ` + eventColumns + ` FROM events WHERE id = ?`},
		{&rs.subjectVersion, subjectVersionSQL},
		{&rs.checkpoint, `SELECT position FROM checkpoints WHERE subscription = ?`},
		{&rs.checkpoints, `SELECT subscription, position FROM checkpoints`},
		{&rs.getValue, `SELECT value, rev FROM kv WHERE bucket = ? AND key = ?`},
		{&rs.listValues, `SELECT key, value FROM kv WHERE bucket = ?`},
	} {
		s, err := db.Prepare(p.sql)
		if err != nil {
			rs.close()
			return nil, err
		}
		*p.dst = s
		rs.all = append(rs.all, s)
	}
	return rs, nil
}

func (rs *readStmts) close() {
	for _, s := range rs.all {
		s.Close()
	}
}
