package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/internal/testwait"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

func openTest(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "herald.db")
	}
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(t testing.TB, name string, mod ...func(*herald.Event)) *herald.Event {
	t.Helper()
	e := &herald.Event{Name: name, Data: json.RawMessage(`{"k":"v"}`)}
	for _, m := range mod {
		m(e)
	}
	if err := e.Prepare(time.Now()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return e
}

func withSubject(s string) func(*herald.Event) { return func(e *herald.Event) { e.Subject = s } }

func readAll(t testing.TB, s *Store, after uint64, f herald.Filter) []*herald.Event {
	t.Helper()
	var out []*herald.Event
	for e, err := range s.Read(context.Background(), after, f) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func appendOK(t testing.TB, s *Store, opts herald.AppendOptions, events ...*herald.Event) []herald.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), events, opts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

func TestAppendReadRoundTrip(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	e := ev(t, "recording.completed", func(e *herald.Event) {
		e.Subject = "recording/1"
		e.SourcePlugin = "recorder"
		e.CausationID = "cause"
		e.Priority = herald.PriorityHigh
		e.Version = 3
		e.Metadata = map[string]string{"traceparent": "00-abc"}
	})
	want := e.Clone()
	res := appendOK(t, s, herald.AppendOptions{}, e)
	if res[0].Position != 1 || res[0].Duplicate || e.Position != 1 {
		t.Fatalf("result %+v, position %d", res[0], e.Position)
	}
	want.Position = 1
	got, err := s.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !equalEvents(got, want) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	all := readAll(t, s, 0, herald.Filter{})
	if len(all) != 1 || !equalEvents(all[0], want) {
		t.Fatalf("Read = %v", all)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	// Times outside what nanoseconds hold survive too.
	old := ev(t, "a.b", func(e *herald.Event) { e.Timestamp = time.Date(1200, 1, 2, 3, 4, 5, 6, time.UTC) })
	appendOK(t, s, herald.AppendOptions{}, old)
	g, err := s.Get(ctx, old.ID)
	if err != nil || !g.Timestamp.Equal(old.Timestamp) {
		t.Fatalf("old timestamp: %v %v", g, err)
	}
}

func equalEvents(a, b *herald.Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && a.Timestamp.Equal(b.Timestamp)
}

func TestIdempotentAndVersions(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	a := ev(t, "order.placed", withSubject("order/1"))
	b := ev(t, "order.paid", withSubject("order/1"))
	res := appendOK(t, s, herald.AppendOptions{CheckVersion: true}, a, b)
	if res[0].Position != 1 || res[1].Position != 2 {
		t.Fatalf("results %+v", res)
	}
	// Retry of the same conditional batch is idempotent.
	res = appendOK(t, s, herald.AppendOptions{CheckVersion: true}, a.Clone(), b.Clone())
	if !res[0].Duplicate || !res[1].Duplicate || res[0].Position != 1 || res[1].Position != 2 {
		t.Fatalf("retry results %+v", res)
	}
	// A stale expected version conflicts and stores nothing.
	c := ev(t, "order.shipped", withSubject("order/1"))
	if _, err := s.Append(ctx, []*herald.Event{c}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 1}); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if v, _ := s.SubjectVersion(ctx, "order/1"); v != 2 {
		t.Fatalf("version %d", v)
	}
	appendOK(t, s, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 2}, c)
	// In-batch duplicates and unconditioned subject events.
	d := ev(t, "order.noted", withSubject("order/1"))
	res = appendOK(t, s, herald.AppendOptions{}, d, d.Clone(), ev(t, "x.y"))
	if res[0].Position != 4 || !res[1].Duplicate || res[1].Position != 4 || res[2].Position != 5 {
		t.Fatalf("batch results %+v", res)
	}
	if v, _ := s.SubjectVersion(ctx, "order/1"); v != 4 {
		t.Fatalf("version %d", v)
	}
	if head, _ := s.Head(ctx); head != 5 {
		t.Fatalf("head %d", head)
	}
	// Mixed subjects with a version check are invalid.
	_, err := s.Append(ctx, []*herald.Event{ev(t, "a", withSubject("s1")), ev(t, "a", withSubject("s2"))},
		herald.AppendOptions{CheckVersion: true})
	if !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("mixed subjects: %v", err)
	}
	// Invalid events are refused before anything is stored.
	bad := ev(t, "ok")
	bad.Name = "Bad Name"
	_, err = s.Append(ctx, []*herald.Event{ev(t, "fine"), bad}, herald.AppendOptions{})
	var ve *herald.ValidationError
	if !errors.As(err, &ve) || ve.Index != 1 {
		t.Fatalf("invalid event: %v", err)
	}
	if head, _ := s.Head(ctx); head != 5 {
		t.Fatalf("head after refused batch %d", head)
	}
}

