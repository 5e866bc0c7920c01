package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idCases appends one event down each of the store's append paths and
// returns them with their positions: an id herald minted now, without a
// subject (published directly, indexed in the background); one with a
// subject (group commit); a client-chosen id that is not a UUIDv7 (KV
// index); and two events of one atomic batch.
func idCases(t *testing.T, s *natsstore.Store) []*herald.Event {
	t.Helper()
	direct := ev(t, "ids.direct", "")
	grouped := ev(t, "ids.grouped", "ids/1")
	client := ev(t, "ids.client", "")
	client.ID = "order-42/attempt"
	out := []*herald.Event{direct, grouped, client}
	for _, e := range out {
		if r := appendOne(t, s, e, herald.AppendOptions{}); r.Duplicate {
			t.Fatalf("%s: first append is a duplicate", e.Name)
		}
	}
	b1, b2 := ev(t, "ids.batch", ""), ev(t, "ids.batch", "ids/2")
	if _, err := s.Append(context.Background(), []*herald.Event{b1, b2}, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	return append(out, b1, b2)
}

// checkDuplicates appends every event again, alone, once with the same
// content and once with other content, and then all of them in one batch:
// each is a duplicate of its first position and the head stays put.
func checkDuplicates(t *testing.T, s *natsstore.Store, evs []*herald.Event) {
	t.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		for _, changed := range []bool{false, true} {
			a := again(e)
			if changed {
				a.Data = []byte(`{"n":999}`)
			}
			res, err := s.Append(ctx, []*herald.Event{a}, herald.AppendOptions{})
			if err != nil {
				t.Fatalf("%s again (other content %v): %v", e.Name, changed, err)
			}
			if !res[0].Duplicate || res[0].Position != e.Position {
				t.Errorf("%s again (other content %v) = %+v, want a duplicate at %d", e.Name, changed, res[0], e.Position)
			}
		}
	}
	batch := make([]*herald.Event, len(evs))
	for i, e := range evs {
		batch[i] = again(e)
	}
	res, err := s.Append(ctx, batch, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Duplicate || r.Position != evs[i].Position {
			t.Errorf("%s again in a batch = %+v, want a duplicate at %d", evs[i].Name, r, evs[i].Position)
		}
	}
	if h, err := s.Head(ctx); err != nil || h != head {
		t.Errorf("head %d, %v after appending duplicates; want %d", h, err, head)
	}
	for _, e := range evs {
		if g, err := s.Get(ctx, e.ID); err != nil || g.Position != e.Position {
			t.Errorf("Get(%s) = %v, %v; want position %d", e.ID, g, err, e.Position)
		}
	}
}

// TestIdempotentAfterWindowAndRestart: every kind of id stays a duplicate
// once JetStream's duplicate window has passed, through the same store,
// and after the store and the server restart.
func TestIdempotentAfterWindowAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsstore.Connect(context.Background(), srv.ClientURL(), natsstore.WithDuplicateWindow(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	evs := idCases(t, s)
	// JetStream keeps its duplicate window on the real clock.
	time.Sleep(1500 * time.Millisecond)
	checkDuplicates(t, s, evs)
	s.Close()
	srv.Shutdown()

	srv, err = natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	s2 := open(t, srv)
	checkDuplicates(t, s2, evs)
}

// TestIdempotentIndexedInBackground: an id published directly (its index
// entry written in the background) is a duplicate through another store
// once the window has passed, and Close writes the entries still queued.
func TestIdempotentIndexedInBackground(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv, natsstore.WithDuplicateWindow(time.Second))
	var evs []*herald.Event
	for range 300 {
		e := ev(t, "ids.many", "")
		appendOne(t, s, e, herald.AppendOptions{})
		evs = append(evs, e)
	}
	// Within the window JetStream itself refuses the id.
	if r := appendOne(t, s, again(evs[0]), herald.AppendOptions{}); !r.Duplicate || r.Position != evs[0].Position {
		t.Fatalf("within the window: %+v, want a duplicate at %d", r, evs[0].Position)
	}
	s.Close() // the queued index entries are written before it returns
	time.Sleep(1500 * time.Millisecond)
	other := open(t, srv)
	checkDuplicates(t, other, evs)
}

// TestIdempotentAfterLeaderChange: with three replicas, the ids stay
// duplicates after the event stream's leader is killed and another node
// leads, beyond the duplicate window.
func TestIdempotentAfterLeaderChange(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var s *natsstore.Store
	testwait.NoError(t, 30*time.Second, "a store on the cluster", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		s, err = natsstore.Connect(ctx, c.urls(), natsstore.WithReplicas(3), natsstore.WithRequestTimeout(3*time.Second),
			natsstore.WithDuplicateWindow(time.Second))
		return err
	})
	t.Cleanup(func() { s.Close() })
	evs := idCases(t, s)
	time.Sleep(1500 * time.Millisecond)
	l := c.leader(t, s)
	c.stop(l)
	testwait.NoError(t, 30*time.Second, "a new leader takes appends", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := s.Append(ctx, []*herald.Event{ev(t, "ids.after", "")}, herald.AppendOptions{})
		return err
	})
	if nl := c.leader(t, s); nl == l {
		t.Fatalf("node %d still leads", l)
	}
	checkDuplicates(t, s, evs)
	c.start(l)
}

