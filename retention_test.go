package herald

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetentionSchedule runs a bus with WithRetention in virtual time: it
// prunes on each tick, with the tick's time, and Close stops the schedule
// (the bubble would report its goroutine otherwise).
func TestRetentionSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rules := []RetentionRule{{Pattern: ">", MaxAge: Duration(time.Hour)}}
		bus, err := New(WithRetention(rules, 10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		publish := func(name string) *Event {
			t.Helper()
			e, err := NewEvent(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bus.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
			return e
		}
		stored := func(e *Event) bool {
			_, err := bus.Store().Get(ctx, e.ID)
			return err == nil
		}
		first := publish("app.first")
		// At 60 minutes the first event is exactly MaxAge old: kept.
		time.Sleep(65 * time.Minute)
		synctest.Wait()
		if !stored(first) {
			t.Fatal("an event exactly MaxAge old at the last tick was pruned")
		}
		second := publish("app.second")
		// The tick at 70 minutes prunes the first only.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if stored(first) || !stored(second) {
			t.Fatalf("after the 70-minute tick: first stored %v, second stored %v; want false, true", stored(first), stored(second))
		}
		if err := bus.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Prune(ctx, time.Now()); !errors.Is(err, ErrClosed) {
			t.Errorf("Prune after Close: %v, want ErrClosed", err)
		}
	})
}

// TestBusPrune prunes on demand: with the bus's rules, with the default
// rules when none are given, and not at all without WithRetention.
func TestBusPrune(t *testing.T) {
	ctx := context.Background()
	oldEvent := func(t *testing.T, age time.Duration) *Event {
		e, err := NewEvent("app.x", nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Timestamp = time.Now().Add(-age)
		return e
	}
	for _, c := range []struct {
		name string
		opts []Option
		want PruneResult
	}{
		{"NoRetention", nil, PruneResult{}},
		{"DefaultRules", []Option{WithRetention(nil, 0)}, PruneResult{Deleted: 1}},
		{"Rules", []Option{WithRetention([]RetentionRule{{Pattern: ">", MaxCount: 1}}, 0)}, PruneResult{Deleted: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus, err := New(c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close(ctx)
			for _, age := range []time.Duration{40 * 24 * time.Hour, time.Hour, time.Minute} {
				if _, err := bus.Publish(ctx, oldEvent(t, age)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := bus.Prune(ctx, time.Now())
			if err != nil || got != c.want {
				t.Errorf("Prune = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	for _, opt := range []Option{
		WithRetention(nil, -time.Second),
		WithRetention([]RetentionRule{{Pattern: "Bad"}}, time.Hour),
		WithRetention([]RetentionRule{{Pattern: ">", MaxCount: -1}}, time.Hour),
	} {
		if bus, err := New(opt); err == nil {
			bus.Close(ctx)
			t.Error("New accepted an invalid retention option")
		}
	}
}

// interleaved is a memory store on which another process deletes events
// just before the planner's n-th read of the log.
type interleaved struct {
	*MemoryStore
	reads  int
	before map[int][]uint64
}

func (s *interleaved) Read(ctx context.Context, after uint64, f Filter) iter.Seq2[*Event, error] {
	if ps, ok := s.before[s.reads]; ok {
		if _, err := s.MemoryStore.DeleteEvents(ctx, ps); err != nil {
			panic(err)
		}
	}
	s.reads++
	return s.MemoryStore.Read(ctx, after, f)
}

// TestPruneCountWithConcurrentDeletion: another process deletes a rule's
// oldest events between the planner's counting read and the next; the
// planner still keeps the rule's MaxCount newest events.
func TestPruneCountWithConcurrentDeletion(t *testing.T) {
	ctx := context.Background()
	for _, before := range []int{1, 2} {
		st := &interleaved{MemoryStore: NewMemoryStore(), before: map[int][]uint64{before: {1, 2, 3}}}
		var evs []*Event
		for range 10 {
			e, err := NewEvent("x.y", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Prepare(time.Now()); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		if _, err := st.Append(ctx, evs, AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := Prune(ctx, st, []RetentionRule{{Pattern: ">", MaxCount: 5}}, time.Now(), PruneOptions{Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		var left []uint64
		for e, err := range st.MemoryStore.Read(ctx, 0, Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			left = append(left, e.Position)
		}
		if want := []uint64{6, 7, 8, 9, 10}; !slices.Equal(left, want) || res.Deleted != 2 {
			t.Errorf("deletion before read %d: Prune = %+v, log holds %v; want 2 deleted, %v kept", before, res, left, want)
		}
	}
}
