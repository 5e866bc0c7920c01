package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
)

// stateWrites returns how many messages the subscription-state stream of
// s (default namespace) has received so far.
func stateWrites(t *testing.T, s *natsstore.Store) uint64 {
	t.Helper()
	_, st := jsStream(t, s, "KV_herald_subs")
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// appendN stores n events, each its own correlation c<i>, and returns them.
func appendN(t *testing.T, s herald.Store, n int) []*herald.Event {
	t.Helper()
	evs := make([]*herald.Event, n)
	for i := range evs {
		evs[i] = ev(t, "recording.ended", "")
		evs[i].CorrelationID = fmt.Sprintf("c%d", i)
	}
	res, err := s.Append(t.Context(), evs, herald.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		evs[i].Position = r.Position
	}
	return evs
}

func outcomeOf(e *herald.Event, sub string, status herald.OutcomeStatus) herald.Outcome {
	return herald.Outcome{
		Subscription: sub, EventID: e.ID, EventName: e.Name, Position: e.Position,
		CorrelationID: e.CorrelationID, Status: status, Attempts: 1, UpdatedAt: time.Now().UTC(),
	}
}

// A commit of many outcomes is a few JetStream writes, not one per
// outcome (it was 200 writes and a checkpoint), and every outcome stays
// queryable by event, correlation and subscription.
func TestCommitWritesOutcomesAsOneBatch(t *testing.T) {
	s := open(t, server(t))
	ctx := t.Context()
	evs := appendN(t, s, 200)
	var outs []herald.Outcome
	for _, e := range evs {
		outs = append(outs, outcomeOf(e, "notes", herald.OutcomeSucceeded))
	}
	before := stateWrites(t, s)
	if err := s.Commit(ctx, "notes", herald.Progress{Checkpoint: evs[199].Position, Outcomes: outs}); err != nil {
		t.Fatal(err)
	}
	if n := stateWrites(t, s) - before; n > 3 {
		t.Errorf("a commit of 200 outcomes made %d writes, want at most 3 (index, batch, checkpoint)", n)
	}
	for _, i := range []int{0, 57, 199} {
		got, err := s.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: evs[i].CorrelationID})
		if err != nil || len(got) != 1 || got[0].EventID != evs[i].ID || got[0].Status != herald.OutcomeSucceeded {
			t.Errorf("outcomes of correlation %s = %+v, %v; want the one of event %d", evs[i].CorrelationID, got, err, i)
		}
		got, err = s.Outcomes(ctx, herald.OutcomeQuery{EventID: evs[i].ID, Subscription: "notes"})
		if err != nil || len(got) != 1 || got[0].Position != evs[i].Position {
			t.Errorf("outcomes of event %d = %+v, %v", i, got, err)
		}
	}
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "notes", Limit: 1000})
	if err != nil || len(got) != 200 {
		t.Fatalf("outcomes of the subscription: %d, %v; want 200", len(got), err)
	}
	for i, o := range got {
		if o.Position != evs[i].Position {
			t.Fatalf("outcome %d is at position %d, want %d (ordered by position)", i, o.Position, evs[i].Position)
		}
	}
	if got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "other"}); err != nil || len(got) != 0 {
		t.Errorf("another subscription's outcomes = %+v, %v; want none", got, err)
	}
}

// A later outcome of an event replaces the earlier one whichever way each
// was written (a key of its own or a batch), and keeps doing so after
// retention rewrote the batch holding the earlier one.
func TestBatchedOutcomesLaterWins(t *testing.T) {
	s := open(t, server(t))
	ctx := t.Context()
	evs := appendN(t, s, 40)
	var first []herald.Outcome
	for _, e := range evs[:20] {
		first = append(first, outcomeOf(e, "s", herald.OutcomeRetrying))
	}
	// Batch, then a single outcome under its own key for event 3.
	if err := s.Commit(ctx, "s", herald.Progress{Outcomes: first}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "s", herald.Progress{Outcomes: []herald.Outcome{outcomeOf(evs[3], "s", herald.OutcomeSucceeded)}}); err != nil {
		t.Fatal(err)
	}
	// A single outcome under its own key for event 25, then a batch that
	// replaces it.
	if err := s.Commit(ctx, "s", herald.Progress{Outcomes: []herald.Outcome{outcomeOf(evs[25], "s", herald.OutcomeRetrying)}}); err != nil {
		t.Fatal(err)
	}
	var second []herald.Outcome
	for _, e := range evs[20:] {
		second = append(second, outcomeOf(e, "s", herald.OutcomeSucceeded))
	}
	if err := s.Commit(ctx, "s", herald.Progress{Outcomes: second}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, i := range []int{3, 25} {
			got, err := s.Outcomes(ctx, herald.OutcomeQuery{EventID: evs[i].ID})
			if err != nil || len(got) != 1 || got[0].Status != herald.OutcomeSucceeded {
				t.Errorf("%s: outcomes of event %d = %+v, %v; want one, succeeded", when, i, got, err)
			}
		}
	}
	check("before retention")
	// Retention deletes event 0: the first batch is written again without
	// it and must not replace the later outcome of event 3.
	if n, err := s.DeleteEvents(ctx, []uint64{evs[0].Position}); err != nil || n != 1 {
		t.Fatalf("DeleteEvents = %d, %v", n, err)
	}
	check("after retention")
	if got, err := s.Outcomes(ctx, herald.OutcomeQuery{EventID: evs[0].ID}); err != nil || len(got) != 0 {
		t.Errorf("outcomes of the deleted event = %+v, %v; want none", got, err)
	}
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "s", Limit: 1000})
	if err != nil || len(got) != 39 {
		t.Errorf("outcomes after retention: %d, %v; want 39", len(got), err)
	}
	// Deleting every event of a batch deletes the batch.
	var rest []uint64
	for _, e := range evs[1:20] {
		rest = append(rest, e.Position)
	}
	if _, err := s.DeleteEvents(ctx, rest); err != nil {
		t.Fatal(err)
	}
	got, err = s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "s", Limit: 1000})
	if err != nil || len(got) != 20 || got[0].EventID != evs[20].ID {
		t.Errorf("outcomes after deleting the first batch's events: %d, %v; want the 20 of the second", len(got), err)
	}
	// A subscription deleted takes its batches along.
	if err := s.DeleteSubscription(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: evs[30].CorrelationID}); err != nil || len(got) != 0 {
		t.Errorf("outcomes of a deleted subscription = %+v, %v; want none", got, err)
	}
}

// Through the bus: a durable subscription working through a backlog
// commits its outcomes in batches, and a trace still finds each one.
func TestBacklogTraceThroughBatches(t *testing.T) {
	s := open(t, server(t))
	evs := appendN(t, s, 500)
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()) })
	done := make(chan struct{}, len(evs))
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		done <- struct{}{}
		return nil
	})
	before := stateWrites(t, s)
	if _, err := bus.Subscribe(t.Context(), "recording.ended", h, herald.Durable("notes")); err != nil {
		t.Fatal(err)
	}
	for range evs {
		<-done
	}
	if err := bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := stateWrites(t, s) - before; n >= 250 {
		t.Errorf("handling 500 events made %d state writes; want far fewer than one per event", n)
	}
	for _, i := range []int{0, 250, 499} {
		got, err := s.Outcomes(t.Context(), herald.OutcomeQuery{CorrelationID: evs[i].CorrelationID})
		if err != nil || len(got) != 1 || got[0].Status != herald.OutcomeSucceeded {
			t.Errorf("trace of event %d: %+v, %v", i, got, err)
		}
	}
}