// TestRepairStreamsLongGaps: events stored without index entries (a
// process that died before writing them), more than a page of them,
// are indexed by the repair of the next store that opens, which streams
// their headers: every id is a duplicate once the window has passed.
func TestRepairStreamsLongGaps(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv, natsstore.WithDuplicateWindow(time.Second))
	var evs []*herald.Event
	for i := range 700 {
		e := ev(t, "crash.many", "")
		if i%7 == 0 {
			e.ID = fmt.Sprintf("client-%d", i) // KV-indexed ids among them
		}
		if storeUnindexed(t, s, e); e.Position != uint64(i+1) {
			t.Fatalf("stored at %d, want %d", e.Position, i+1)
		}
		evs = append(evs, e)
	}
	time.Sleep(1500 * time.Millisecond)
	s.Close()
	s2 := open(t, srv) // repairs on open
	checkDuplicates(t, s2, evs)
}

// storeUnindexed stores e as a process that died before indexing it would
// leave it: in the event stream, without an index entry; it sets
// e.Position.
func storeUnindexed(t *testing.T, s *natsstore.Store, e *herald.Event) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"name":%q,"timestamp":"2026-01-01T00:00:00Z","data":{},"correlation_id":%q,"source_plugin":"","version":1,"priority":"normal"}`, e.ID, e.Name, e.ID)
	m := natsgo.NewMsg("herald.ev.0._." + e.Name)
	m.Data = []byte(body)
	m.Header.Set("Nats-Msg-Id", e.ID)
	resp, err := s.Conn().RequestMsg(m, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ack struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Seq == 0 {
		t.Fatalf("raw append: %s %v", resp.Data, err)
	}
	e.Position = ack.Seq
}

// watermark is the id index's watermark: the position through which
// every event is known to be indexed (0 when there is none).
func watermark(t *testing.T, nc *natsgo.Conn) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), "herald_ids")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "=watermark")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCloseMovesTheWatermark: a store that appended alone indexed every
// event itself, so Close moves the watermark to the head (without
// reading), and the next store to open has nothing to repair.
func TestCloseMovesTheWatermark(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv)
	evs := idCases(t, s)
	for range 100 {
		e := ev(t, "ids.more", "")
		appendOne(t, s, e, herald.AppendOptions{})
		evs = append(evs, e)
	}
	head := evs[len(evs)-1].Position
	s.Close()
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if wm := watermark(t, nc); wm != head {
		t.Fatalf("watermark %d after Close, want the head %d", wm, head)
	}
}

// TestCloseLeavesTheWatermarkBelowOthers: an event another process stored
// and never indexed, among the store's own, keeps Close from moving the
// watermark past it; the next repair indexes it.
func TestCloseLeavesTheWatermarkBelowOthers(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv)
	for range 10 {
		appendOne(t, s, ev(t, "own.e", ""), herald.AppendOptions{})
	}
	other := ev(t, "crash.e", "")
	storeUnindexed(t, s, other)
	for range 10 {
		appendOne(t, s, ev(t, "own.e", ""), herald.AppendOptions{})
	}
	s.Close()
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if wm := watermark(t, nc); wm >= other.Position {
		t.Fatalf("watermark %d after Close, past the unindexed event at %d", wm, other.Position)
	}
}

// TestRepairIndexesOthersAmongItsOwn: a live store's periodic repair
// indexes the events another process stored and never indexed, interleaved
// with the store's own (which it knows indexed and skips): every id stays
// a duplicate once the duplicate window has passed. (That it skips its
// own is seen in TestCloseMovesTheWatermark; this test guards what it must
// not skip.)
func TestRepairIndexesOthersAmongItsOwn(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv, natsstore.WithDuplicateWindow(time.Second))
	var evs []*herald.Event
	for i := range 60 {
		if i%3 == 0 {
			e := ev(t, "crash.mixed", "")
			storeUnindexed(t, s, e)
			evs = append(evs, e)
			continue
		}
		e := ev(t, "own.mixed", "")
		appendOne(t, s, e, herald.AppendOptions{})
		evs = append(evs, e)
	}
	head := evs[len(evs)-1].Position
	// The store repairs every second (a quarter of the window, at least a
	// second): wait until a repair has passed the head.
	testwait.For(t, "a repair past the head", func() bool { return watermark(t, s.Conn()) >= head })
	time.Sleep(1500 * time.Millisecond) // JetStream's window is on the real clock
	checkDuplicates(t, s, evs)
}
