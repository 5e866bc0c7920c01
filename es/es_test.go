package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/store/sqlite"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// account is the aggregate of these tests: a balance in cents.
type account struct {
	Balance int64    `json:"balance"`
	Owner   string   `json:"owner"`
	Seen    []string `json:"seen,omitempty"`
}

type amount struct {
	Cents int64  `json:"cents"`
	Owner string `json:"owner,omitempty"`
}

func applyAccount(s account, e *herald.Event) (account, error) {
	var a amount
	if err := e.Decode(&a); err != nil {
		return s, err
	}
	switch e.Name {
	case "account.opened":
		s.Owner = a.Owner
	case "account.deposited":
		s.Balance += a.Cents
	case "account.withdrawn":
		if s.Balance < a.Cents {
			return s, errors.New("overdrawn")
		}
		s.Balance -= a.Cents
	default:
		return s, fmt.Errorf("unknown event %s", e.Name)
	}
	return s, nil
}

func ev(t testing.TB, name string, v any) *herald.Event {
	t.Helper()
	e, err := herald.NewEvent(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// countingStore is a real store that counts the events Read yields, so
// tests can see how much of the log a Load reads.
type countingStore struct {
	herald.Store
	read  atomic.Int64
	reads atomic.Int64
	gate  chan struct{} // when set, Read waits for it to close
}

func (s *countingStore) Read(ctx context.Context, after uint64, f herald.Filter) iter.Seq2[*herald.Event, error] {
	s.reads.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
		}
	}
	return func(yield func(*herald.Event, error) bool) {
		for e, err := range s.Store.Read(ctx, after, f) {
			if err == nil {
				s.read.Add(1)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func newStore(t *testing.T) *countingStore {
	t.Helper()
	st := herald.NewMemoryStore()
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}

// backends are the real stores the store-facing tests run on.
var backends = []struct {
	name string
	open func(*testing.T) *countingStore
}{
	{"memory", newStore},
	{"sqlite", newSQLiteStore},
}

// newSQLiteStore opens a real SQLite file in the test's directory.
func newSQLiteStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}

// TestStores runs the tests that depend on the store's behaviour on every
// backend.
func TestStores(t *testing.T) {
	tests := []struct {
		name string
		f    func(*testing.T, func(*testing.T) *countingStore)
	}{
		{"Fold", testFold},
		{"SnapshotBoundsRebuild", testSnapshotBoundsRebuild},
		{"Upcasting", testUpcasting},
		{"ConcurrentWritersOneWins", testConcurrentWritersOneWins},
		{"UpdateRetriesConflicts", testUpdateRetriesConflicts},
		{"StaleCacheHealsOnConflict", testStaleCacheHealsOnConflict},
		{"SaveUpdatesCache", testSaveUpdatesCache},
		{"RetentionKeepsWhatSnapshotsNeed", testRetentionKeepsWhatSnapshotsNeed},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.f(t, b.open) })
			}
		})
	}
}

// busOn returns a bus on st, closed at the end of the test.
func busOn(t testing.TB, st herald.Store) *herald.Bus {
	t.Helper()
	b, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func newRepo(t *testing.T, st herald.Store, opts ...es.Option) *es.Repository[account] {
	t.Helper()
	r, err := es.NewRepository(busOn(t, st), applyAccount, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testFold(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st)

	s, v, err := r.Load(ctx, "account/1")
	if err != nil || v != 0 || s.Balance != 0 {
		t.Fatalf("empty subject: %+v %d %v", s, v, err)
	}
	v, err = r.Save(ctx, "account/1", 0,
		ev(t, "account.opened", amount{Owner: "ada"}),
		ev(t, "account.deposited", amount{Cents: 500}),
		ev(t, "account.withdrawn", amount{Cents: 200}))
	if err != nil || v != 3 {
		t.Fatalf("save: %d %v", v, err)
	}
	// Another subject in between must not leak into this one.
	if _, err := r.Save(ctx, "account/2", 0, ev(t, "account.deposited", amount{Cents: 7})); err != nil {
		t.Fatal(err)
	}
	if v, err = r.Save(ctx, "account/1", 3, ev(t, "account.deposited", amount{Cents: 1})); err != nil || v != 4 {
		t.Fatalf("save: %d %v", v, err)
	}

	// A fresh repository (nothing cached) folds from the store.
	fresh := newRepo(t, st, es.WithCacheSize(0))
	s, v, err = fresh.Load(ctx, "account/1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Balance != 301 || s.Owner != "ada" || v != 4 {
		t.Fatalf("got %+v at %d, want balance 301 owner ada at 4", s, v)
	}
	if sv, _ := st.SubjectVersion(ctx, "account/1"); sv != v {
		t.Fatalf("store says version %d, repository %d", sv, v)
	}
	// The cached repository agrees with the fresh one.
	if s2, v2, _ := r.Load(ctx, "account/1"); s2.Balance != s.Balance || v2 != v {
		t.Fatalf("cached %+v@%d, fresh %+v@%d", s2, v2, s, v)
	}
}

func TestApplyErrorIsReturned(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st)
	if _, err := r.Save(ctx, "a", 0, ev(t, "account.withdrawn", amount{Cents: 5})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newRepo(t, st).Load(ctx, "a"); err == nil || !strings.Contains(err.Error(), "overdrawn") {
		t.Fatalf("want the apply error, got %v", err)
	}
}

func TestSaveRejectsOtherSubjectAndInvalidEvents(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, newStore(t))
	e := ev(t, "account.deposited", amount{Cents: 1})
	e.Subject = "account/other"
	if _, err := r.Save(ctx, "account/1", 0, e); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent, got %v", err)
	}
	if _, err := r.Save(ctx, "account/1", 0, &herald.Event{Name: "Bad Name"}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent, got %v", err)
	}
	if _, err := r.Save(ctx, "", 0, ev(t, "account.deposited", nil)); err == nil {
		t.Fatal("empty subject accepted")
	}
	if _, _, err := r.Load(ctx, ""); err == nil {
		t.Fatal("empty subject loaded")
	}
	if v, _ := r.Save(ctx, "account/1", 0); v != 0 {
		t.Fatal("saving nothing changed the version")
	}
	if _, err := es.NewRepository[account](nil, applyAccount); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := es.NewRepository[account](busOn(t, newStore(t)), nil); err == nil {
		t.Fatal("nil apply accepted")
	}
}

func testSnapshotBoundsRebuild(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	const every = 10
	w := newRepo(t, st, es.WithSnapshotEvery(every), es.WithCacheSize(0))
	// Noise on other subjects, interleaved.
	var v uint64
	for i := range 25 {
		var err error
		if v, err = w.Save(ctx, "account/s", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Save(ctx, fmt.Sprintf("noise/%d", i), 0, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
			t.Fatal(err)
		}
		// Loading writes a snapshot once ten events have gathered.
		if _, _, err := w.Load(ctx, "account/s"); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := st.GetValue(ctx, herald.SnapshotBucket, "account/s")
	if err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	var snap struct {
		Position uint64          `json:"position"`
		Version  uint64          `json:"version"`
		State    json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Version != 20 || snap.Position == 0 {
		t.Fatalf("snapshot %s: want version 20 and a position", raw)
	}
	var ss account
	if err := json.Unmarshal(snap.State, &ss); err != nil || ss.Balance != 20 {
		t.Fatalf("snapshot state %s: %v", snap.State, err)
	}

	r := newRepo(t, st, es.WithSnapshotEvery(every), es.WithCacheSize(0))
	before := st.read.Load()
	s, v, err := r.Load(ctx, "account/s")
	if err != nil {
		t.Fatal(err)
	}
	if s.Balance != 25 || v != 25 {
		t.Fatalf("got %+v@%d, want 25@25", s, v)
	}
	if n := st.read.Load() - before; n != 5 {
		t.Fatalf("rebuild read %d events, want the 5 after the snapshot", n)
	}
	if got := r.Stats(); got.SnapshotsRead != 1 || got.EventsRead != 5 {
		t.Fatalf("stats %+v", got)
	}

	// A snapshot of another state schema is ignored: a full rebuild.
	r2 := newRepo(t, st, es.WithSnapshotEvery(every), es.WithCacheSize(0), es.WithSnapshotSchema(2))
	before = st.read.Load()
	if s, v, err := r2.Load(ctx, "account/s"); err != nil || s.Balance != 25 || v != 25 {
		t.Fatalf("schema 2: %+v@%d %v", s, v, err)
	}
	if n := st.read.Load() - before; n != 25 {
		t.Fatalf("rebuild under a new schema read %d events, want 25", n)
	}

	// A corrupt snapshot is ignored too.
	if err := st.PutValue(ctx, herald.SnapshotBucket, "account/s", []byte(`{"position":`)); err != nil {
		t.Fatal(err)
	}
	if s, v, err := newRepo(t, st, es.WithCacheSize(0)).Load(ctx, "account/s"); err != nil || s.Balance != 25 || v != 25 {
		t.Fatalf("corrupt snapshot: %+v@%d %v", s, v, err)
	}
}

func TestSaveWritesSnapshotsWhenCached(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st, es.WithSnapshotEvery(4))
	var v uint64
	for range 9 {
		if _, _, err := r.Load(ctx, "account/c"); err != nil {
			t.Fatal(err)
		}
		var err error
		if v, err = r.Save(ctx, "account/c", v, ev(t, "account.deposited", amount{Cents: 3})); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Stats(); got.SnapshotsWritten != 2 || got.StoreLoads != 1 {
		t.Fatalf("stats %+v: want 2 snapshots (at 4 and 8) and one store load", got)
	}
	s, v, _ := r.Load(ctx, "account/c")
	if s.Balance != 27 || v != 9 {
		t.Fatalf("%+v@%d", s, v)
	}
}

func testUpcasting(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	// Events written in version 1, as {"dollars": N}, before cents existed.
	old := []*herald.Event{ev(t, "account.deposited", map[string]any{"dollars": 3}), ev(t, "account.deposited", map[string]any{"dollars": 2})}
	for _, e := range old {
		e.Subject = "account/u"
		e.Version = 1
	}
	if _, err := st.Append(ctx, old, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	up := es.NewUpcasters()
	// v1 → v2: dollars become {"amount": {"dollars": N}}; v2 → v3: cents.
	if err := up.Register("account.deposited", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var v struct{ Dollars int64 }
		if err := json.Unmarshal(d, &v); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"amount": map[string]int64{"dollars": v.Dollars}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := up.Register("account.deposited", 2, func(d json.RawMessage) (json.RawMessage, error) {
		var v struct{ Amount struct{ Dollars int64 } }
		if err := json.Unmarshal(d, &v); err != nil {
			return nil, err
		}
		return json.Marshal(amount{Cents: v.Amount.Dollars * 100})
	}); err != nil {
		t.Fatal(err)
	}
	if err := up.Register("account.deposited", 2, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }); err == nil {
		t.Fatal("a second upcaster for the same version was accepted")
	}
	if err := up.Register("account.deposited", 0, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }); err == nil {
		t.Fatal("version 0 accepted")
	}

	var versions []int
	r, err := es.NewRepository(busOn(t, st), func(s account, e *herald.Event) (account, error) {
		versions = append(versions, e.Version)
		return applyAccount(s, e)
	}, es.WithUpcasters(up))
	if err != nil {
		t.Fatal(err)
	}
	// New events are written at the current version and pass untouched.
	cur := ev(t, "account.deposited", amount{Cents: 1})
	cur.Version = 3
	if _, err := r.Save(ctx, "account/u", 2, cur); err != nil {
		t.Fatal(err)
	}
	s, v, err := r.Load(ctx, "account/u")
	if err != nil {
		t.Fatal(err)
	}
	if s.Balance != 501 || v != 3 {
		t.Fatalf("got %+v@%d, want 501@3", s, v)
	}
	if fmt.Sprint(versions) != "[3 3 3]" {
		t.Fatalf("apply saw versions %v, want all 3", versions)
	}
	// The stored events are untouched.
	for e, err := range st.Read(ctx, 0, herald.Filter{Subject: "account/u", Limit: 1}) {
		if err != nil || e.Version != 1 || string(e.Data) != `{"dollars":3}` {
			t.Fatalf("stored event changed: %+v %v", e, err)
		}
	}

	// An upcaster that fails, or returns something that is not an object.
	bad := es.NewUpcasters()
	_ = bad.Register("account.deposited", 1, func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`[1]`), nil })
	if _, _, err := newRepo(t, st, es.WithUpcasters(bad)).Load(ctx, "account/u"); err == nil {
		t.Fatal("non-object upcast accepted")
	}
}

func testConcurrentWritersOneWins(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	const writers = 8
	// One repository per writer: separate processes, as far as caching goes.
	repos := make([]*es.Repository[account], writers)
	for i := range repos {
		repos[i] = newRepo(t, st)
	}
	for round := range 10 {
		var start sync.WaitGroup
		start.Add(writers)
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				_, v, err := repos[i].Load(ctx, "account/race")
				if err != nil {
					t.Error(err)
				}
				start.Done()
				start.Wait() // everyone has read the same version
				_, err = repos[i].Save(ctx, "account/race", v, ev(t, "account.deposited", amount{Cents: 1}))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, herald.ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins.Load(), conflicts.Load())
		}
	}
	if v, _ := st.SubjectVersion(ctx, "account/race"); v != 10 {
		t.Fatalf("version %d after 10 rounds", v)
	}
}

