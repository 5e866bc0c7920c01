package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
	msqlite "modernc.org/sqlite"
)

// Level is how durable a commit is when Append returns.
type Level int

const (
	// Full syncs the WAL to disk on every commit (synchronous=FULL): nothing
	// acknowledged is lost, even on power failure. The default.
	Full Level = iota
	// Normal syncs only at WAL checkpoints (synchronous=NORMAL): nothing
	// acknowledged is lost when the process crashes, but a power failure or
	// an operating-system crash may lose the last commits.
	Normal
)

func (l Level) String() string {
	switch l {
	case Full:
		return "full"
	case Normal:
		return "normal"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses "full" or "normal".
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "full", "":
		return Full, nil
	case "normal":
		return Normal, nil
	}
	return 0, fmt.Errorf("sqlite: unknown durability %q: want full or normal", s)
}

type config struct {
	durability Level
	logger     *slog.Logger
	readConns  int
	maxGroup   int
	quickCheck time.Duration
}

// Option configures Open.
type Option func(*config)

// WithDurability sets how durable an acknowledged append is. Default: Full.
func WithDurability(l Level) Option { return func(c *config) { c.durability = l } }

// WithLogger sets the logger for failures. Default: none
// (nil discards).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithReadConnections sets how many connections serve reads at once. Default: 4.
func WithReadConnections(n int) Option { return func(c *config) { c.readConns = n } }

// WithMaxGroup caps how many calls the writer gathers into one transaction.
// Default: 1024.
func WithMaxGroup(n int) Option { return func(c *config) { c.maxGroup = n } }

// WithQuickCheck bounds how long Open spends on SQLite's quick check of an
// existing store file (PRAGMA quick_check: the structure of every page and
// index, not the contents of rows) before it takes the store. A file that
// fails is refused with an error wrapping ErrDamaged; a check still
// running when limit is up is abandoned with a warning, and the store
// opens. The check reads the whole file: 3.6 s for a file of a million
// events (581 MiB) in the page cache, about 6 s a gigabyte, more from a
// cold disk (docs/backends.md). 0 or less skips it. Default:
// DefaultQuickCheck.
func WithQuickCheck(limit time.Duration) Option { return func(c *config) { c.quickCheck = limit } }

// Store is a herald.Store in one SQLite file. It is safe for concurrent use
// by many goroutines; one process may hold it at a time. After Close every
// method returns an error wrapping herald.ErrClosed.
type Store struct {
	cfg  config
	log  *slog.Logger
	path string

	lock   *os.File
	wdb    *sql.DB // the writer's pool: one connection
	rdb    *sql.DB // readers
	w      *writer
	reads  *readStmts
	closed atomic.Bool

	// head is the last committed position; changed is closed and replaced
	// at every commit that moves it.
	mu      sync.Mutex
	head    uint64
	changed chan struct{}
	quit    chan struct{}

	closeOnce sync.Once
	closeErr  error

	id     string                // the store's identity (see marker)
	damage atomic.Pointer[error] // the first damage met (see Ready)
}

var (
	_ herald.Store        = (*Store)(nil)
	_ herald.ReadyChecker = (*Store)(nil)
)

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// Open opens the herald store in the SQLite file at path, creating the file
// (and its directory) when missing, and takes ownership of it until Close.
//
// A store another process holds gives an error wrapping
// herald.ErrStoreLocked; a file that is not a herald store, is damaged, or
// was written by a newer herald gives one wrapping
// herald.ErrIncompatibleStore, and the file is left as it was.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{durability: Full, readConns: 4, maxGroup: 1024, quickCheck: DefaultQuickCheck}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case path == "":
		return nil, errors.New("sqlite: empty store path")
	case strings.ContainsAny(path, "?#"):
		return nil, errors.New("sqlite: the store path must not contain '?' or '#'")
	case cfg.durability != Full && cfg.durability != Normal:
		return nil, fmt.Errorf("sqlite: unknown durability %d", int(cfg.durability))
	case cfg.readConns < 1:
		return nil, errors.New("sqlite: WithReadConnections must be at least 1")
	case cfg.maxGroup < 1:
		return nil, errors.New("sqlite: WithMaxGroup must be at least 1")
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: cannot create the store directory: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	if err := createPrivate(log, path); err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{cfg: cfg, log: log, path: path, lock: lock, changed: make(chan struct{}), quit: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

// createPrivate creates the store file, when missing, readable and
// writable by its owner only (0600); SQLite gives the -wal and -shm files
// the store file's mode. The files hold webhook secrets and subject keys,
// so it warns when an existing store file, or the directory, is open to
// other users. It changes no existing file's mode.
func createPrivate(log *slog.Logger, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: cannot create the store file: %w", err)
		}
	case errors.Is(err, os.ErrExist):
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("sqlite: the store file is readable by other users; it holds secrets: chmod 600 it and its -wal and -shm files",
				"path", path, "mode", fi.Mode().Perm().String())
		}
	default:
		return fmt.Errorf("sqlite: cannot create the store file: %w", err)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o007 != 0 {
		log.Warn("sqlite: the store directory is open to every user; restrict it (chmod 700 or 750)",
			"dir", dir, "mode", fi.Mode().Perm().String())
	}
	return nil
}