// block queues a request that holds the writer until release is closed,
// so that the requests queued meanwhile are committed as one group.
func block(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started := make(chan struct{})
	gate := make(chan struct{})
	go s.do(context.Background(), func(*wtx) error {
		close(started)
		<-gate
		return nil
	})
	<-started
	return func() { close(gate) }
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	appendOK(t, s, herald.AppendOptions{}, ev(t, "acct.opened", withSubject("acct/1")))
	release := block(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	res := make([][]herald.AppendResult, 3)
	batches := [][]*herald.Event{
		{ev(t, "acct.credited", withSubject("acct/1")), ev(t, "acct.credited", withSubject("acct/1"))},
		{ev(t, "acct.debited", withSubject("acct/1"))}, // expects version 0: conflict
		{ev(t, "other.thing")},
	}
	opts := []herald.AppendOptions{{}, {CheckVersion: true, ExpectedVersion: 0}, {}}
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = s.Append(ctx, batches[i], opts[i])
		}()
	}
	testwait.For(t, "three appends queued behind the blocked writer", func() bool { return len(s.w.reqs) >= 3 })
	release()
	wg.Wait()
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("unrelated appends failed: %v, %v", errs[0], errs[2])
	}
	if !errors.Is(errs[1], herald.ErrConflict) {
		t.Fatalf("conflict: %v", errs[1])
	}
	all := readAll(t, s, 0, herald.Filter{})
	if len(all) != 4 {
		t.Fatalf("stored %d events, want 4", len(all))
	}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("positions not contiguous: %d at %d", e.Position, i)
		}
	}
	if v, _ := s.SubjectVersion(ctx, "acct/1"); v != 3 {
		t.Fatalf("version %d", v)
	}
}

func TestConcurrentAppendsAreOrdered(t *testing.T) {
	s := openTest(t, "", WithDurability(Normal))
	ctx := context.Background()
	const writers, each = 16, 40
	var wg sync.WaitGroup
	positions := make(chan uint64, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := s.Append(ctx, []*herald.Event{ev(t, "load.test")}, herald.AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				positions <- res[0].Position
			}
		}()
	}
	// A reader following the head never sees a gap.
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		var last uint64
		for {
			for e, err := range s.Read(ctx, last, herald.Filter{}) {
				if err != nil {
					readerErr <- err
					return
				}
				if e.Position != last+1 {
					readerErr <- fmt.Errorf("reader saw %d after %d", e.Position, last)
					return
				}
				last = e.Position
			}
			if last == writers*each {
				readerErr <- nil
				return
			}
			select {
			case <-done:
				readerErr <- fmt.Errorf("reader stopped at %d", last)
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			s.Wait(wctx, last)
			cancel()
		}
	}()
	wg.Wait()
	close(positions)
	seen := map[uint64]bool{}
	for p := range positions {
		if seen[p] {
			t.Fatalf("position %d given twice", p)
		}
		seen[p] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d positions", len(seen))
	}
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	close(done)
}

