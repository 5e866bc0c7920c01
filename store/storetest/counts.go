package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald"
)

// counts returns st's subscription totals; st must be a CountingStore.
func counts(t *testing.T, st herald.Store) map[string]herald.SubscriptionCounts {
	t.Helper()
	cs, ok := st.(herald.CountingStore)
	if !ok {
		t.Fatalf("%T is not a herald.CountingStore", st)
	}
	m, err := cs.SubscriptionCounts(t.Context())
	if err != nil {
		t.Fatalf("SubscriptionCounts: %v", err)
	}
	return m
}

// testCounts: a CountingStore adds each commit's counts to the
// subscription's totals, keeps them over a reopen and across the handles
// of a shared store, and DeleteSubscription sets them back to zero.
func (s *suite) testCounts(t *testing.T) {
	st := s.open(t)
	if _, ok := st.(herald.CountingStore); !ok {
		t.Skip("the store does not keep subscription counts")
	}
	if m := counts(t, st); len(m) != 0 {
		t.Fatalf("a new store has counts: %v", m)
	}
	mustCommit(t, st, "a", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 2, Failed: 1}})
	mustCommit(t, st, "a", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 3, Retried: 1, DeadLettered: 1}})
	mustCommit(t, st, "b.c/d", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 1}})
	mustCommit(t, st, "b.c/d", herald.Progress{}) // nothing to add
	want := map[string]herald.SubscriptionCounts{
		"a":     {Handled: 5, Failed: 1, Retried: 1, DeadLettered: 1},
		"b.c/d": {Handled: 1},
	}
	check := func(st herald.Store, when string) {
		t.Helper()
		got := counts(t, st)
		for sub, w := range want {
			if got[sub] != w {
				t.Errorf("%s: counts of %s = %+v, want %+v", when, sub, got[sub], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: counts %v, want %v", when, got, want)
		}
	}
	check(st, "after three commits")

	if s.f.OpenSecond != nil && s.f.SharedAcrossProcesses {
		st2, err := s.f.OpenSecond(t, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st2.Close() })
		mustCommit(t, st2, "a", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 4}})
		mustCommit(t, st, "a", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 1}})
		want["a"] = herald.SubscriptionCounts{Handled: 10, Failed: 1, Retried: 1, DeadLettered: 1}
		check(st, "on the first handle, after both committed")
		check(st2, "on the second handle, after both committed")
	}
	if s.f.Reopen != nil {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = s.f.Reopen(t, st)
		t.Cleanup(func() { _ = st.Close() })
		check(st, "after a reopen")
		mustCommit(t, st, "a", herald.Progress{Counts: herald.SubscriptionCounts{Failed: 2}})
		a := want["a"]
		a.Failed += 2
		want["a"] = a
		check(st, "after a commit on the reopened store")
	}

	if err := st.DeleteSubscription(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	delete(want, "a")
	check(st, "after deleting a")
	mustCommit(t, st, "a", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 1}})
	want["a"] = herald.SubscriptionCounts{Handled: 1}
	check(st, "after a new a committed")

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.(herald.CountingStore).SubscriptionCounts(t.Context()); !errors.Is(err, herald.ErrClosed) {
		t.Fatalf("SubscriptionCounts after Close = %v, want ErrClosed", err)
	}
}

// testBusCounts: the counts a bus reports of a durable subscription are
// the same on every bus sharing the store and survive a restart; a
// redrive that succeeds empties the dead-letter count on every bus.
func (s *suite) testBusCounts(t *testing.T) {
	st := s.newStore(t)
	t.Cleanup(func() { _ = st.Close() })
	if _, ok := st.(herald.CountingStore); !ok {
		t.Skip("the store does not keep subscription counts")
	}
	ctx := t.Context()
	b1 := newBus(t, st)
	buses := []*herald.Bus{b1}
	var handled, fail atomic.Int64
	fail.Store(1)
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if e.Name == "count.bad" && fail.Load() == 1 {
			return herald.Permanent(errors.New("bad"))
		}
		handled.Add(1)
		return nil
	})
	subscribe := func(b *herald.Bus) {
		t.Helper()
		if _, err := b.Subscribe(ctx, "count.>", h, herald.Durable("counted"), herald.Concurrency(4)); err != nil {
			t.Fatal(err)
		}
	}
	subscribe(b1)
	if s.f.OpenSecond != nil && s.f.SharedAcrossProcesses {
		st2, err := s.f.OpenSecond(t, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st2.Close() })
		b2 := newBus(t, st2)
		subscribe(b2)
		buses = append(buses, b2)
	}
	const good, bad = 40, 3
	for i := range good + bad {
		name := "count.good"
		if i < bad {
			name = "count.bad"
		}
		if _, err := b1.Publish(ctx, event(t, name, i, subject(fmt.Sprintf("s%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	agree := func(what string, ok func(c herald.SubscriptionCounts, dead int) bool) {
		t.Helper()
		s.eventually(t, what, func() bool {
			for _, b := range buses {
				m, err := b.SubscriptionCounts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				d, err := b.DeadLetterCounts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !ok(m["counted"], d["counted"]) {
					return false
				}
			}
			return true
		})
	}
	agree(fmt.Sprintf("every bus counting %d handled and %d dead", good, bad), func(c herald.SubscriptionCounts, dead int) bool {
		return c.Handled == good && c.DeadLettered == bad && c.Failed == bad && dead == bad
	})
	if got := handled.Load(); got != good {
		t.Fatalf("the handler ran %d times, want %d", got, good)
	}

	fail.Store(0)
	if n, err := b1.Redrive(ctx, herald.DeadLetterQuery{Subscription: "counted"}); err != nil || n != bad {
		t.Fatalf("Redrive = %d, %v; want %d", n, err, bad)
	}
	agree("every bus counting the redriven events handled and none dead", func(c herald.SubscriptionCounts, dead int) bool {
		return c.Handled == good+bad && dead == 0
	})

	if s.f.Reopen == nil {
		return
	}
	for _, b := range buses {
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st3 := s.f.Reopen(t, st)
	t.Cleanup(func() { _ = st3.Close() })
	b3 := newBus(t, st3)
	m, err := b3.SubscriptionCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := m["counted"]; c.Handled != good+bad || c.DeadLettered != bad {
		t.Fatalf("after a restart the counts are %+v, want %d handled and %d dead-lettered", c, good+bad, bad)
	}
}
