package sqlite

import (
	"context"
	"database/sql"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
)

// A request is one caller's write, run by the writer goroutine inside a
// group transaction.
type request struct {
	ctx context.Context
	// mayFail marks a request that fails in the normal course of things
	// (a conditional append): its group runs each request in a savepoint
	// from the start.
	mayFail bool
	// fn does the writes. It may run more than once (when another request
	// of its group breaks the transaction), so it must reset what it
	// records at its start.
	fn   func(tx *wtx) error
	done chan error // buffered: the writer never blocks on it
	err  error
}

// wtx is what a request's fn writes through: the writer's connection with
// its prepared statements, inside the group transaction.
type wtx struct {
	ctx  context.Context
	w    *writer
	conn *sql.Conn
	st   *writeStmts
	// next is the next position to assign.
	next uint64
}

// writer owns the only writing connection and runs group commits.
type writer struct {
	s    *Store
	conn *sql.Conn
	st   *writeStmts
	reqs chan *request
	done chan struct{}
	head uint64 // last committed position (the writer's copy)
	// wipe is set by a request that deleted data which must not outlive
	// its deletion in the WAL (see DeleteValue): after its transaction
	// commits, the writer checkpoints the WAL and truncates it before
	// answering.
	wipe bool
	// pruned is set once retention has deleted an event, so that appends
	// look their ids up among the pruned ones too. A transaction rolled
	// back after setting it leaves it set, which costs lookups only.
	pruned bool

	commits, requests atomic.Uint64 // for Stats

	// marked is the head the marker last recorded, at markedAt.
	marked   uint64
	markedAt time.Time
}

func newWriter(ctx context.Context, s *Store, conn *sql.Conn, head uint64) (*writer, error) {
	st, err := prepareWriteStmts(ctx, conn)
	if err != nil {
		return nil, err
	}
	var pruned bool
	if err := st.anyPruned.QueryRowContext(ctx).Scan(&pruned); err != nil {
		st.close()
		return nil, err
	}
	return &writer{
		s:      s,
		conn:   conn,
		st:     st,
		reqs:   make(chan *request, s.cfg.maxGroup),
		done:   make(chan struct{}),
		head:   head,
		pruned: pruned,
		marked: head, markedAt: time.Now(),
	}, nil
}

// markEvery is how often, at most, the writer records the head in the
// store's marker while the store runs.
const markEvery = time.Minute

// markHead records the head in the store's marker (see marker) when it
// moved and markEvery has passed since the last time, so that a copy of
// the file from before then is refused as rolled back. At Normal
// durability it syncs the WAL first: the marker never says more than the
// file holds on disk.
func (w *writer) markHead() {
	if w.head == w.marked || time.Since(w.markedAt) < markEvery {
		return
	}
	w.markedAt = time.Now()
	if w.s.cfg.durability == Normal {
		if err := syncFiles(w.s.path); err != nil {
			w.s.log.Warn("sqlite: the store's marker was not updated", "err", err)
			return
		}
	}
	if err := writeMarker(w.s.path, marker{Store: w.s.id, Head: w.head}); err != nil {
		w.s.log.Warn("sqlite: the store's marker was not updated", "err", err)
		return
	}
	w.marked = w.head
}

// close releases the writer's statements and connection; the database is
// checkpointed when its last connection closes.
func (w *writer) close() error {
	w.st.close()
	return w.conn.Close()
}

// do queues fn to the writer and waits for its result. It returns ErrClosed
// after Close, and ctx's error when ctx ends before the request is taken
// (a request already being written completes regardless).
func (s *Store) do(ctx context.Context, fn func(tx *wtx) error) error {
	return s.queue(ctx, &request{ctx: ctx, fn: fn})
}

// doMayFail is do for a write that fails in the normal course of things,
// such as a conditional append.
func (s *Store) doMayFail(ctx context.Context, fn func(tx *wtx) error) error {
	return s.queue(ctx, &request{ctx: ctx, fn: fn, mayFail: true})
}

func (s *Store) queue(ctx context.Context, r *request) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	select {
	case s.w.reqs <- r:
	case <-s.quit:
		return herald.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.w.done:
		select {
		case err := <-r.done:
			return err
		default:
			return herald.ErrClosed
		}
	}
}