func TestReadFiltersAndPaging(t *testing.T) {
	s := openTest(t, "")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []*herald.Event
	names := []string{"recording.started", "recording.completed", "recording.audio.split", "upload.done"}
	for i := range 1300 {
		batch = append(batch, ev(t, names[i%len(names)], func(e *herald.Event) {
			e.Timestamp = base.Add(time.Duration(i) * time.Second)
			e.CorrelationID = fmt.Sprintf("c%d", i%10)
			e.SourcePlugin = fmt.Sprintf("p%d", i%3)
			if i%7 == 0 {
				e.Subject = fmt.Sprintf("s%d", i%2)
			}
		}))
	}
	appendOK(t, s, herald.AppendOptions{}, batch...)
	filters := []herald.Filter{
		{},
		{Name: "recording.completed"},
		{Name: "recording.*"},
		{Name: "recording.>"},
		{Name: "*.done"},
		{Name: ">"},
		{CorrelationID: "c3"},
		{Subject: "s1", Name: "recording.>"},
		{SourcePlugin: "p2", Limit: 17},
		{Since: base.Add(100 * time.Second), Until: base.Add(700 * time.Second)},
		{Since: base.Add(1000 * time.Second), Name: "upload.*", Limit: 3},
		{Limit: 600},
		{Name: "nothing.here"},
	}
	for _, f := range filters {
		var want []uint64
		for _, e := range batch {
			if f.Match(e) && (f.Limit == 0 || len(want) < f.Limit) {
				want = append(want, e.Position)
			}
		}
		got := readAll(t, s, 0, f)
		if len(got) != len(want) {
			t.Fatalf("filter %+v: got %d events, want %d", f, len(got), len(want))
		}
		for i := range got {
			if got[i].Position != want[i] {
				t.Fatalf("filter %+v: event %d at %d, want %d", f, i, got[i].Position, want[i])
			}
		}
	}
	// Reading from the middle, and stopping early.
	got := readAll(t, s, 1000, herald.Filter{})
	if len(got) != 300 || got[0].Position != 1001 {
		t.Fatalf("read after 1000: %d events", len(got))
	}
	n := 0
	for range s.Read(context.Background(), 0, herald.Filter{}) {
		n++
		if n == 5 {
			break
		}
	}
	// A cancelled context ends the iteration with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range s.Read(ctx, 0, herald.Filter{}) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v", err)
		}
	}
}

func TestWait(t *testing.T) {
	synctest.Test(t, testWait)
}

