package nats_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

var faults = flag.Bool("nats.faults", false, "run the long NATS fault tests (cluster node restarts, leader kills) in full")
var traceConsume = flag.Bool("nats.trace", false, "log every delivery in the shared-consumer tests")
var benchPublishers = flag.Int("nats.publishers", 256, "concurrent publishers in BenchmarkAppend")

func TestMain(m *testing.M) {
	if cfg := os.Getenv(nodeEnv); cfg != "" {
		os.Exit(runNode(cfg)) // a node process of TestJepsen
	}
	leakcheck.Main(m,
		// The embedded server and the nats.go client leave these behind
		// for a moment after shutdown.
		goleak.IgnoreAnyFunction("time.Sleep"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// A stream's file store that nats-server creates while the node
		// is shutting down (a stream assignment processed during the
		// shutdown of a cluster node) is never stopped: it keeps its
		// state-flush ticker and, through it, the package-wide
		// access-time ticker. Both belong to nats-server and end with the
		// process (CI met them once, in a run where every test passed).
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	)
}

// server starts a single embedded JetStream server with file storage in a
// temporary folder.
func server(t testing.TB) *natsstore.Embedded {
	t.Helper()
	e, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func open(t testing.TB, e *natsstore.Embedded, opts ...natsstore.Option) *natsstore.Store {
	t.Helper()
	s, err := natsstore.Connect(context.Background(), e.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// jsStream opens JetStream stream name of the server s is connected to, as
// a raw JetStream client would.
func jsStream(t testing.TB, s *natsstore.Store, name string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

func ev(t testing.TB, name, subject string) *herald.Event {
	t.Helper()
	e, err := herald.NewEvent(name, map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Subject = subject
	if err := e.Prepare(time.Now()); err != nil { // the correlation id, as Publish sets it
		t.Fatal(err)
	}
	return e
}

func appendOne(t testing.TB, s herald.Store, e *herald.Event, opts herald.AppendOptions) herald.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), []*herald.Event{e}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func readAll(t testing.TB, s herald.Store, after uint64, f herald.Filter) []*herald.Event {
	t.Helper()
	var out []*herald.Event
	for e, err := range s.Read(context.Background(), after, f) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendReadGet(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		e := ev(t, "recording.completed", fmt.Sprintf("rec/%d", i%2))
		r := appendOne(t, s, e, herald.AppendOptions{})
		if r.Duplicate || r.Position != uint64(i+1) || e.Position != r.Position {
			t.Fatalf("append %d: %+v, event position %d", i, r, e.Position)
		}
		ids = append(ids, e.ID)
	}
	batch := []*herald.Event{ev(t, "a.b", ""), ev(t, "a.c.d", "x y"), ev(t, "z", "")}
	res, err := s.Append(ctx, batch, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Position != uint64(6+i) || r.Duplicate {
			t.Fatalf("batch result %d: %+v", i, r)
		}
	}
	if h, err := s.Head(ctx); err != nil || h != 8 {
		t.Fatalf("head %d, %v", h, err)
	}
	all := readAll(t, s, 0, herald.Filter{})
	if len(all) != 8 {
		t.Fatalf("read %d events", len(all))
	}
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Position)
		}
	}
	if got := readAll(t, s, 3, herald.Filter{}); len(got) != 5 || got[0].Position != 4 {
		t.Fatalf("read after 3: %d events", len(got))
	}
	if got := readAll(t, s, 0, herald.Filter{Name: "a.>"}); len(got) != 2 {
		t.Fatalf("a.>: %d events", len(got))
	}
	if got := readAll(t, s, 0, herald.Filter{Name: "a.*"}); len(got) != 1 || got[0].Name != "a.b" {
		t.Fatalf("a.*: %v", got)
	}
	if got := readAll(t, s, 0, herald.Filter{Subject: "rec/1"}); len(got) != 2 || got[0].Position != 2 || got[1].Position != 4 {
		t.Fatalf("subject rec/1: %d events", len(got))
	}
	if got := readAll(t, s, 0, herald.Filter{Subject: "x y", Name: "a.>"}); len(got) != 1 {
		t.Fatalf("subject x y: %d events", len(got))
	}
	if got := readAll(t, s, 0, herald.Filter{Limit: 3}); len(got) != 3 {
		t.Fatalf("limit 3: %d events", len(got))
	}
	if got := readAll(t, s, 0, herald.Filter{CorrelationID: ids[2]}); len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("correlation: %v", got)
	}
	g, err := s.Get(ctx, ids[3])
	if err != nil || g.ID != ids[3] || g.Position != 4 || string(g.Data) != `{"n":1}` {
		t.Fatalf("get: %+v %v", g, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if v, err := s.SubjectVersion(ctx, "rec/0"); err != nil || v != 3 {
		t.Fatalf("version rec/0 = %d, %v", v, err)
	}
	if v, err := s.SubjectVersion(ctx, "never"); err != nil || v != 0 {
		t.Fatalf("version never = %d, %v", v, err)
	}
}

func TestReadPagesAndLargeBatch(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	var batch []*herald.Event
	for range 1000 {
		batch = append(batch, ev(t, "bulk.item", ""))
	}
	res, err := s.Append(ctx, batch, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Position != 1 || res[999].Position != 1000 {
		t.Fatalf("positions %d..%d", res[0].Position, res[999].Position)
	}
	got := readAll(t, s, 0, herald.Filter{})
	if len(got) != 1000 {
		t.Fatalf("read %d", len(got))
	}
	for i, e := range got {
		if e.Position != uint64(i+1) || e.ID != batch[i].ID {
			t.Fatalf("event %d: position %d", i, e.Position)
		}
	}
	over := append(batch, ev(t, "bulk.item", ""))
	if _, err := s.Append(ctx, over, herald.AppendOptions{}); !errors.Is(err, herald.ErrTooLarge) {
		t.Fatalf("1001 events: %v", err)
	}
}

func TestIdempotentBeyondDuplicateWindow(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv, natsstore.WithDuplicateWindow(time.Second))
	ctx := context.Background()
	e := ev(t, "order.placed", "order/1")
	first := appendOne(t, s, e, herald.AppendOptions{})
	again := e.Clone()
	if r := appendOne(t, s, again, herald.AppendOptions{}); !r.Duplicate || r.Position != first.Position {
		t.Fatalf("within window: %+v", r)
	}
	// JetStream's duplicate window is kept by the server on the real clock.
	time.Sleep(1500 * time.Millisecond)
	if r := appendOne(t, s, e.Clone(), herald.AppendOptions{}); !r.Duplicate || r.Position != first.Position {
		t.Fatalf("beyond window: %+v", r)
	}
	// A batch mixing new and stored ids stores only the new ones.
	n := ev(t, "order.placed", "order/1")
	res, err := s.Append(ctx, []*herald.Event{e.Clone(), n, n.Clone()}, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[0].Position != 1 || res[1].Duplicate || res[1].Position != 2 || !res[2].Duplicate || res[2].Position != 2 {
		t.Fatalf("mixed batch: %+v", res)
	}
	if v, _ := s.SubjectVersion(ctx, "order/1"); v != 2 {
		t.Fatalf("version %d", v)
	}
	// An id first stored in a batch, appended alone: JetStream's duplicate
	// window answers for a freshly minted id.
	b1, b2 := ev(t, "order.placed", ""), ev(t, "order.placed", "")
	res, err = s.Append(ctx, []*herald.Event{b1, b2}, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := appendOne(t, s, b2.Clone(), herald.AppendOptions{}); !r.Duplicate || r.Position != res[1].Position {
		t.Fatalf("batch id appended alone: %+v, want position %d", r, res[1].Position)
	}
	// A retried conditional append whose events are all stored succeeds
	// without the version check.
	res, err = s.Append(ctx, []*herald.Event{n.Clone()}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("retried conditional append: %+v %v", res, err)
	}
}

// TestIndexRepair stores an event the way a process that died between the
// event and its index entry would leave it, and checks that the id is
// still refused once JetStream's duplicate window has passed.
func TestIndexRepair(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv, natsstore.WithDuplicateWindow(time.Second))
	ctx := context.Background()
	e := ev(t, "crash.case", "")
	e.Position = 0
	body := []byte(fmt.Sprintf(`{"id":%q,"name":"crash.case","timestamp":"2026-01-01T00:00:00Z","data":{},"correlation_id":%q,"source_plugin":"","version":1,"priority":"normal"}`, e.ID, e.ID))
	m := natsgo.NewMsg("herald.ev.0._.crash.case")
	m.Data = body
	m.Header.Set("Nats-Msg-Id", e.ID)
	if _, err := s.Conn().RequestMsg(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Past JetStream's duplicate window, which the server keeps on the real
	// clock: only the index can refuse the id now.
	time.Sleep(1200 * time.Millisecond)
	s.Close()
	s2 := open(t, srv) // repairs on open
	if r := appendOne(t, s2, e, herald.AppendOptions{}); !r.Duplicate || r.Position != 1 {
		t.Fatalf("after repair: %+v", r)
	}
	if g, err := s2.Get(ctx, e.ID); err != nil || g.Position != 1 {
		t.Fatalf("get: %v %v", g, err)
	}
}

func TestExpectedVersion(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	cv := func(n uint64) herald.AppendOptions {
		return herald.AppendOptions{CheckVersion: true, ExpectedVersion: n}
	}
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "acct.opened", "acct/1")}, cv(1)); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("expected 1 on a new subject: %v", err)
	}
	appendOne(t, s, ev(t, "acct.opened", "acct/1"), cv(0))
	res, err := s.Append(ctx, []*herald.Event{ev(t, "acct.credited", "acct/1"), ev(t, "acct.debited", "acct/1")}, cv(1))
	if err != nil || res[1].Position != res[0].Position+1 {
		t.Fatalf("batch at 1: %+v %v", res, err)
	}
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "acct.credited", "acct/1")}, cv(1)); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("stale expectation: %v", err)
	}
	// A conflicting batch stores nothing.
	h, _ := s.Head(ctx)
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "acct.credited", "acct/1"), ev(t, "acct.credited", "acct/1")}, cv(2)); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("stale batch: %v", err)
	}
	if h2, _ := s.Head(ctx); h2 != h {
		t.Fatalf("head moved from %d to %d", h, h2)
	}
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "x", "a"), ev(t, "x", "b")}, cv(0)); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("mixed subjects: %v", err)
	}
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "x", "")}, cv(0)); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("no subject: %v", err)
	}
	if v, _ := s.SubjectVersion(ctx, "acct/1"); v != 3 {
		t.Fatalf("version %d", v)
	}
}

