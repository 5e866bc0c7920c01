package nats_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
)

// worker fetches from a shared consumer and acks, recording what it saw.
type worker struct {
	name string
	c    herald.Consumer
	mu   sync.Mutex
	seen []*herald.Event
	ack  bool
	log  *handled // shared by the workers of one test
}

// handled records the order in which all workers handled events.
type handled struct {
	mu  sync.Mutex
	evs []*herald.Event
}

func (h *handled) add(e *herald.Event) {
	h.mu.Lock()
	h.evs = append(h.evs, e)
	h.mu.Unlock()
}

func (w *worker) run(ctx context.Context, t *testing.T, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		ds, err := w.c.Fetch(ctx, 16)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, herald.ErrClosed) {
				t.Errorf("%s: fetch: %v", w.name, err)
			}
			return
		}
		for _, d := range ds {
			w.mu.Lock()
			if *traceConsume {
				t.Logf("%s %v: pos %d subj %s attempt %d", w.name, time.Now().Format("05.000"), d.Event().Position, d.Event().Subject, d.Attempt())
			}
			w.seen = append(w.seen, d.Event())
			ack := w.ack
			w.mu.Unlock()
			if w.log != nil {
				w.log.add(d.Event())
			}
			if ack {
				if err := d.Ack(ctx); err != nil {
					t.Errorf("%s: ack: %v", w.name, err)
				}
			}
		}
	}
}

func (w *worker) events() []*herald.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*herald.Event(nil), w.seen...)
}

func publishSubjects(t *testing.T, s herald.Store, n, subjects int) []*herald.Event {
	t.Helper()
	var out []*herald.Event
	for i := range n {
		e := ev(t, "work.item", fmt.Sprintf("item/%d", i%subjects))
		appendOne(t, s, e, herald.AppendOptions{})
		out = append(out, e)
	}
	return out
}

// checkSubjectOrder fails when a worker saw two events of one subject out
// of log order (redeliveries aside).
func checkSubjectOrder(t *testing.T, name string, evs []*herald.Event) {
	t.Helper()
	last := map[string]uint64{}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		if p := last[e.Subject]; p > e.Position {
			t.Errorf("%s: subject %s: position %d after %d", name, e.Subject, e.Position, p)
		}
		last[e.Subject] = e.Position
	}
}