func testWait(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	got := make(chan uint64, 1)
	go func() {
		h, err := s.Wait(ctx, 0)
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	synctest.Wait() // Wait waits
	select {
	case h := <-got:
		t.Fatalf("Wait returned %d before an append", h)
	default:
	}
	appendOK(t, s, herald.AppendOptions{}, ev(t, "a"))
	if h := <-got; h != 1 {
		t.Fatalf("Wait = %d", h)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(tctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait timeout: %v", err)
	}
	closed := make(chan error, 1)
	go func() { _, err := s.Wait(ctx, 1); closed <- err }()
	synctest.Wait() // Wait waits
	select {
	case err := <-closed:
		t.Fatalf("Wait returned before Close: %v", err)
	default:
	}
	s.Close()
	if err := <-closed; !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "a")}, herald.AppendOptions{}); !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("Append: %v", err)
	}
	for _, err := range s.Read(ctx, 0, herald.Filter{}) {
		if !errors.Is(err, herald.ErrClosed) {
			t.Fatalf("Read: %v", err)
		}
	}
	if _, err := s.Head(ctx); !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("Head: %v", err)
	}
	if err := s.PutValue(ctx, "b", "k", nil); !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("PutValue: %v", err)
	}
	if err := s.Commit(ctx, "sub", herald.Progress{}); !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("Commit: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := ev(t, "a.b", withSubject("x"))
	appendOK(t, s, herald.AppendOptions{}, e, ev(t, "a.c"))
	if err := s.Commit(ctx, "sub", herald.Progress{Checkpoint: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutValue(ctx, "cfg", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path)
	if h, _ := s.Head(ctx); h != 2 {
		t.Fatalf("head %d", h)
	}
	if res := appendOK(t, s, herald.AppendOptions{}, e.Clone()); !res[0].Duplicate || res[0].Position != 1 {
		t.Fatalf("duplicate after reopen: %+v", res)
	}
	if p, ok, _ := s.Checkpoint(ctx, "sub"); !ok || p != 2 {
		t.Fatalf("checkpoint %d %v", p, ok)
	}
	if v, _ := s.GetValue(ctx, "cfg", "k"); string(v) != "v" {
		t.Fatalf("value %q", v)
	}
	var av int
	s.rdb.QueryRow("PRAGMA auto_vacuum").Scan(&av)
	if av != 2 {
		t.Fatalf("auto_vacuum = %d, want 2 (incremental)", av)
	}
}

func TestOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	t.Run("locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		openTest(t, path)
		_, err := Open(ctx, path)
		if !errors.Is(err, herald.ErrStoreLocked) {
			t.Fatalf("second Open: %v", err)
		}
	})
	refused := func(t *testing.T, path string, content []byte) {
		t.Helper()
		if content != nil {
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := os.ReadFile(path)
		_, err := Open(ctx, path)
		if !errors.Is(err, herald.ErrIncompatibleStore) {
			t.Fatalf("Open: %v", err)
		}
		after, _ := os.ReadFile(path)
		if string(before) != string(after) {
			t.Fatal("a refused file was modified")
		}
		// And it is refused again: nothing was left half-done.
		if _, err := Open(ctx, path); !errors.Is(err, herald.ErrIncompatibleStore) {
			t.Fatalf("second Open: %v", err)
		}
	}
	t.Run("not sqlite", func(t *testing.T) {
		refused(t, filepath.Join(dir, "text.db"), []byte("hello, this is not a database at all\n"))
	})
	t.Run("damaged", func(t *testing.T) {
		b := make([]byte, 8192)
		copy(b, sqliteHeader)
		for i := 16; i < len(b); i++ {
			b[i] = byte(i * 7)
		}
		refused(t, filepath.Join(dir, "damaged.db"), b)
	})
	t.Run("foreign sqlite", func(t *testing.T) {
		path := filepath.Join(dir, "foreign.db")
		s := openTest(t, path)
		s.do(ctx, func(tx *wtx) error {
			_, err := tx.conn.ExecContext(tx.ctx, "PRAGMA application_id = 7")
			return err
		})
		s.Close()
		refused(t, path, nil)
	})
	t.Run("newer herald", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		s := openTest(t, path)
		s.do(ctx, func(tx *wtx) error {
			_, err := tx.conn.ExecContext(tx.ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion()+1))
			return err
		})
		s.Close()
		_, err := Open(ctx, path)
		if !errors.Is(err, herald.ErrIncompatibleStore) {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := Open(ctx, filepath.Join(dir, "x.db"), WithDurability(Level(9))); err == nil {
			t.Fatal("unknown durability accepted")
		}
		if _, err := Open(ctx, ""); err == nil {
			t.Fatal("empty path accepted")
		}
	})
}

