package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite"
)

func registerSQLite(r map[string]system) {
	r["durable-publish-64/sqlite-raw"] = system{run: sqliteRawPublishRun}
	r["replay-1m/sqlite-raw"] = system{prepare: sqliteRawPrepare, run: sqliteRawReplayRun}
}

const sqliteRawSchema = `
CREATE TABLE IF NOT EXISTS events (
	position       INTEGER PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	name           TEXT NOT NULL,
	timestamp      INTEGER NOT NULL,
	correlation_id TEXT NOT NULL,
	causation_id   TEXT NOT NULL DEFAULT '',
	source_plugin  TEXT NOT NULL DEFAULT '',
	subject        TEXT NOT NULL DEFAULT '',
	version        INTEGER NOT NULL DEFAULT 1,
	priority       INTEGER NOT NULL DEFAULT 0,
	metadata       TEXT NOT NULL DEFAULT '',
	data           BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_correlation ON events (correlation_id);
`

const sqliteRawInsert = `INSERT INTO events (id, name, timestamp, correlation_id, source_plugin, data) VALUES (?, ?, ?, ?, ?, ?)`

// openRawSQLite opens the raw anchor's database with the same driver and
// durability as herald's SQLite store: WAL and fsync on every commit.
func openRawSQLite(dir string) (*sql.DB, error) {
	dsn := "file:" + filepath.Join(dir, "raw.db") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(sqliteRawSchema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

type rawRow struct {
	id   string
	ts   int64
	data []byte
}

func newRawRow(seq int, payload []byte) rawRow {
	return rawRow{id: uuid.Must(uuid.NewV7()).String(), ts: time.Now().UnixNano(), data: payload}
}

// insertRows inserts rows in one transaction.
func insertRows(ctx context.Context, db *sql.DB, rows []rawRow) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, sqliteRawInsert)
	if err != nil {
		tx.Rollback()
		return err
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r.id, "bench.event", r.ts, r.id, "bench", r.data); err != nil {
			stmt.Close()
			tx.Rollback()
			return err
		}
	}
	stmt.Close()
	return tx.Commit()
}

// sqliteRawPublishRun: 64 publishers hand their rows to one writer that
// inserts whatever is waiting (up to 1,000 rows) in one transaction, one
// fsync, and then answers each publisher.
func sqliteRawPublishRun(ctx context.Context, e *env) error {
	db, err := openRawSQLite(e.dir)
	if err != nil {
		return err
	}
	defer db.Close()
	type req struct {
		row  rawRow
		done chan error
	}
	reqs := make(chan req, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		batch := make([]req, 0, 1000)
		rows := make([]rawRow, 0, 1000)
		for first := range reqs {
			batch = append(batch[:0], first)
		more:
			for len(batch) < 1000 {
				select {
				case r, ok := <-reqs:
					if !ok {
						break more
					}
					batch = append(batch, r)
				default:
					break more
				}
			}
			rows = rows[:0]
			for _, r := range batch {
				rows = append(rows, r.row)
			}
			err := insertRows(ctx, db, rows)
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		done := make(chan error, 1)
		reqs <- req{row: newRawRow(seq, payload), done: done}
		return <-done
	})
	e.meter.end(n)
	close(reqs)
	<-writerDone
	return err
}

func sqliteRawPrepare(ctx context.Context, dir string, sz size) error {
	db, err := openRawSQLite(dir)
	if err != nil {
		return err
	}
	defer db.Close()
	payload := makePayload(0, 0)
	rows := make([]rawRow, 0, 1000)
	for i := 0; i < sz.events; i += 1000 {
		rows = rows[:0]
		for j := i; j < min(i+1000, sz.events); j++ {
			rows = append(rows, newRawRow(j, payload))
		}
		if err := insertRows(ctx, db, rows); err != nil {
			return err
		}
	}
	return nil
}

// sqliteRawReplayRun reads every row back in position order into a struct
// holding the same fields as a herald event.
func sqliteRawReplayRun(ctx context.Context, e *env) error {
	db, err := openRawSQLite(e.dir)
	if err != nil {
		return err
	}
	defer db.Close()
	type row struct {
		pos                                          int64
		id, name, corr, cause, source, subject, meta string
		ts, version, prio                            int64
		data                                         []byte
	}
	e.meter.begin()
	rows, err := db.QueryContext(ctx, `SELECT position, id, name, timestamp, correlation_id, causation_id, source_plugin, subject, version, priority, metadata, data FROM events WHERE position > ? ORDER BY position`, 0)
	if err != nil {
		return err
	}
	defer rows.Close()
	var n int64
	var last int64
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.pos, &r.id, &r.name, &r.ts, &r.corr, &r.cause, &r.source, &r.subject, &r.version, &r.prio, &r.meta, &r.data); err != nil {
			return err
		}
		if r.pos <= last {
			return fmt.Errorf("position %d after %d", r.pos, last)
		}
		last = r.pos
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	e.meter.end(n)
	if n != int64(e.size.events) {
		return fmt.Errorf("read %d events, want %d", n, e.size.events)
	}
	return nil
}
