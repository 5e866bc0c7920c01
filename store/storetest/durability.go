package storetest

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// testDurability checks that everything a store was told survives Close
// and reopen: events, positions, idempotency, subject versions,
// checkpoints, outcomes, dead letters with their redrive marks, and values.
func (s *suite) testDurability(t *testing.T) {
	if s.f.Reopen == nil {
		t.Skip("the store is not persistent (Features.Reopen is nil)")
	}
	st := s.open(t)
	ctx := t.Context()
	var evs []*herald.Event
	for i := range 20 {
		evs = append(evs, event(t, "durable.event", i, subject("agg/1"), correlation("chain"), func(e *herald.Event) {
			e.Metadata = map[string]string{"i": string(rune('a' + i))}
			e.Priority = herald.Priority(i%4 - 1)
		}))
	}
	copies := make([]*herald.Event, len(evs))
	for i, e := range evs {
		copies[i] = again(e)
	}
	res := mustAppend(t, st, herald.AppendOptions{CheckVersion: true}, evs[:10]...)
	res = append(res, mustAppend(t, st, herald.AppendOptions{}, evs[10:]...)...)
	o := outcome(evs[3], "durable-sub", herald.OutcomeDeadLettered)
	o.Attempts, o.LastError = 4, "gave up"
	o.History = attempts(4, o.UpdatedAt, "connection refused", "gave up")
	dl := deadLetter(copies[3], base)
	mustCommit(t, st, "durable-sub", herald.Progress{Checkpoint: res[7].Position, Outcomes: []herald.Outcome{o}, DeadLetters: []herald.DeadLetter{dl}})
	mustCommit(t, st, "other-sub", herald.Progress{Checkpoint: res[19].Position})
	if n, err := st.RedriveDeadLetters(ctx, herald.DeadLetterQuery{}); err != nil || n != 1 {
		t.Fatalf("RedriveDeadLetters = %d, %v", n, err)
	}
	if err := st.PutValue(ctx, "config", "push/a", []byte(`{"endpoint":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st = s.f.Reopen(t, st)
	t.Cleanup(func() { _ = st.Close() })
	if h := head(t, st); h != res[19].Position {
		t.Errorf("Head after reopen = %d, want %d", h, res[19].Position)
	}
	got := readAll(t, st, 0, herald.Filter{})
	if len(got) != len(copies) {
		t.Fatalf("after reopen the log holds %d events, want %d", len(got), len(copies))
	}
	for i := range got {
		if d := sameEvent(got[i], copies[i], res[i].Position); d != "" {
			t.Errorf("event %d after reopen: %s", i, d)
		}
	}
	if e, err := st.Get(ctx, copies[5].ID); err != nil || e.Position != res[5].Position {
		t.Errorf("Get after reopen = %v, %v", e, err)
	}
	if v := subjectVersion(t, st, "agg/1"); v != 20 {
		t.Errorf("subject version after reopen = %d, want 20", v)
	}
	// Idempotency survives: the same id is still a duplicate.
	r := mustAppend(t, st, herald.AppendOptions{}, again(copies[0]))
	if !r[0].Duplicate || r[0].Position != res[0].Position {
		t.Errorf("appending a stored id after reopen = %+v, want Duplicate at %d", r[0], res[0].Position)
	}
	// New events continue the log.
	r = mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 20}, event(t, "durable.event", 99, subject("agg/1")))
	if r[0].Position != res[19].Position+1 {
		t.Errorf("first new event after reopen at %d, want %d", r[0].Position, res[19].Position+1)
	}
	cps, err := st.Checkpoints(ctx)
	if want := map[string]uint64{"durable-sub": res[7].Position, "other-sub": res[19].Position}; err != nil || !maps.Equal(cps, want) {
		t.Errorf("Checkpoints after reopen = %v, %v; want %v", cps, err, want)
	}
	os, err := st.Outcomes(ctx, herald.OutcomeQuery{EventID: copies[3].ID})
	if err != nil || len(os) != 1 || !sameOutcome(os[0], o) {
		t.Errorf("outcomes after reopen = %+v, %v; want %+v", os, err, o)
	}
	ds, err := st.DeadLetters(ctx, herald.DeadLetterQuery{})
	dl.ID, dl.Subscription, dl.Redrive = herald.DeadLetterID("durable-sub", copies[3].ID), "durable-sub", true
	if err != nil || len(ds) != 1 {
		t.Fatalf("dead letters after reopen = %d, %v; want 1", len(ds), err)
	}
	if d := sameDeadLetter(ds[0], dl); d != "" {
		t.Errorf("dead letter after reopen: %s", d)
	}
	if v, err := st.GetValue(ctx, "config", "push/a"); err != nil || string(v) != `{"endpoint":"x"}` {
		t.Errorf("value after reopen = %q, %v", v, err)
	}
}

// testOwners checks what happens when a second process opens the store.
func (s *suite) testOwners(t *testing.T) {
	if s.f.OpenSecond == nil {
		t.Skip("Features.OpenSecond is nil")
	}
	st := s.open(t)
	second, err := s.f.OpenSecond(t, st)
	if !s.f.SharedAcrossProcesses {
		if err == nil {
			_ = second.Close()
			t.Fatal("a second owner opened a store that one process owns")
		}
		if !errors.Is(err, herald.ErrStoreLocked) {
			t.Errorf("second owner: %v, want ErrStoreLocked", err)
		}
		// The first owner is unaffected.
		mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 1))
		return
	}
	if err != nil {
		t.Fatalf("OpenSecond of a shared store: %v", err)
	}
	t.Cleanup(func() { _ = second.Close() })
	ctx := t.Context()

	// One log: what one handle appends, the other reads, and a waiter on
	// the other wakes.
	waited := make(chan uint64, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, s.f.wakeTimeout())
		defer cancel()
		h, _ := waitIn(wctx, second, 0)
		waited <- h
	}()
	testwait.Blocked(t, 1, waitInFunc)
	e := event(t, "shared.event", 1, subject("shared/1"))
	id := e.ID
	res := mustAppend(t, st, herald.AppendOptions{}, e)
	if h := <-waited; h < res[0].Position {
		t.Errorf("Wait on the second handle returned %d, want at least %d", h, res[0].Position)
	}
	s.eventually(t, "the second handle sees the first's event", func() bool {
		got, err := second.Get(ctx, id)
		return err == nil && got.Position == res[0].Position
	})
	// Idempotency and optimistic concurrency span the handles.
	r := mustAppend(t, second, herald.AppendOptions{}, event(t, "shared.event", 1, withID(id), subject("shared/1")))
	if !r[0].Duplicate || r[0].Position != res[0].Position {
		t.Errorf("the same id through the second handle = %+v, want Duplicate at %d", r[0], res[0].Position)
	}
	_, err = second.Append(ctx, []*herald.Event{event(t, "shared.event", 2, subject("shared/1"))}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0})
	if !errors.Is(err, herald.ErrConflict) {
		t.Errorf("a stale version through the second handle: %v, want ErrConflict", err)
	}
	mustAppend(t, second, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 1}, event(t, "shared.event", 2, subject("shared/1")))
	s.eventually(t, "the first handle sees the second's event", func() bool {
		v, err := st.SubjectVersion(ctx, "shared/1")
		return err == nil && v == 2
	})
	mustCommit(t, st, "shared-sub", herald.Progress{Checkpoint: res[0].Position})
	s.eventually(t, "the second handle sees the first's checkpoint", func() bool {
		p, ok, err := second.Checkpoint(ctx, "shared-sub")
		return err == nil && ok && p == res[0].Position
	})
}

// testBounded checks a store that holds at most n events.
func (s *suite) testBounded(t *testing.T) {
	if s.f.NewBounded == nil {
		t.Skip("Features.NewBounded is nil")
	}
	const n = 8
	st := s.f.NewBounded(t, n)
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()

	// A batch larger than the bound can never fit.
	var big []*herald.Event
	for i := range n + 1 {
		big = append(big, event(t, "a.b", i))
	}
	if _, err := st.Append(ctx, big, herald.AppendOptions{}); !errors.Is(err, herald.ErrStoreFull) {
		t.Errorf("a batch of %d in a store of %d: %v, want ErrStoreFull", n+1, n, err)
	}
	if h := head(t, st); h != 0 {
		t.Errorf("a refused batch stored events: Head = %d", h)
	}

	// A durable subscription that has handled nothing holds every event:
	// the store cannot make room, and says so without storing anything.
	mustCommit(t, st, "holder", herald.Progress{Checkpoint: 0})
	var evs []*herald.Event
	for i := range n {
		evs = append(evs, event(t, "a.b", i))
	}
	mustAppend(t, st, herald.AppendOptions{}, evs...)
	extra := event(t, "a.b", 99)
	_, err := st.Append(ctx, []*herald.Event{extra}, herald.AppendOptions{})
	if !errors.Is(err, herald.ErrStoreFull) && !errors.Is(err, herald.ErrBackpressure) {
		t.Fatalf("append to a full store: %v, want ErrStoreFull or ErrBackpressure", err)
	}
	if _, err := st.Get(ctx, extra.ID); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("a refused event is stored")
	}
	if got := readAll(t, st, 0, herald.Filter{}); len(got) != n {
		t.Errorf("the full store holds %d events, want %d", len(got), n)
	}

	// Once the subscription has handled them and retention removed them,
	// appends work again.
	mustCommit(t, st, "holder", herald.Progress{Checkpoint: evs[n-1].Position})
	if _, err := pruneStore(ctx, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 1}}); err != nil {
		t.Fatal(err)
	}
	r := mustAppend(t, st, herald.AppendOptions{}, again(extra))
	if r[0].Duplicate || r[0].Position != evs[n-1].Position+1 {
		t.Errorf("append after making room = %+v, want a new event at %d", r[0], evs[n-1].Position+1)
	}
}
