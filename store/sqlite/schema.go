package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/heraldhq/herald"
)

// applicationID marks a SQLite file as a herald store ("HRLD").
const applicationID = 0x48524c44

// migrations are the schema versions, oldest first. migrations[i] takes the
// file from user_version i to i+1. Never edit one that has shipped: add a
// new one.
var migrations = []string{
	// 1: the event log, subscription state and key-value space.
	`
CREATE TABLE events (
	position        INTEGER PRIMARY KEY,
	id              TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	ts              INTEGER NOT NULL,
	correlation_id  TEXT    NOT NULL,
	source_plugin   TEXT    NOT NULL,
	subject         TEXT,
	subject_version INTEGER,
	body            BLOB    NOT NULL
);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_name ON events (name);
CREATE INDEX events_correlation ON events (correlation_id);
CREATE UNIQUE INDEX events_subject ON events (subject, subject_version) WHERE subject IS NOT NULL;
CREATE INDEX events_ts ON events (ts);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE subject_floor (
	subject TEXT PRIMARY KEY,
	version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE checkpoints (
	subscription TEXT PRIMARY KEY,
	position     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE outcomes (
	subscription   TEXT    NOT NULL,
	event_id       TEXT    NOT NULL,
	event_name     TEXT    NOT NULL,
	position       INTEGER NOT NULL,
	correlation_id TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	attempts       INTEGER NOT NULL,
	last_error     TEXT    NOT NULL,
	duration       INTEGER NOT NULL,
	updated_at     TEXT    NOT NULL,
	PRIMARY KEY (subscription, event_id)
) WITHOUT ROWID;
CREATE INDEX outcomes_event ON outcomes (event_id);
CREATE INDEX outcomes_correlation ON outcomes (correlation_id);

CREATE TABLE dead_letters (
	seq          INTEGER PRIMARY KEY,
	id           TEXT    NOT NULL UNIQUE,
	subscription TEXT    NOT NULL,
	event_id     TEXT    NOT NULL,
	event        BLOB    NOT NULL,
	errors       BLOB    NOT NULL,
	permanent    INTEGER NOT NULL,
	dead_at      TEXT    NOT NULL,
	redrive      INTEGER NOT NULL
);
CREATE INDEX dead_letters_subscription ON dead_letters (subscription);
CREATE INDEX dead_letters_event ON dead_letters (event_id);

CREATE TABLE kv (
	bucket TEXT NOT NULL,
	key    TEXT NOT NULL,
	value  BLOB NOT NULL,
	PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
`,
	// 2: the ids of events retention deleted, with their positions, so that
	// appending one again stays a duplicate.
	`
CREATE TABLE pruned_ids (
	id       TEXT    PRIMARY KEY,
	position INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 3: a revision per KV entry, for create-if-absent and compare-and-set.
	// meta's kv_revision is the last revision given; entries written before
	// share revision 1.
	`
ALTER TABLE kv ADD COLUMN rev INTEGER NOT NULL DEFAULT 1;
INSERT INTO meta (key, value) VALUES ('kv_revision', 1);
`,
	// 4: whether an outcome comes from a redrive (herald.Outcome.Redriven);
	// outcomes recorded before are not.
	`
ALTER TABLE outcomes ADD COLUMN redriven INTEGER NOT NULL DEFAULT 0;
`,
	// 5: an outcome's failed attempts (herald.Outcome.History) as a JSON
	// array, NULL when none failed; outcomes recorded before have none.
	`
ALTER TABLE outcomes ADD COLUMN history BLOB;
`,
}

// schemaVersion is the user_version this herald writes.
func schemaVersion() int { return len(migrations) }

// fileState is what inspectFile found in the database.
type fileState struct {
	fresh   bool // no herald store yet: a new or empty file
	version int  // its schema version
}

// inspectFile checks that the database behind conn is a herald store this
// herald can use (or an empty database), changing nothing.
func inspectFile(ctx context.Context, conn *sql.Conn) (fileState, error) {
	var appID, version, objects int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fileState{}, openError(err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fileState{}, openError(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return fileState{}, openError(err)
	}
	fresh := appID == 0 && version == 0 && objects == 0
	switch {
	case fresh:
	case appID != applicationID:
		return fileState{}, fmt.Errorf("%w: the file is an SQLite database but not a herald store", herald.ErrIncompatibleStore)
	case version > schemaVersion():
		return fileState{}, fmt.Errorf("%w: the file was written by a newer herald (schema version %d; this herald knows up to %d): upgrade herald",
			herald.ErrIncompatibleStore, version, schemaVersion())
	}
	return fileState{fresh: fresh, version: version}, nil
}

// prepareFile creates or migrates the schema of a file inspectFile
// accepted, and switches it to WAL.
func prepareFile(ctx context.Context, log *slog.Logger, conn *sql.Conn, st fileState) error {
	if st.fresh {
		// auto_vacuum can only be chosen before the first table exists.
		if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
			return openError(err)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return openError(err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite: cannot switch the store to WAL mode (got %q)", mode)
	}
	for v := st.version; v < schemaVersion(); v++ {
		if err := migrate(ctx, log, conn, v); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies migrations[from] and sets user_version in one transaction.
func migrate(ctx context.Context, log *slog.Logger, conn *sql.Conn, from int) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return openError(err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, migrations[from]); err != nil {
		log.Error("sqlite schema migration failed", "version", from+1, "err", err)
		return fmt.Errorf("sqlite: schema migration %d failed: %s", from+1, shortReason(err))
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return openError(err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return openError(err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return openError(err)
	}
	return nil
}

// openError turns an error met while opening into one that says what is
// wrong with the file.
func openError(err error) error {
	switch code(err) & 0xff {
	case codeNotADB, codeCorrupt:
		return fmt.Errorf("%w: %w: the file is damaged or not an SQLite database: restore it from a backup", herald.ErrIncompatibleStore, ErrDamaged)
	case codeReadOnly, codePerm, codeCantOpen:
		return errors.New("sqlite: cannot open the store file for reading and writing: check its permissions")
	}
	return fmt.Errorf("sqlite: opening the store: %s", shortReason(err))
}
