package herald

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func memEvent(t testing.TB, name string) *Event {
	t.Helper()
	e := &Event{Name: name}
	if err := e.Prepare(time.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMemoryStoreEvictsWhenNoSubscriptionHoldsEvents(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithMemoryMaxEvents(10))
	defer s.Close()
	var ids []string
	for range 25 {
		e := memEvent(t, "a.b")
		ids = append(ids, e.ID)
		if _, err := s.Append(ctx, []*Event{e}, AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for e, err := range s.Read(ctx, 0, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
	}
	if len(got) != 10 || got[0] != 16 || got[9] != 25 {
		t.Fatalf("positions after eviction = %v, want 16..25", got)
	}
	if _, err := s.Get(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an evicted event: %v, want ErrNotFound", err)
	}
	if h, _ := s.Head(ctx); h != 25 {
		t.Fatalf("head = %d", h)
	}
}

func TestMemoryStoreBackpressureWhileDurableSubscriptionNeedsEvents(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithMemoryMaxEvents(8))
	defer s.Close()
	if err := s.Commit(ctx, "slow", Progress{Checkpoint: 0}); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := s.Append(ctx, []*Event{memEvent(t, "a")}, AppendOptions{}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if _, err := s.Append(ctx, []*Event{memEvent(t, "a")}, AppendOptions{}); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("append to a full store: %v, want ErrBackpressure", err)
	}
	if err := s.Commit(ctx, "slow", Progress{Checkpoint: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Append(ctx, []*Event{memEvent(t, "a")}, AppendOptions{}); err != nil {
			t.Fatalf("append %d after commit: %v", i, err)
		}
	}
	if _, err := s.Append(ctx, []*Event{memEvent(t, "a")}, AppendOptions{}); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("append past the checkpoint's room: %v, want ErrBackpressure", err)
	}
	big := make([]*Event, 9)
	for i := range big {
		big[i] = memEvent(t, "a")
	}
	if _, err := s.Append(ctx, big, AppendOptions{}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("batch over the bound: %v, want ErrStoreFull", err)
	}
}

func TestMemoryStoreWaitWakesOnAppendAndClose(t *testing.T) {
	synctest.Test(t, testMemoryStoreWaitWakesOnAppendAndClose)
}

func testMemoryStoreWaitWakesOnAppendAndClose(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	done := make(chan error, 1)
	go func() {
		h, err := s.Wait(ctx, 0)
		if err == nil && h != 1 {
			err = fmt.Errorf("head %d", h)
		}
		done <- err
	}()
	synctest.Wait() // Wait is blocked
	select {
	case err := <-done:
		t.Fatalf("Wait returned before an append: %v", err)
	default:
	}
	if _, err := s.Append(ctx, []*Event{memEvent(t, "a")}, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { _, err := s.Wait(ctx, 5); done <- err }()
	synctest.Wait() // Wait is blocked
	select {
	case err := <-done:
		t.Fatalf("Wait returned before Close: %v", err)
	default:
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
}

func TestMemoryStoreGrowsUnbounded(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithMemoryMaxEvents(0))
	defer s.Close()
	batch := make([]*Event, 1000)
	for i := range batch {
		batch[i] = memEvent(t, "x.y")
	}
	if _, err := s.Append(ctx, batch, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for e, err := range s.Read(ctx, 500, Filter{Limit: 300}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Position != uint64(500+n) {
			t.Fatalf("position %d at %d", e.Position, n)
		}
	}
	if n != 300 {
		t.Fatalf("read %d, want 300", n)
	}
}

func TestMemoryStoreIDHashCollisions(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithMemoryMaxEvents(4))
	defer s.Close()
	s.ids.hash = func(id string) uint64 { return uint64(len(id) % 2) } // everything collides
	var evs []*Event
	for i := range 10 {
		e := memEvent(t, "c.d")
		e.ID = fmt.Sprintf("id-%d", i)
		evs = append(evs, e)
		if res, err := s.Append(ctx, []*Event{e}, AppendOptions{}); err != nil || res[0].Position != uint64(i+1) {
			t.Fatalf("append %d: %+v %v", i, res, err)
		}
		// Every event still held is found, and a duplicate is recognised.
		for j := max(0, i-3); j <= i; j++ {
			got, err := s.Get(ctx, evs[j].ID)
			if err != nil || got != evs[j] {
				t.Fatalf("after %d: Get(%s) = %v, %v", i, evs[j].ID, got, err)
			}
			dup := &Event{ID: evs[j].ID, Name: "c.d"}
			dup.Prepare(time.Now())
			if res, err := s.Append(ctx, []*Event{dup}, AppendOptions{}); err != nil || !res[0].Duplicate || res[0].Position != uint64(j+1) {
				t.Fatalf("after %d: duplicate of %d: %+v %v", i, j, res, err)
			}
		}
	}
	if _, err := s.Get(ctx, evs[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("evicted event found: %v", err)
	}
	if n := len(s.ids.byHash) + len(s.ids.collisions); n != 4 {
		t.Fatalf("index holds %d entries for 4 events", n)
	}
}

func TestMemoryStoreIndexesFreshIDsLazily(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(WithMemoryMaxEvents(8))
	defer s.Close()
	var evs []*Event
	for i := range 20 {
		e := memEvent(t, "f.g")
		evs = append(evs, e)
		if _, err := s.appendOne(e, AppendOptions{}, true); err != nil {
			t.Fatal(err)
		}
		if i == 5 { // a look-up in between indexes what is there
			if got, err := s.Get(ctx, evs[3].ID); err != nil || got != evs[3] {
				t.Fatalf("Get: %v %v", got, err)
			}
		}
	}
	for i, e := range evs {
		got, err := s.Get(ctx, e.ID)
		if i < 12 {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("event %d was evicted but Get says %v, %v", i, got, err)
			}
			continue
		}
		if err != nil || got != e {
			t.Fatalf("event %d: %v %v", i, got, err)
		}
		dup := &Event{ID: e.ID, Name: "f.g"}
		dup.Prepare(time.Now())
		if res, err := s.Append(ctx, []*Event{dup}, AppendOptions{}); err != nil || !res[0].Duplicate || res[0].Position != uint64(i+1) {
			t.Fatalf("duplicate of %d: %+v %v", i, res, err)
		}
	}
	if n := len(s.ids.byHash); n != 8 {
		t.Fatalf("index holds %d entries for 8 events", n)
	}
}