// TestConcurrentSubjectWriters races conditional and unconditional appends
// on one subject from two stores: versions stay exact.
func TestConcurrentSubjectWriters(t *testing.T) {
	srv := server(t)
	a, b := open(t, srv), open(t, srv)
	ctx := context.Background()
	const writers, each = 6, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for w := range writers {
		st := a
		if w%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if w < 3 {
					if _, err := st.Append(ctx, []*herald.Event{ev(t, "hot.plain", "hot")}, herald.AppendOptions{}); err != nil {
						t.Error(err)
					}
					continue
				}
				v, err := st.SubjectVersion(ctx, "hot")
				if err != nil {
					t.Error(err)
					return
				}
				_, err = st.Append(ctx, []*herald.Event{ev(t, "hot.cond", "hot")}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: v})
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, herald.ErrConflict):
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	want := uint64(3*each + wins)
	if v, err := a.SubjectVersion(ctx, "hot"); err != nil || v != want {
		t.Fatalf("version %d, want %d (%v)", v, want, err)
	}
	if got := readAll(t, a, 0, herald.Filter{Subject: "hot"}); uint64(len(got)) != want {
		t.Fatalf("%d events, want %d", len(got), want)
	}
}

func TestWait(t *testing.T) {
	srv := server(t)
	a, b := open(t, srv), open(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan uint64, 1)
	go func() {
		h, err := a.Wait(ctx, 0)
		if err != nil {
			t.Error(err)
		}
		done <- h
	}()
	testwait.Blocked(t, 1, "store/nats.(*Store).Wait")
	appendOne(t, b, ev(t, "ping", ""), herald.AppendOptions{})
	select {
	case h := <-done:
		if h != 1 {
			t.Fatalf("woke at %d", h)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not wake on another store's append")
	}
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := a.Wait(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait at head: %v", err)
	}
	closed := make(chan error, 1)
	go func() { _, err := a.Wait(ctx, 1); closed <- err }()
	testwait.Blocked(t, 1, "store/nats.(*Store).Wait")
	a.Close()
	if err := <-closed; !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("wait across close: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := open(t, server(t))
	s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, []*herald.Event{ev(t, "a", "")}, herald.AppendOptions{}); !errors.Is(err, herald.ErrClosed) {
		t.Fatal(err)
	}
	for _, err := range s.Read(ctx, 0, herald.Filter{}) {
		if !errors.Is(err, herald.ErrClosed) {
			t.Fatal(err)
		}
	}
	if _, err := s.Head(ctx); !errors.Is(err, herald.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := s.GetValue(ctx, "b", "k"); !errors.Is(err, herald.ErrClosed) {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionState(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	e1, e2 := ev(t, "job.done", ""), ev(t, "job.done", "")
	e2.CorrelationID = e1.ID
	appendOne(t, s, e1, herald.AppendOptions{})
	appendOne(t, s, e2, herald.AppendOptions{})
	if _, ok, err := s.Checkpoint(ctx, "mailer"); ok || err != nil {
		t.Fatalf("fresh checkpoint: %v %v", ok, err)
	}
	sub := "mailer.v2/eu" // dots and slashes stay one name
	o := func(e *herald.Event, st herald.OutcomeStatus) herald.Outcome {
		return herald.Outcome{Subscription: sub, EventID: e.ID, EventName: e.Name, Position: e.Position, CorrelationID: e.CorrelationID, Status: st, Attempts: 1}
	}
	dl := herald.DeadLetter{Subscription: sub, Event: e2, Errors: []herald.AttemptError{{Attempt: 1, Error: "boom"}}, DeadAt: time.Now().UTC()}
	err := s.Commit(ctx, sub, herald.Progress{Checkpoint: 2,
		Outcomes:    []herald.Outcome{o(e1, herald.OutcomeSucceeded), o(e2, herald.OutcomeDeadLettered)},
		DeadLetters: []herald.DeadLetter{dl}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "other", herald.Progress{Checkpoint: 1, Outcomes: []herald.Outcome{{Subscription: "other", EventID: e1.ID, Position: 1, CorrelationID: e1.CorrelationID, Status: herald.OutcomeSucceeded}}}); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := s.Checkpoint(ctx, sub); p != 2 || !ok || err != nil {
		t.Fatalf("checkpoint %d %v %v", p, ok, err)
	}
	if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 2 || cps[sub] != 2 || cps["other"] != 1 {
		t.Fatalf("checkpoints %v %v", cps, err)
	}
	outs, err := s.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: e1.ID})
	if err != nil || len(outs) != 3 || outs[0].Subscription != "mailer.v2/eu" || outs[1].Subscription != "other" || outs[2].EventID != e2.ID {
		t.Fatalf("outcomes by correlation: %+v %v", outs, err)
	}
	if outs, _ := s.Outcomes(ctx, herald.OutcomeQuery{EventID: e1.ID}); len(outs) != 2 {
		t.Fatalf("outcomes by event: %+v", outs)
	}
	if outs, _ := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "other"}); len(outs) != 1 {
		t.Fatalf("outcomes by subscription: %+v", outs)
	}
	if outs, _ := s.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: e1.ID, Limit: 1}); len(outs) != 1 {
		t.Fatalf("limit: %+v", outs)
	}
	dls, err := s.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: sub})
	if err != nil || len(dls) != 1 || dls[0].ID != herald.DeadLetterID(sub, e2.ID) || dls[0].Event.ID != e2.ID {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
	if n, err := s.RedriveDeadLetters(ctx, herald.DeadLetterQuery{Subscription: sub}); n != 1 || err != nil {
		t.Fatalf("redrive %d %v", n, err)
	}
	if dls, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{OnlyRedrive: true}); len(dls) != 1 || !dls[0].Redrive {
		t.Fatalf("redrive marks: %+v", dls)
	}
	// Resolving removes it.
	if err := s.Commit(ctx, sub, herald.Progress{Checkpoint: 2, Resolved: []string{dls[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if dls, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{}); len(dls) != 0 {
		t.Fatalf("after resolve: %+v", dls)
	}
	if err := s.Commit(ctx, sub, herald.Progress{Checkpoint: 2, DeadLetters: []herald.DeadLetter{dl}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteDeadLetters(ctx, herald.DeadLetterQuery{EventID: e2.ID}); n != 1 || err != nil {
		t.Fatalf("delete %d %v", n, err)
	}
	if err := s.DeleteSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Checkpoint(ctx, sub); ok {
		t.Fatal("checkpoint survived DeleteSubscription")
	}
	// Outcomes go with their subscription (Store.DeleteSubscription).
	if outs, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: sub}); err != nil || len(outs) != 0 {
		t.Fatalf("outcomes after delete: %+v, %v", outs, err)
	}
}

// TestCommitSplit commits more entries than one atomic batch takes.
func TestCommitSplit(t *testing.T) {
	s := open(t, server(t), natsstore.WithMaxBatch(50))
	ctx := context.Background()
	var outs []herald.Outcome
	for i := range 120 {
		outs = append(outs, herald.Outcome{EventID: fmt.Sprint("e", i), Position: uint64(i + 1), CorrelationID: "c", Status: herald.OutcomeSucceeded})
	}
	if err := s.Commit(ctx, "big", herald.Progress{Checkpoint: 120, Outcomes: outs}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: "c"})
	if err != nil || len(got) != 120 || got[119].Position != 120 {
		t.Fatalf("%d outcomes, %v", len(got), err)
	}
}

func TestKV(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	if _, err := s.GetValue(ctx, "subs", "a"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b.c", "x/y=z", "-"} {
		if err := s.PutValue(ctx, "subs", k, []byte("v"+k)); err != nil {
			t.Fatal(k, err)
		}
	}
	if err := s.PutValue(ctx, "subs.other", "a", []byte("o")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutValue(ctx, "subs", "a", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetValue(ctx, "subs", "a"); err != nil || string(v) != "v2" {
		t.Fatalf("%q %v", v, err)
	}
	all, err := s.ListValues(ctx, "subs")
	if err != nil || len(all) != 4 || string(all["x/y=z"]) != "vx/y=z" || string(all["a"]) != "v2" {
		t.Fatalf("%v %v", all, err)
	}
	if err := s.DeleteValue(ctx, "subs", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteValue(ctx, "subs", "missing"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.ListValues(ctx, "subs"); len(all) != 3 {
		t.Fatalf("after delete: %v", all)
	}
	for _, bad := range []string{"", "a b", "a*", "é"} {
		if err := s.PutValue(ctx, bad, "k", nil); err == nil {
			t.Fatalf("bucket %q accepted", bad)
		}
		if err := s.PutValue(ctx, "b", bad, nil); err == nil {
			t.Fatalf("key %q accepted", bad)
		}
	}
}

func TestPrune(t *testing.T) {
	s := open(t, server(t))
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	var evs []*herald.Event
	for i := range 6 {
		e := ev(t, "debug.tick", "")
		if i < 3 {
			e.Timestamp = old
		}
		if i == 1 {
			e.Subject = "agg/1"
		}
		appendOne(t, s, e, herald.AppendOptions{})
		evs = append(evs, e)
	}
	keep := ev(t, "audit.entry", "")
	keep.Timestamp = old
	appendOne(t, s, keep, herald.AppendOptions{})
	if err := s.Commit(ctx, "sub", herald.Progress{Checkpoint: 1, Outcomes: []herald.Outcome{{EventID: evs[0].ID, CorrelationID: evs[0].CorrelationID, Position: 1, Status: herald.OutcomeSucceeded}}}); err != nil {
		t.Fatal(err)
	}
	rules := []herald.RetentionRule{{Pattern: "debug.>", MaxAge: herald.Duration(24 * time.Hour)}}
	res, err := herald.Prune(ctx, s, rules, time.Now(), herald.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 1 || res.Held != 2 {
		t.Fatalf("held by checkpoint: %+v", res)
	}
	if outs, _ := s.Outcomes(ctx, herald.OutcomeQuery{EventID: evs[0].ID}); len(outs) != 0 {
		t.Fatalf("outcomes of a pruned event survive: %+v", outs)
	}
	if err := s.Commit(ctx, "sub", herald.Progress{Checkpoint: 7}); err != nil {
		t.Fatal(err)
	}
	// A snapshot at position 1 still holds agg/1's event at 2.
	if err := s.PutValue(ctx, herald.SnapshotBucket, "agg/1", []byte(`{"position":1}`)); err != nil {
		t.Fatal(err)
	}
	res, err = herald.Prune(ctx, s, rules, time.Now(), herald.PruneOptions{})
	if err != nil || res.Deleted != 1 || res.Held != 1 {
		t.Fatalf("held by snapshot: %+v %v", res, err)
	}
	if err := s.PutValue(ctx, herald.SnapshotBucket, "agg/1", []byte(`{"position":2}`)); err != nil {
		t.Fatal(err)
	}
	res, err = herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: "debug.>", MaxCount: 2}}, time.Now(), herald.PruneOptions{})
	if err != nil || res.Deleted != 2 {
		t.Fatalf("max count: %+v %v", res, err)
	}
	left := readAll(t, s, 0, herald.Filter{})
	if len(left) != 3 || left[0].ID != evs[4].ID || left[2].ID != keep.ID {
		t.Fatalf("left: %d", len(left))
	}
	// Versions never go down; ids of pruned events may be stored again.
	if v, err := s.SubjectVersion(ctx, "agg/1"); err != nil || v != 1 {
		t.Fatalf("version after prune: %d %v", v, err)
	}
	r := appendOne(t, s, ev(t, "agg.changed", "agg/1"), herald.AppendOptions{CheckVersion: true, ExpectedVersion: 1})
	if r.Position != 8 {
		t.Fatalf("append after prune: %+v", r)
	}
	if _, err := s.Get(ctx, evs[0].ID); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("pruned get: %v", err)
	}
	if h, _ := s.Head(ctx); h != 8 {
		t.Fatalf("head %d", h)
	}
}

func TestOpenRefusesForeignStream(t *testing.T) {
	srv := server(t)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A stream of the same name that herald did not create.
	if _, err := nc.Request("$JS.API.STREAM.CREATE.HERALD_EVENTS", []byte(`{"name":"HERALD_EVENTS","subjects":["herald.ev.>"],"storage":"memory"}`), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstore.Open(context.Background(), nc); !errors.Is(err, herald.ErrIncompatibleStore) {
		t.Fatalf("open: %v", err)
	}
	if _, err := natsstore.Open(context.Background(), nc, natsstore.WithNamespace("Bad NS")); err == nil {
		t.Fatal("bad namespace accepted")
	}
}

func TestOpenEmbedded(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := natsstore.OpenEmbedded(ctx, natsstore.EmbeddedConfig{Dir: dir, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	e := ev(t, "kept.event", "")
	appendOne(t, s, e, herald.AppendOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The server stopped with the store; its files hold the event.
	s, err = natsstore.OpenEmbedded(ctx, natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if g, err := s.Get(ctx, e.ID); err != nil || g.Position != 1 {
		t.Fatalf("after restart: %v %v", g, err)
	}
}

// deleteRecorder is a NATS store that records the size of every
// DeleteEvents call.
type deleteRecorder struct {
	*natsstore.Store
	calls []int
}

func (r *deleteRecorder) DeleteEvents(ctx context.Context, positions []uint64) (int, error) {
	r.calls = append(r.calls, len(positions))
	return r.Store.DeleteEvents(ctx, positions)
}

// TestPruneStreamsTheLog prunes a log larger than the planner's batch:
// the store is handed at most one batch of positions at a time (it never
// holds the stream), and the result is what the rules say, by age and by
// count, with subject versions kept.
func TestPruneStreamsTheLog(t *testing.T) {
	s := &deleteRecorder{Store: open(t, server(t))}
	ctx := context.Background()
	const n, batch = 2500, 1000
	old := time.Now().Add(-48 * time.Hour)
	var debug []*herald.Event
	for i := 0; i < n; i += 250 {
		var evs []*herald.Event
		for j := i; j < i+250; j++ {
			e := ev(t, "app.changed", fmt.Sprintf("agg/%d", j%5))
			if j%2 == 0 {
				e = ev(t, "debug.tick", "")
				debug = append(debug, e)
			}
			e.Timestamp = old
			evs = append(evs, e)
		}
		if _, err := s.Append(ctx, evs, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rules := []herald.RetentionRule{
		{Pattern: "debug.>", MaxCount: 100},
		{Pattern: ">", MaxAge: herald.Duration(time.Hour)},
	}
	res, err := herald.Prune(ctx, s, rules, time.Now(), herald.PruneOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	if res != (herald.PruneResult{Deleted: n - 100}) {
		t.Fatalf("Prune = %+v, want %d deleted", res, n-100)
	}
	if len(s.calls) != 3 {
		t.Errorf("DeleteEvents called %d times (%v), want 3", len(s.calls), s.calls)
	}
	for _, c := range s.calls {
		if c > batch {
			t.Errorf("DeleteEvents got %d positions, more than the batch of %d", c, batch)
		}
	}
	left := readAll(t, s, 0, herald.Filter{})
	if len(left) != 100 || left[0].ID != debug[len(debug)-100].ID || left[99].ID != debug[len(debug)-1].ID {
		t.Fatalf("after Prune the log holds %d events, want the 100 newest debug ones", len(left))
	}
	for i := range 5 {
		if v, err := s.SubjectVersion(ctx, fmt.Sprintf("agg/%d", i)); err != nil || v != n/2/5 {
			t.Errorf("version of agg/%d after pruning all its events = %d, %v; want %d", i, v, err, n/2/5)
		}
	}
}

// The embedded server keeps every id of the duplicate window in memory
// (about 130 bytes each), so the default window is short enough to bound
// that at a sustained rate: 2 minutes, not JetStream's 10 minutes. A
// stream keeps the window it was made with.
func TestDefaultDuplicateWindow(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv)
	_, st := jsStream(t, s, "HERALD_EVENTS")
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Duplicates; got != 2*time.Minute {
		t.Fatalf("default duplicate window %v, want 2m", got)
	}
	other := open(t, srv, natsstore.WithNamespace("wide"), natsstore.WithDuplicateWindow(10*time.Minute))
	_, st = jsStream(t, other, "WIDE_EVENTS")
	if info, err = st.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Duplicates; got != 10*time.Minute {
		t.Fatalf("duplicate window %v, want the 10m asked for", got)
	}
}
