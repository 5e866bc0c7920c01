// Package storetest is the conformance suite of herald.Store: the Store
// contract written as tests. Every backend runs it unchanged from its own
// tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) herald.Store {
//			return memory.New()
//		}, storetest.Features{})
//	}
//
// New behaviour of stores is specified here first. The suite only uses the
// herald.Store interface, creates its own events, and never modifies an
// event a store returned. Its property tests (pgregory.net/rapid) run
// -rapid.checks random cases each, 100 by default; on the memory store the
// whole suite takes a few seconds with -race.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// Features says what a backend can do beyond the common contract, so the
// suite runs the tests that apply to it. The zero value describes a store
// that lives in memory, in one process.
type Features struct {
	// Only, when not empty, runs only the suite's groups of these names
	// (the subtests of Run: "Outcomes", "Prune", …), for a store run a
	// second time in another configuration that touches only them.
	Only []string

	// Reopen opens again the data of a store the suite has just closed, as
	// a process that restarts would, and returns the new handle. When set,
	// the suite checks that everything it wrote survives Close and reopen.
	// The suite closes the new handle. nil means the store is not persistent.
	Reopen func(t *testing.T, closed herald.Store) herald.Store

	// OpenSecond opens a second handle on the data of the open store s, as
	// a second process would. When nil, the tests of several owners are
	// skipped. With SharedAcrossProcesses it must succeed and both handles
	// must see one log (the suite closes the second handle); without, it
	// must fail with an error wrapping herald.ErrStoreLocked.
	OpenSecond func(t *testing.T, s herald.Store) (herald.Store, error)

	// SharedAcrossProcesses is set for stores that several processes use at
	// once (JetStream), and unset for stores that one process owns (SQLite).
	SharedAcrossProcesses bool

	// NewBounded returns a new store that holds at most n events. When set,
	// the suite checks the store's behaviour when full: a batch larger than
	// the bound fails with ErrStoreFull, an append that finds no room fails
	// with ErrStoreFull or ErrBackpressure, and neither stores anything.
	NewBounded func(t *testing.T, n int) herald.Store

	// KeepsDeletedIDs is set for stores that remember the id and position
	// of every event retention deleted (SQLite): appending such an id again
	// is a duplicate at its first position, forever.
	KeepsDeletedIDs bool

	// DataDir returns the folder holding the files of the open store s
	// (for a store on a server, the server's storage folder). When set, the
	// suite checks that DeleteValue erases the value: no file under the
	// folder holds its bytes, while the store is open and after Close.
	DataDir func(t *testing.T, s herald.Store) string

	// WakeTimeout bounds how long the suite waits for a store to notice an
	// append in Wait, or for an expected event to show up. It is a
	// ceiling: nothing the suite checks should come close to it, on a
	// loaded machine either. Zero means 30 s.
	WakeTimeout time.Duration
}

func (f Features) wakeTimeout() time.Duration {
	if f.WakeTimeout > 0 {
		return f.WakeTimeout
	}
	return 30 * time.Second
}

// suite carries what every test needs.
type suite struct {
	newStore func(t *testing.T) herald.Store
	f        Features
}

// open returns a new store that is closed when the test ends.
func (s *suite) open(t *testing.T) herald.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Run runs the conformance suite against the stores newStore returns. Each
// test gets a new, empty store, which the suite closes when the test ends
// (Close must be safe to call more than once). newStore may use t.TempDir,
// t.Cleanup and t.Fatal.
func Run(t *testing.T, newStore func(t *testing.T) herald.Store, f Features) {
	s := &suite{newStore: newStore, f: f}
	for _, g := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"EventLog", s.testEventLog},
		{"Concurrency", s.testConcurrency},
		{"Wait", s.testWait},
		{"Checkpoints", s.testCheckpoints},
		{"Outcomes", s.testOutcomes},
		{"DeadLetters", s.testDeadLetters},
		{"DeadLetterCounts", s.testDeadLetterCounts},
		{"Counts", s.testCounts},
		{"KV", s.testKV},
		{"Prune", s.testPrune},
		{"Limits", s.testLimits},
		{"Close", s.testClose},
		{"Properties", s.testProperties},
		{"Durability", s.testDurability},
		{"Owners", s.testOwners},
		{"Bounded", s.testBounded},
		{"Bus", s.testBus},
	} {
		if len(f.Only) == 0 || slices.Contains(f.Only, g.name) {
			t.Run(g.name, g.run)
		}
	}
}

