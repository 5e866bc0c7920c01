package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// DefaultQuickCheck is how long Open lets SQLite's quick check of the
// store file run before it gives up on it (see WithQuickCheck).
const DefaultQuickCheck = time.Minute

// Ready reports whether the store serves reads and writes: nil, ErrClosed
// after Close, and, from the first damage the store meets (a page SQLite
// reports corrupt, an event whose stored form does not decode), an error
// wrapping ErrDamaged and herald.ErrIncompatibleStore until it is closed.
// herald.Bus.Ready asks it, and so /readyz of herald serve.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if d := s.damage.Load(); d != nil {
		return *d
	}
	return nil
}

// noteDamage records the first damage met, for Ready, and logs what to do.
func (s *Store) noteDamage(err error) {
	d := fmt.Errorf("%w: %w: stop herald and restore %s from a backup", ErrDamaged, err, filepath.Base(s.path))
	if s.damage.CompareAndSwap(nil, &d) {
		s.log.Error("sqlite: the store file is damaged; the store reports itself not ready: stop herald and restore the file from a backup",
			"path", s.path, "err", err)
	}
}

// quickCheck runs SQLite's quick check of the file (the structure of
// every page and index, not the contents of rows) for at most limit. It
// returns an error wrapping ErrDamaged when the file fails; a check that
// runs out of time is logged and passes.
func quickCheck(ctx context.Context, s *Store, conn *sql.Conn, limit time.Duration) error {
	if limit <= 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	var problems []string
	rows, err := conn.QueryContext(cctx, "PRAGMA quick_check(10)")
	if err == nil {
		for rows.Next() {
			var line string
			if err = rows.Scan(&line); err != nil {
				break
			}
			if line != "ok" {
				problems = append(problems, line)
			}
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
	}
	switch {
	case len(problems) > 0:
	case err == nil:
		s.log.Debug("sqlite: quick check passed", "path", s.path, "took", time.Since(start))
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case cctx.Err() != nil:
		s.log.Warn("sqlite: the quick check of the store file did not finish in time and was skipped; raise its limit, or check the file offline with sqlite3's PRAGMA quick_check",
			"path", s.path, "limit", limit)
		return nil
	case code(err)&0xff == codeCorrupt || code(err)&0xff == codeNotADB:
		problems = append(problems, shortReason(err))
	default:
		return openError(err)
	}
	s.log.Error("sqlite: the store file failed its quick check", "path", s.path, "problems", strings.Join(problems, "; "))
	return fmt.Errorf("%w: %w: the store file %s failed SQLite's quick check (%s): stop herald and restore it from a backup, or move it aside (with its -wal file and %s) to start an empty store",
		herald.ErrIncompatibleStore, ErrDamaged, s.path, problems[0], filepath.Base(markerPath(s.path)))
}

// The marker beside the store file (path + ".id") remembers which store
// the file holds and how far its log went, so that a file emptied,
// replaced by another store, or rolled back to an older copy is refused
// instead of giving positions out again. It is written, whole or not at
// all, when the store opens and when it closes, and at most once a minute
// while it runs (writer.markHead), each time once the file is synced.
type marker struct {
	// Store is the store's identity, kept in the file's meta table too.
	Store string `json:"store"`
	// Head is the last position the store had given, as far as the
	// marker knows: at its last open or clean close, or in the last
	// minute it ran.
	Head uint64 `json:"head"`
}

func markerPath(path string) string { return path + ".id" }

// readMarker returns the marker beside the store file, or nil when there
// is none.
func readMarker(path string) (*marker, error) {
	b, err := os.ReadFile(markerPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot read the store's marker: %w", err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Store == "" {
		return nil, fmt.Errorf("%w: %w: the store's marker %s is not readable: if the store file is the right one, delete the marker and start again",
			herald.ErrIncompatibleStore, ErrDamaged, markerPath(path))
	}
	return &m, nil
}

// writeMarker replaces the marker atomically: a temporary file, synced,
// renamed over it, and the directory synced. A crash leaves the old
// marker or the new one.
func writeMarker(path string, m marker) error {
	b, _ := json.Marshal(m)
	b = append(b, '\n')
	tmp := markerPath(path) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: cannot write the store's marker: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, markerPath(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sqlite: cannot write the store's marker: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // not every system opens directories
	}
	defer d.Close()
	_ = d.Sync() // not every system syncs them
	return nil
}

// syncFiles syncs the store file and its WAL, so that what was read from
// them at open is on disk before the marker says so.
func syncFiles(path string) error {
	for _, p := range []string{path, path + "-wal"} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: cannot sync the store file: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sqlite: cannot sync the store file: %w", err)
		}
	}
	return nil
}

// refuseFresh is the error for an empty store file where the marker says
// a store was.
func refuseFresh(path string, m *marker) error {
	return fmt.Errorf("%w: %w: the store file %s is empty or new, but its marker %s says store %s had given positions through %d: the file was emptied or replaced. Restore it from a backup; to start over with an empty store on purpose, delete the marker",
		herald.ErrIncompatibleStore, ErrDamaged, path, filepath.Base(markerPath(path)), m.Store, m.Head)
}

// readIdentity returns the store's identity from its meta table, and
// false when it has none (a store written by an earlier herald).
func readIdentity(ctx context.Context, conn *sql.Conn) (string, bool, error) {
	var id int64
	err := conn.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'store_id'`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, openError(err)
	}
	return fmt.Sprintf("%016x", id), true, nil
}

// newIdentity gives the store a random identity and returns it.
func newIdentity(ctx context.Context, conn *sql.Conn) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := int64(binary.BigEndian.Uint64(b[:])>>1) | 1 // positive, never 0
	if _, err := conn.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('store_id', ?)`, id); err != nil {
		return "", openError(err)
	}
	return fmt.Sprintf("%016x", id), nil
}

// checkMarker compares the store file with its marker (m, nil when
// there is none): a file that holds another store, or whose log stops
// before the marker's head, is refused.
func checkMarker(path string, m *marker, id string, head uint64) error {
	switch {
	case m == nil:
		return nil
	case id == "":
		return fmt.Errorf("%w: %w: the store file %s has no identity, but its marker %s names store %s: the file was replaced by one an earlier herald wrote. Put the right file back; to keep this one on purpose, delete the marker",
			herald.ErrIncompatibleStore, ErrDamaged, path, filepath.Base(markerPath(path)), m.Store)
	case m.Store != id:
		return fmt.Errorf("%w: %w: the store file %s holds store %s, but its marker %s names store %s: the file was replaced. Put the right file back; to keep this one on purpose, delete the marker",
			herald.ErrIncompatibleStore, ErrDamaged, path, id, filepath.Base(markerPath(path)), m.Store)
	case head < m.Head:
		return fmt.Errorf("%w: %w: the store file %s holds positions through %d, but its marker %s says the store had given positions through %d: the file was rolled back to an older copy, and opening it would give those positions again. Put the newest copy back; to keep this one on purpose, delete the marker (readers that saw positions past %d will see them given to other events)",
			herald.ErrIncompatibleStore, ErrDamaged, path, head, filepath.Base(markerPath(path)), m.Head, head)
	}
	return nil
}