func TestSharedConsumeSplitsWork(t *testing.T) {
	t.Parallel()
	srv := server(t)
	a, b := open(t, srv), open(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	// Each event must go to one worker only: none may stay unacknowledged
	// past the ack wait (JetStream would deliver it again, maybe to the
	// other worker), which a loaded machine can make of 2 s between the
	// pull and the ack. 10 s also spaces heartbeats a second apart, a
	// member counting as gone after 3 s without one.
	opts := herald.ConsumeOptions{AckWait: 10 * time.Second, MaxInFlight: 64}
	ca, err := a.Consume(ctx, "shared", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Consume(ctx, "shared", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	log := &handled{}
	wa, wb := &worker{name: "a", c: ca, ack: true, log: log}, &worker{name: "b", c: cb, ack: true, log: log}
	var wg sync.WaitGroup
	wg.Add(2)
	wctx, wcancel := context.WithCancel(ctx)
	go wa.run(wctx, t, &wg)
	go wb.run(wctx, t, &wg)
	// Some events while a may still hold every partition, then more until
	// both have handled some: they learn of each other from heartbeats
	// (every second, on the real clock: membership is not visible from
	// outside the store), and a partition moves only once its old owner
	// has settled what it pulled.
	pub := publishSubjects(t, a, 100, 30)
	testwait.Within(t, 60*time.Second, "both a and b handling events", func() bool {
		pub = append(pub, publishSubjects(t, a, 5, 30)...)
		return len(wa.events()) > 0 && len(wb.events()) > 0
	})
	pub = append(pub, publishSubjects(t, a, 200, 30)...)
	appendOne(t, a, ev(t, "other.thing", ""), herald.AppendOptions{}) // filtered out
	testwait.Within(t, 60*time.Second, "every event handled by a or b", func() bool { return len(wa.events())+len(wb.events()) >= len(pub) })
	wcancel()
	wg.Wait()
	ca.Close()
	cb.Close()
	got := map[string]string{}
	for _, w := range []*worker{wa, wb} {
		for _, e := range w.events() {
			if e.Name != "work.item" {
				t.Fatalf("%s got %s", w.name, e.Name)
			}
			if prev, ok := got[e.ID]; ok && prev != w.name {
				t.Errorf("event %d went to %s and %s", e.Position, prev, w.name)
			}
			got[e.ID] = w.name
		}
		checkSubjectOrder(t, w.name, w.events())
	}
	if len(got) != len(pub) {
		t.Fatalf("handled %d of %d", len(got), len(pub))
	}
	// Across both workers, each subject was handled in log order, also
	// when its partition moved from a to b.
	log.mu.Lock()
	checkSubjectOrder(t, "a+b", log.evs)
	log.mu.Unlock()
	if len(wa.events()) == 0 || len(wb.events()) == 0 {
		t.Fatalf("work not shared: a handled %d, b handled %d", len(wa.events()), len(wb.events()))
	}
	t.Logf("a handled %d, b handled %d", len(wa.events()), len(wb.events()))
}

// TestSharedConsumeFailover kills one of two processes mid-work (its
// connection drops, nothing acknowledged): the other one handles all.
func TestSharedConsumeFailover(t *testing.T) {
	t.Parallel()
	srv := server(t)
	a, b := open(t, srv), open(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := herald.ConsumeOptions{AckWait: time.Second, MaxInFlight: 32}
	pub := publishSubjects(t, b, 200, 20)
	ca, err := a.Consume(ctx, "fo", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	// a takes every partition and handles a few events without acking.
	wa := &worker{name: "a", c: ca}
	ds, err := ca.Fetch(ctx, 8)
	if err != nil || len(ds) == 0 {
		t.Fatalf("a fetch: %d %v", len(ds), err)
	}
	cb, err := b.Consume(ctx, "fo", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	wb := &worker{name: "b", c: cb, ack: true}
	var wg sync.WaitGroup
	wg.Add(1)
	go wb.run(ctx, t, &wg)
	// a dies: its connection goes away without closing anything.
	a.Conn().Close()
	testwait.Within(t, 60*time.Second, "b handling every event a held", func() bool {
		ids := map[string]bool{}
		for _, e := range wb.events() {
			ids[e.ID] = true
		}
		return len(ids) == len(pub)
	})
	cancel()
	wg.Wait()
	cb.Close()
	checkSubjectOrder(t, "b", wb.events())
	_ = wa
}

func TestSharedConsumeStartAndValidation(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishSubjects(t, s, 10, 3)
	if _, err := s.Consume(ctx, "bad", "work..x", herald.StartEarliest, herald.ConsumeOptions{}); err == nil {
		t.Fatal("bad pattern accepted")
	}
	c, err := s.Consume(ctx, "from5", ">", herald.StartPosition(5), herald.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []uint64
	for len(got) < 6 {
		ds, err := c.Fetch(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			got = append(got, d.Event().Position)
			if d.Attempt() != 1 {
				t.Fatalf("attempt %d", d.Attempt())
			}
			d.Ack(ctx)
		}
	}
	for _, p := range got {
		if p < 5 {
			t.Fatalf("delivered position %d before the start", p)
		}
	}
	// Latest: only what comes next.
	cl, err := s.Consume(ctx, "latest", ">", herald.StartLatest, herald.ConsumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	e := ev(t, "work.new", "")
	appendOne(t, s, e, herald.AppendOptions{})
	ds, err := cl.Fetch(ctx, 10)
	if err != nil || len(ds) != 1 || ds[0].Event().ID != e.ID {
		t.Fatalf("latest: %v %v", ds, err)
	}
	// Nak redelivers with the next attempt number.
	if err := ds[0].Nak(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ds, err = cl.Fetch(ctx, 10)
	if err != nil || len(ds) != 1 || ds[0].Attempt() != 2 {
		t.Fatalf("redelivery: %v %v", ds, err)
	}
	ds[0].Ack(ctx)
	if err := s.DeleteSubscription(ctx, "latest"); err != nil {
		t.Fatal(err)
	}
	short, c2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer c2()
	if _, err := cl.Fetch(short, 1); err == nil {
		t.Fatal("fetch from a deleted subscription delivered")
	}
	_ = natsstore.Option(nil)
}

// TestPruneHoldsSharedSubscriptions: retention keeps what a shared
// subscription's consumers have not acknowledged, whatever checkpoints say.
func TestPruneHoldsSharedSubscriptions(t *testing.T) {
	t.Parallel()
	s := open(t, server(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := time.Now().Add(-48 * time.Hour)
	for range 10 {
		e := ev(t, "work.item", "")
		e.Timestamp = old
		appendOne(t, s, e, herald.AppendOptions{})
	}
	c, err := s.Consume(ctx, "slow", ">", herald.StartEarliest, herald.ConsumeOptions{AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ds []herald.Delivery
	for len(ds) < 10 {
		got, err := c.Fetch(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, got...)
	}
	// The first three are done; the rest are not acknowledged.
	positions := map[uint64]herald.Delivery{}
	for _, d := range ds {
		positions[d.Event().Position] = d
	}
	for p := uint64(1); p <= 3; p++ {
		positions[p].Ack(ctx)
	}
	rules := []herald.RetentionRule{{Pattern: ">", MaxAge: herald.Duration(time.Hour)}}
	testwait.Within(t, 30*time.Second, "a prune that deletes", func() bool {
		res, err := herald.Prune(ctx, s, rules, time.Now(), herald.PruneOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Deleted > 0
	})
	left := readAll(t, s, 0, herald.Filter{})
	if len(left) != 7 || left[0].Position != 4 {
		t.Fatalf("prune deleted unacknowledged events: %d left, first %d", len(left), left[0].Position)
	}
}