func testUpdateRetriesConflicts(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	const writers, each = 6, 5
	var wg sync.WaitGroup
	for range writers {
		r := newRepo(t, st, es.WithUpdateAttempts(1000))
		wg.Go(func() {
			for range each {
				if _, err := r.Update(ctx, "account/u", func(s account, v uint64) ([]*herald.Event, error) {
					return []*herald.Event{ev(t, "account.deposited", amount{Cents: 1})}, nil
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s, v, err := newRepo(t, st).Load(ctx, "account/u")
	if err != nil || s.Balance != writers*each || v != writers*each {
		t.Fatalf("%+v@%d %v", s, v, err)
	}
}

func testStaleCacheHealsOnConflict(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st)
	if _, err := r.Save(ctx, "account/x", 0, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Load(ctx, "account/x"); err != nil {
		t.Fatal(err)
	}
	// Someone else writes behind the cache's back.
	if _, err := newRepo(t, st).Save(ctx, "account/x", 1, ev(t, "account.deposited", amount{Cents: 10})); err != nil {
		t.Fatal(err)
	}
	_, v, _ := r.Load(ctx, "account/x")
	if _, err := r.Save(ctx, "account/x", v, ev(t, "account.deposited", amount{Cents: 100})); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("want ErrConflict from the stale version, got %v", err)
	}
	s, v, err := r.Load(ctx, "account/x")
	if err != nil || s.Balance != 11 || v != 2 {
		t.Fatalf("after the conflict: %+v@%d %v", s, v, err)
	}
	if r.Stats().Conflicts != 1 {
		t.Fatalf("stats %+v", r.Stats())
	}
}

func TestCacheSingleFlight(t *testing.T) {
	synctest.Test(t, testCacheSingleFlight)
}

func testCacheSingleFlight(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	w := newRepo(t, st)
	if _, err := w.Save(ctx, "account/hot", 0, ev(t, "account.deposited", amount{Cents: 42})); err != nil {
		t.Fatal(err)
	}
	st.gate = make(chan struct{})
	st.reads.Store(0)
	r := newRepo(t, st)
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			s, v, err := r.Load(ctx, "account/hot")
			if err != nil || s.Balance != 42 || v != 1 {
				t.Errorf("%+v@%d %v", s, v, err)
			}
		})
	}
	// Every caller arrives (and waits) before the one read may proceed.
	synctest.Wait()
	if n := r.Stats().Loads; n != callers {
		t.Fatalf("%d of %d loads waiting", n, callers)
	}
	close(st.gate)
	wg.Wait()
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for %d concurrent loads, want 1", n, callers)
	}
	if got := r.Stats(); got.StoreLoads != 1 || got.Loads != callers {
		t.Fatalf("stats %+v", got)
	}
}

func TestSingleFlightWaiterContext(t *testing.T) {
	synctest.Test(t, testSingleFlightWaiterContext)
}

func testSingleFlightWaiterContext(t *testing.T) {
	st := newStore(t)
	st.gate = make(chan struct{})
	r := newRepo(t, st)
	leader := make(chan error, 1)
	go func() {
		_, _, err := r.Load(context.Background(), "account/slow")
		leader <- err
	}()
	synctest.Wait() // the leader's read waits at the gate
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := r.Load(ctx, "account/slow"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 20*time.Millisecond {
		t.Fatalf("a waiter whose context ends gets its error when it ends, got %v after %v", err, time.Since(start))
	}
	close(st.gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
}

func TestCacheEvictionBound(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	w := newRepo(t, st, es.WithCacheSize(0))
	for i := range 10 {
		if _, err := w.Save(ctx, fmt.Sprintf("account/%d", i), 0, ev(t, "account.deposited", amount{Cents: int64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	r := newRepo(t, st, es.WithCacheSize(3))
	for i := range 10 {
		if s, _, err := r.Load(ctx, fmt.Sprintf("account/%d", i)); err != nil || s.Balance != int64(i) {
			t.Fatalf("%d: %+v %v", i, s, err)
		}
		if c := r.Stats().Cached; c > 3 {
			t.Fatalf("cache holds %d > 3", c)
		}
	}
	if got := r.Stats(); got.Cached != 3 || got.StoreLoads != 10 {
		t.Fatalf("stats %+v", got)
	}
	// The three most recent are hits; the oldest was evicted.
	for _, i := range []int{9, 8, 7} {
		_, _, _ = r.Load(ctx, fmt.Sprintf("account/%d", i))
	}
	if got := r.Stats(); got.CacheHits != 3 || got.StoreLoads != 10 {
		t.Fatalf("stats after hits %+v", got)
	}
	_, _, _ = r.Load(ctx, "account/0")
	if got := r.Stats(); got.StoreLoads != 11 {
		t.Fatalf("evicted subject served from cache: %+v", got)
	}
	// Evict drops an entry.
	r.Evict("account/0")
	_, _, _ = r.Load(ctx, "account/0")
	if got := r.Stats(); got.StoreLoads != 12 {
		t.Fatalf("Evict kept the entry: %+v", got)
	}
}

func testSaveUpdatesCache(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	r := newRepo(t, st)
	if _, _, err := r.Load(ctx, "account/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Save(ctx, "account/k", 0, ev(t, "account.deposited", amount{Cents: 9})); err != nil {
		t.Fatal(err)
	}
	s, v, err := r.Load(ctx, "account/k")
	if err != nil || s.Balance != 9 || v != 1 {
		t.Fatalf("%+v@%d %v", s, v, err)
	}
	if got := r.Stats(); got.StoreLoads != 1 || got.CacheHits != 1 {
		t.Fatalf("Save did not update the cache: %+v", got)
	}
	// An idempotent retry of the same events stores nothing and leaves the
	// state right.
	again := ev(t, "account.deposited", amount{Cents: 5})
	dup := again.Clone()
	if _, err := r.Save(ctx, "account/k", 1, again); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Save(ctx, "account/k", 1, dup); err != nil {
		t.Fatalf("retried save: %v", err)
	}
	if s, v, _ := r.Load(ctx, "account/k"); s.Balance != 14 || v != 2 {
		t.Fatalf("after a duplicate save: %+v@%d", s, v)
	}
}

// Retention may delete a subject's events up to its snapshot, and no
// further: the state still loads whole.
func testRetentionKeepsWhatSnapshotsNeed(t *testing.T, newStore func(*testing.T) *countingStore) {
	ctx := context.Background()
	st := newStore(t)
	w := newRepo(t, st, es.WithSnapshotEvery(10), es.WithCacheSize(0))
	var v uint64
	for range 25 {
		var err error
		if v, err = w.Save(ctx, "account/p", v, ev(t, "account.deposited", amount{Cents: 1})); err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.Load(ctx, "account/p"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := herald.Prune(ctx, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 1, Force: true}}, time.Now(), herald.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, err := range st.Read(ctx, 0, herald.Filter{Subject: "account/p"}) {
		if err != nil {
			t.Fatal(err)
		}
		left++
	}
	if res.Deleted != 20 || left != 5 {
		t.Fatalf("prune deleted %d and left %d events; want the 20 up to the snapshot deleted, 5 kept", res.Deleted, left)
	}
	s, v, err := newRepo(t, st, es.WithCacheSize(0)).Load(ctx, "account/p")
	if err != nil || s.Balance != 25 || v != 25 {
		t.Fatalf("after retention: %+v@%d %v", s, v, err)
	}
}