func (w *writer) run() {
	defer close(w.done)
	group := make([]*request, 0, w.s.cfg.maxGroup)
	for {
		var first *request
		select {
		case first = <-w.reqs:
		case <-w.s.quit:
			// Finish what was queued before Close.
			for {
				select {
				case r := <-w.reqs:
					group = append(group[:0], r)
					group = w.gather(group)
					w.commitGroup(group)
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
		group = w.gather(group)
		w.commitGroup(group)
		// The callers just answered are runnable: let them run before the
		// next group is gathered, so that they can queue their next writes
		// into it, and so that they return about in commit order.
		runtime.Gosched()
	}
}

// gather adds every request already queued, up to the group limit.
func (w *writer) gather(group []*request) []*request {
	for len(group) < cap(group) {
		select {
		case r := <-w.reqs:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// commitGroup runs the group's requests in one transaction, commits once
// and answers each request.
//
// When no request of the group is expected to fail, the requests run one
// after the other without savepoints. If one fails after all, the
// transaction is rolled back and the group runs again with a savepoint per
// request, so that one caller's failure does not fail the others; a
// request whose failure breaks the transaction itself is answered with its
// error and the others are run again without it.
func (w *writer) commitGroup(group []*request) {
	live := group[:0]
	savepoints := false
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
		savepoints = savepoints || r.mayFail
	}
	ctx := context.Background()
	for len(live) > 0 {
		if _, err := w.st.begin.ExecContext(ctx); err != nil {
			w.failAll(live, wrap(w.s.log, "begin", err))
			return
		}
		tx := &wtx{ctx: ctx, w: w, conn: w.conn, st: w.st, next: w.head + 1}
		if len(live) == 1 {
			// Alone in its transaction, a request needs no savepoint.
			w.commitOne(tx, live[0])
			return
		}
		if !savepoints {
			if w.runAll(tx, live) {
				w.commit(tx, live)
				return
			}
			_, _ = w.st.rollback.ExecContext(ctx)
			savepoints = true
			continue
		}
		broken := -1
		for i, r := range live {
			r.err = nil
			mark := tx.next
			if _, err := w.st.savepoint.ExecContext(ctx); err != nil {
				r.err = err
				broken = i
				break
			}
			if err := r.fn(tx); err != nil {
				r.err = err
				tx.next = mark
				if _, rerr := w.st.rollbackTo.ExecContext(ctx); rerr != nil {
					broken = i
					break
				}
			}
			if _, err := w.st.release.ExecContext(ctx); err != nil {
				if r.err == nil {
					r.err = err
				}
				broken = i
				break
			}
		}
		if broken >= 0 {
			_, _ = w.st.rollback.ExecContext(ctx)
			r := live[broken]
			r.done <- wrap(w.s.log, "write", r.err)
			live = append(live[:broken:broken], live[broken+1:]...)
			continue
		}
		w.commit(tx, live)
		return
	}
}

// runAll runs every request in tx without savepoints and reports whether
// all of them succeeded.
func (w *writer) runAll(tx *wtx, reqs []*request) bool {
	for _, r := range reqs {
		r.err = nil
		if err := r.fn(tx); err != nil {
			return false
		}
	}
	return true
}

// commit commits the transaction the requests ran in and answers them.
func (w *writer) commit(tx *wtx, reqs []*request) {
	if _, err := w.st.commit.ExecContext(tx.ctx); err != nil {
		_, _ = w.st.rollback.ExecContext(tx.ctx)
		w.failAll(reqs, wrap(w.s.log, "commit", err))
		return
	}
	if tx.next-1 > w.head {
		w.head = tx.next - 1
		w.s.setHead(w.head)
	}
	w.commits.Add(1)
	w.requests.Add(uint64(len(reqs)))
	w.wipeWAL(tx.ctx)
	for _, r := range reqs {
		r.done <- wrap(w.s.log, "write", r.err)
	}
	w.markHead()
}

// commitOne runs a request alone in the transaction tx has begun.
func (w *writer) commitOne(tx *wtx, r *request) {
	ctx := tx.ctx
	if err := r.fn(tx); err != nil {
		_, _ = w.st.rollback.ExecContext(ctx)
		r.done <- wrap(w.s.log, "write", err)
		return
	}
	if _, err := w.st.commit.ExecContext(ctx); err != nil {
		_, _ = w.st.rollback.ExecContext(ctx)
		r.done <- wrap(w.s.log, "commit", err)
		return
	}
	if tx.next-1 > w.head {
		w.head = tx.next - 1
		w.s.setHead(w.head)
	}
	w.commits.Add(1)
	w.requests.Add(1)
	w.wipeWAL(ctx)
	r.done <- nil
	w.markHead()
}

// wipeWAL, when a committed request asked for it, copies the WAL into the
// database and truncates it to zero bytes, so that no earlier version of a
// page (one that held deleted data) stays in the WAL file. It waits for
// readers of older snapshots to finish, which reads paged into short
// transactions make brief. A checkpoint that cannot finish is logged; the
// next wipe, or Close, completes it.
func (w *writer) wipeWAL(ctx context.Context) {
	if !w.wipe {
		return
	}
	w.wipe = false
	var busy, logFrames, done int
	err := w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil || busy != 0 {
		w.s.log.Error("sqlite: the WAL could not be truncated after deleting data; deleted data may stay in it until the next checkpoint",
			"err", err, "busy", busy != 0)
	}
}

func (w *writer) failAll(reqs []*request, err error) {
	for _, r := range reqs {
		r.done <- err
	}
}

// Stats counts the writer's work since Open.
type Stats struct {
	// Commits is how many transactions the writer committed (one sync each
	// at Durability Full).
	Commits uint64
	// Requests is how many calls (appends, commits, KV writes) those
	// transactions carried; Requests/Commits is the mean group size.
	Requests uint64
}

// Stats returns the writer's counters. It is safe to call at any time.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.w.commits.Load(), Requests: s.w.requests.Load()}
}