func TestStoreFull(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	setMaxPages := func(n string) {
		t.Helper()
		err := s.do(ctx, func(tx *wtx) error {
			_, err := tx.conn.ExecContext(tx.ctx, "PRAGMA max_page_count = "+n)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	appendOK(t, s, herald.AppendOptions{}, ev(t, "seed"))
	var pages int
	s.rdb.QueryRow("PRAGMA page_count").Scan(&pages)
	setMaxPages(fmt.Sprint(pages + 20))
	big := string(make([]byte, 0))
	for range 3000 {
		big += "x"
	}
	mk := func(n int) []*herald.Event {
		var b []*herald.Event
		for range n {
			b = append(b, ev(t, "big.event", func(e *herald.Event) {
				e.Data = json.RawMessage(`{"pad":"` + big + `"}`)
			}))
		}
		return b
	}
	var full error
	for range 50 {
		if _, err := s.Append(ctx, mk(10), herald.AppendOptions{}); err != nil {
			full = err
			break
		}
	}
	if !errors.Is(full, herald.ErrStoreFull) {
		t.Fatalf("expected ErrStoreFull, got %v", full)
	}
	if msg := full.Error(); len(msg) > 200 || containsAny(msg, "INSERT", "SELECT", "SQL") {
		t.Fatalf("error leaks internals: %q", msg)
	}
	head, _ := s.Head(ctx)
	if n := len(readAll(t, s, 0, herald.Filter{})); uint64(n) != head || (n-1)%10 != 0 {
		t.Fatalf("%d events stored with head %d: a partial batch was stored", n, head)
	}
	setMaxPages("1073741823")
	res := appendOK(t, s, herald.AppendOptions{}, mk(10)...)
	if res[0].Position != head+1 {
		t.Fatalf("after space returned: position %d, want %d", res[0].Position, head+1)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

// TestConditionalAppendersRace has 16 writers race to extend one subject
// with the version they read: each version is won once, and the stored
// events are the winners in version order. (Winners are recorded by
// version: a caller may return after a later version's winner has.)
func TestConditionalAppendersRace(t *testing.T) {
	s := openTest(t, "", WithDurability(Normal))
	ctx := context.Background()
	var mu sync.Mutex
	won := map[uint64]string{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := s.SubjectVersion(ctx, "c/1")
				if err != nil || v >= 40 {
					return
				}
				e := ev(t, "c.inc", withSubject("c/1"))
				_, err = s.Append(ctx, []*herald.Event{e}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: v})
				switch {
				case err == nil:
					mu.Lock()
					if prev, ok := won[v]; ok {
						t.Errorf("version %d won twice: %s and %s (writer %d)", v+1, prev, e.ID, w)
					}
					won[v] = e.ID
					mu.Unlock()
				case !errors.Is(err, herald.ErrConflict):
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, s, 0, herald.Filter{Subject: "c/1"})
	if len(got) != len(won) || len(got) < 40 {
		t.Fatalf("%d events stored, %d versions won", len(got), len(won))
	}
	for i, e := range got {
		if won[uint64(i)] != e.ID {
			t.Fatalf("version %d is %s, its winner %s", i+1, e.ID, won[uint64(i)])
		}
	}
}

// TestGroupSurvivesAbortedTransaction has one request of a group end the
// transaction under the others, as SQLite does on some I/O errors: that
// request fails alone and the others are written again and succeed.
func TestGroupSurvivesAbortedTransaction(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	release := block(t, s)
	var wg sync.WaitGroup
	var goodErr [2]error
	var badErr error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, goodErr[i] = s.Append(ctx, []*herald.Event{ev(t, "fine.event")}, herald.AppendOptions{})
		}()
		testwait.For(t, "the good request queued", func() bool { return len(s.w.reqs) >= 2*i+1 })
		if i == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				badErr = s.do(ctx, func(tx *wtx) error {
					if _, err := tx.conn.ExecContext(tx.ctx, "INSERT INTO kv (bucket, key, value) VALUES ('b', 'k', x'00')"); err != nil {
						return err
					}
					if _, err := tx.conn.ExecContext(tx.ctx, "ROLLBACK"); err != nil {
						return err
					}
					return errors.New("disk I/O error")
				})
			}()
			testwait.For(t, "the bad request queued", func() bool { return len(s.w.reqs) >= 2 })
		}
	}
	release()
	wg.Wait()
	if goodErr[0] != nil || goodErr[1] != nil {
		t.Fatalf("the other requests failed: %v", goodErr)
	}
	if badErr == nil || strings.Contains(badErr.Error(), "INSERT") {
		t.Fatalf("failing request: %v", badErr)
	}
	if n := len(readAll(t, s, 0, herald.Filter{})); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	if _, err := s.GetValue(ctx, "b", "k"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("the failed request's write was kept: %v", err)
	}
	if h, _ := s.Head(ctx); h != 2 {
		t.Fatalf("head %d", h)
	}
}

// TestReadSubjectPages reads a subject longer than a page, from the start
// and from the middle of the log, with and without a limit.
func TestReadSubjectPages(t *testing.T) {
	s := openTest(t, "", WithDurability(Normal))
	var batch []*herald.Event
	for i := range 1500 {
		subj := "big/1"
		if i%3 == 0 {
			subj = "other/1"
		}
		batch = append(batch, ev(t, "item.added", withSubject(subj)))
	}
	appendOK(t, s, herald.AppendOptions{}, batch...)
	for _, c := range []struct {
		after uint64
		limit int
	}{{0, 0}, {700, 0}, {700, 600}, {1499, 0}, {1500, 0}} {
		var want []uint64
		for _, e := range batch {
			if e.Subject == "big/1" && e.Position > c.after && (c.limit == 0 || len(want) < c.limit) {
				want = append(want, e.Position)
			}
		}
		var got []uint64
		for _, e := range readAll(t, s, c.after, herald.Filter{Subject: "big/1", Limit: c.limit}) {
			got = append(got, e.Position)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %d limit %d: got %d events, want %d", c.after, c.limit, len(got), len(want))
		}
	}
}

// TestBatchWithStoredDuplicate appends a batch longer than one INSERT
// chunk whose events include stored ones late in the batch: the stored
// ones are duplicates at their first positions, the new ones get
// contiguous positions and subject versions, as if written row by row.
func TestBatchWithStoredDuplicate(t *testing.T) {
	s := openTest(t, "", WithDurability(Normal))
	ctx := context.Background()
	first := ev(t, "a.b", withSubject("s/1"))
	appendOK(t, s, herald.AppendOptions{}, ev(t, "a.b"), first, ev(t, "a.b"))
	var batch []*herald.Event
	for i := range 150 {
		switch i {
		case 120:
			batch = append(batch, first.Clone())
		case 130:
			batch = append(batch, batch[5].Clone())
		default:
			batch = append(batch, ev(t, "a.c", withSubject(fmt.Sprintf("s/%d", i%2))))
		}
	}
	res := appendOK(t, s, herald.AppendOptions{}, batch...)
	next := uint64(4)
	for i, r := range res {
		var want herald.AppendResult
		switch i {
		case 120:
			want = herald.AppendResult{Position: 2, Duplicate: true}
		case 130:
			want = herald.AppendResult{Position: res[5].Position, Duplicate: true}
		default:
			want = herald.AppendResult{Position: next}
			next++
		}
		if r != want {
			t.Fatalf("result %d: %+v, want %+v", i, r, want)
		}
	}
	if h, _ := s.Head(ctx); h != next-1 {
		t.Fatalf("head %d, want %d", h, next-1)
	}
	all := readAll(t, s, 0, herald.Filter{})
	if len(all) != int(next-1) {
		t.Fatalf("%d events stored, want %d", len(all), next-1)
	}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("position %d at %d", e.Position, i)
		}
	}
	// s/1 had one event and gains the 75 odd-indexed ones; s/0 gains the
	// even-indexed ones but the two duplicates.
	if v, _ := s.SubjectVersion(ctx, "s/1"); v != 1+75 {
		t.Fatalf("s/1 at version %d", v)
	}
	if got := readAll(t, s, 0, herald.Filter{Subject: "s/0"}); len(got) != 73 {
		t.Fatalf("s/0 holds %d events", len(got))
	}
}