// checkHeader refuses a non-empty file that is not an SQLite database
// before SQLite touches it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: cannot read the store file: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF) {
		return nil // an empty file is a new database
	}
	if err != nil || !bytes.Equal(head, sqliteHeader) {
		return fmt.Errorf("%w: the file is not an SQLite database", herald.ErrIncompatibleStore)
	}
	return nil
}

func (s *Store) open(ctx context.Context) error {
	if err := checkHeader(s.path); err != nil {
		return err
	}
	syncMode := "FULL"
	if s.cfg.durability == Normal {
		syncMode = "NORMAL"
	}
	// Page caches: 16 MiB for the writer, 8 MiB for each reader.
	base := s.path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)"
	// secure_delete: deleted content is overwritten with zeros, in the
	// pages that held it and in pages put on the free list, so that what
	// herald deletes (key material above all) is gone from the file and
	// not only unlinked. Only the writer deletes.
	wc, err := msqlite.NewConnector(base + "&_pragma=cache_size(-16000)&_pragma=secure_delete(1)&_pragma=synchronous(" + syncMode + ")")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.wdb = sql.OpenDB(wc)
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return openError(err)
	}
	head, err := s.checkFile(ctx, conn)
	if err != nil {
		conn.Close()
		return err
	}
	s.head = head
	rc, err := msqlite.NewConnector(base + "&_pragma=cache_size(-8000)&_pragma=query_only(1)")
	if err != nil {
		conn.Close()
		return fmt.Errorf("sqlite: %w", err)
	}
	s.rdb = sql.OpenDB(rc)
	s.rdb.SetMaxOpenConns(s.cfg.readConns)
	s.rdb.SetMaxIdleConns(s.cfg.readConns)
	if s.reads, err = newReadStmts(s.rdb); err != nil {
		conn.Close()
		return openError(err)
	}
	w, err := newWriter(ctx, s, conn, head)
	if err != nil {
		conn.Close()
		return openError(err)
	}
	s.w = w
	go w.run()
	return nil
}

// checkFile refuses a file that is not a herald store this herald can
// use, that fails the quick check, or that its marker says was emptied,
// replaced or rolled back, changing nothing in it; then it prepares the
// file, writes the marker and returns the store's head.
func (s *Store) checkFile(ctx context.Context, conn *sql.Conn) (uint64, error) {
	st, err := inspectFile(ctx, conn)
	if err != nil {
		return 0, err
	}
	mk, err := readMarker(s.path)
	if err != nil {
		return 0, err
	}
	var id string
	if st.fresh {
		if mk != nil {
			return 0, refuseFresh(s.path, mk)
		}
	} else {
		if err := quickCheck(ctx, s, conn, s.cfg.quickCheck); err != nil {
			return 0, err
		}
		if id, _, err = readIdentity(ctx, conn); err != nil {
			return 0, err
		}
		head, err := loadHead(ctx, conn)
		if err != nil {
			return 0, openError(err)
		}
		if err := checkMarker(s.path, mk, id, head); err != nil {
			return 0, err
		}
	}
	if err := prepareFile(ctx, s.log, conn, st); err != nil {
		return 0, err
	}
	if id == "" {
		if id, err = newIdentity(ctx, conn); err != nil {
			return 0, err
		}
	}
	head, err := loadHead(ctx, conn)
	if err != nil {
		return 0, openError(err)
	}
	// What the marker says must be on disk first.
	if err := syncFiles(s.path); err != nil {
		return 0, err
	}
	s.id = id
	if err := writeMarker(s.path, marker{Store: id, Head: head}); err != nil {
		return 0, err
	}
	return head, nil
}

// loadHead returns the last position ever assigned: the largest stored, or
// the one recorded when retention deleted the newest events.
func loadHead(ctx context.Context, conn *sql.Conn) (uint64, error) {
	var head uint64
	err := conn.QueryRowContext(ctx,
		`SELECT max(coalesce((SELECT max(position) FROM events), 0),
		            coalesce((SELECT value FROM meta WHERE key = 'head'), 0))`).Scan(&head)
	return head, err
}

// release frees what open took, in reverse order.
func (s *Store) release() {
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.wdb != nil {
		s.wdb.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// Close finishes the writes already queued, checkpoints the WAL and releases the file and its lock. It is safe to
// call more than once; calls after the first return the first's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.w.done
		s.reads.close()
		var errs []error
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.w.close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.wdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			// Closing the last connection checkpointed and synced the file.
			s.mu.Lock()
			head := s.head
			s.mu.Unlock()
			if err := writeMarker(s.path, marker{Store: s.id, Head: head}); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.lock.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.log.Error("closing the sqlite store", "err", err)
			s.closeErr = errors.New("sqlite: close: could not close the store file cleanly")
		}
	})
	return s.closeErr
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return herald.ErrClosed
	}
	return nil
}

// Head returns the last committed position.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head, nil
}

// setHead publishes a committed head and wakes every Wait.
func (s *Store) setHead(h uint64) {
	s.mu.Lock()
	if h > s.head {
		s.head = h
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
}

// Wait blocks until the head is past after and returns it; see
// herald.EventLog.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		if err := s.checkOpen(); err != nil {
			return 0, err
		}
		s.mu.Lock()
		head, ch := s.head, s.changed
		s.mu.Unlock()
		if head > after {
			return head, nil
		}
		select {
		case <-ch:
		case <-s.quit:
			return 0, herald.ErrClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
