package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/heraldhq/herald"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite primary result codes the store tells apart.
const (
	codePerm     = sqlite3.SQLITE_PERM
	codeBusy     = sqlite3.SQLITE_BUSY
	codeReadOnly = sqlite3.SQLITE_READONLY
	codeIOErr    = sqlite3.SQLITE_IOERR
	codeCorrupt  = sqlite3.SQLITE_CORRUPT
	codeFull     = sqlite3.SQLITE_FULL
	codeCantOpen = sqlite3.SQLITE_CANTOPEN
	codeNotADB   = sqlite3.SQLITE_NOTADB
	codeNoMem    = sqlite3.SQLITE_NOMEM
)

// code returns the SQLite result code carried by err (extended when the
// driver reports one), or 0.
func code(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// shortReason names the kind of SQLite failure without any SQL text.
func shortReason(err error) string {
	switch code(err) & 0xff {
	case 0:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err.Error()
		}
		return "internal error"
	case codeBusy:
		return "the database is busy"
	case codeIOErr:
		return "disk I/O error"
	case codeCorrupt, codeNotADB:
		return "the store file is damaged"
	case codeFull:
		return "the disk or the store's size limit is full"
	case codeNoMem:
		return "out of memory"
	case codeReadOnly, codePerm:
		return "the store file is read-only"
	}
	return fmt.Sprintf("database error %d", code(err)&0xff)
}

// ErrDamaged is wrapped by the errors of a store whose file is damaged,
// beside herald.ErrIncompatibleStore: Open refuses a file that fails
// SQLite's quick check, or that was emptied, replaced or rolled back (see
// Open), and an operation that meets a page SQLite reports corrupt, or an
// event whose stored form does not decode, reports it. From the first
// damage met, Ready returns an error wrapping it.
var ErrDamaged = errors.New("the store file is damaged")

// opError is what callers get for a failure inside SQLite: a sentinel when
// one applies, the operation and a short reason, never SQL.
type opError struct {
	op       string
	reason   string
	sentinel error // may be nil
	damaged  bool  // the file is damaged: it also wraps ErrDamaged
	cause    error // context errors only; never an SQLite error
}

func (e *opError) Error() string {
	if e.sentinel != nil {
		return fmt.Sprintf("%v: sqlite: %s: %s", e.sentinel, e.op, e.reason)
	}
	return fmt.Sprintf("sqlite: %s: %s", e.op, e.reason)
}

func (e *opError) Unwrap() []error {
	var errs []error
	if e.sentinel != nil {
		errs = append(errs, e.sentinel)
	}
	if e.damaged {
		errs = append(errs, ErrDamaged)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// wrap turns an error from the database into a caller-safe error, logging
// the detail. Errors that already are herald's (or context errors) pass
// through unchanged.
func wrap(log *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	var ve *herald.ValidationError
	switch {
	case errors.As(err, &oe), errors.As(err, &ve):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, herald.ErrClosed), errors.Is(err, herald.ErrConflict),
		errors.Is(err, herald.ErrNotFound), errors.Is(err, herald.ErrInvalidEvent),
		errors.Is(err, herald.ErrStoreFull):
		return err
	}
	log.Error("sqlite store operation failed", "op", op, "err", err)
	e := &opError{op: op, reason: shortReason(err)}
	switch code(err) & 0xff {
	case codeFull:
		e.sentinel = herald.ErrStoreFull
	case codeCorrupt, codeNotADB:
		e.sentinel, e.damaged = herald.ErrIncompatibleStore, true
	}
	return e
}

// fail is wrap for a call made with ctx: when ctx has ended, its error is
// the one that matters (SQLite reports an interrupted statement).
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if s.closed.Load() {
		return herald.ErrClosed
	}
	err = wrap(s.log, op, err)
	if errors.Is(err, ErrDamaged) {
		s.noteDamage(err)
	}
	return err
}