// base is the timestamp of the suite's events unless a test sets one: a
// fixed instant, so that time-range filters and retention are exact.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// event returns a prepared event named name with unique id and data
// {"n": n}. edit, when given, changes it before it is prepared.
func event(t testing.TB, name string, n int, edit ...func(e *herald.Event)) *herald.Event {
	t.Helper()
	e := &herald.Event{
		ID:        herald.NewID(),
		Name:      name,
		Timestamp: base.Add(time.Duration(n) * time.Second),
		Data:      json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
	for _, f := range edit {
		f(e)
	}
	if err := e.Prepare(time.Now()); err != nil {
		t.Fatalf("preparing test event: %v", err)
	}
	return e
}

func subject(s string) func(*herald.Event)     { return func(e *herald.Event) { e.Subject = s } }
func withID(id string) func(*herald.Event)     { return func(e *herald.Event) { e.ID = id } }
func correlation(c string) func(*herald.Event) { return func(e *herald.Event) { e.CorrelationID = c } }
func source(p string) func(*herald.Event)      { return func(e *herald.Event) { e.SourcePlugin = p } }
func at(ts time.Time) func(*herald.Event)      { return func(e *herald.Event) { e.Timestamp = ts } }
func priority(p herald.Priority) func(*herald.Event) {
	return func(e *herald.Event) { e.Priority = p }
}

// again returns a fresh copy of e without its position, as a client that
// retries would send it.
func again(e *herald.Event) *herald.Event {
	c := e.Clone()
	c.Position = 0
	return c
}

func mustAppend(t testing.TB, s herald.Store, opts herald.AppendOptions, events ...*herald.Event) []herald.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), events, opts)
	if err != nil {
		t.Fatalf("Append(%d events): %v", len(events), err)
	}
	if len(res) != len(events) {
		t.Fatalf("Append(%d events) returned %d results", len(events), len(res))
	}
	return res
}

func readAll(t testing.TB, s herald.Store, after uint64, f herald.Filter) []*herald.Event {
	t.Helper()
	evs, err := collect(context.Background(), s, after, f)
	if err != nil {
		t.Fatalf("Read(after %d, %+v): %v", after, f, err)
	}
	return evs
}

func collect(ctx context.Context, s herald.Store, after uint64, f herald.Filter) ([]*herald.Event, error) {
	var out []*herald.Event
	for e, err := range s.Read(ctx, after, f) {
		if err != nil {
			return out, err
		}
		if e == nil {
			return out, errors.New("the Read iterator yielded a nil event without an error")
		}
		out = append(out, e)
	}
	return out, nil
}

func ids(evs []*herald.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func positions(evs []*herald.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

func head(t testing.TB, s herald.Store) uint64 {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

func subjectVersion(t testing.TB, s herald.Store, subj string) uint64 {
	t.Helper()
	v, err := s.SubjectVersion(context.Background(), subj)
	if err != nil {
		t.Fatalf("SubjectVersion(%q): %v", subj, err)
	}
	return v
}

// sameEvent reports how got differs from want, or "" when it is the same
// event: every field equal, Data equal as JSON, and got's Position pos.
func sameEvent(got, want *herald.Event, pos uint64) string {
	if got == nil {
		return "got nil"
	}
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Name", got.Name == want.Name, got.Name, want.Name)
	check("Timestamp", got.Timestamp.Equal(want.Timestamp), got.Timestamp, want.Timestamp)
	check("Data", jsonEqual(got.Data, want.Data), string(got.Data), string(want.Data))
	check("CorrelationID", got.CorrelationID == want.CorrelationID, got.CorrelationID, want.CorrelationID)
	check("CausationID", got.CausationID == want.CausationID, got.CausationID, want.CausationID)
	check("SourcePlugin", got.SourcePlugin == want.SourcePlugin, got.SourcePlugin, want.SourcePlugin)
	check("Subject", got.Subject == want.Subject, got.Subject, want.Subject)
	check("Version", got.Version == want.Version, got.Version, want.Version)
	check("Priority", got.Priority == want.Priority, got.Priority, want.Priority)
	check("Metadata", maps.Equal(got.Metadata, want.Metadata), got.Metadata, want.Metadata)
	check("Position", got.Position == pos, got.Position, pos)
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprint(diffs)
}

func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// eventually polls cond until it holds or the wake timeout passes.
func (s *suite) eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testwait.Within(t, s.f.wakeTimeout(), what, cond)
}

// waitIn is st.Wait under a name of its own: testwait.Blocked(t, n,
// waitInFunc) sees the goroutines that wait in it.
//
//go:noinline
func waitIn(ctx context.Context, st herald.Store, after uint64) (uint64, error) {
	return st.Wait(ctx, after)
}

// waitInFunc is waitIn's name in a stack trace.
const waitInFunc = "store/storetest.waitIn"

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }
