package herald

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// TestOutcomeHistoryDurations: an outcome's history holds each failed
// attempt with what it took, and its Duration what the last attempt took;
// a dead letter's errors carry the same durations, and discarding it keeps
// them on the outcome. Time is virtual: the durations are exact.
func TestOutcomeHistoryDurations(t *testing.T) { synctest.Test(t, testOutcomeHistoryDurations) }

func testOutcomeHistoryDurations(t *testing.T) {
	b := newBus(t)
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	mustSubscribe(t, b, "d.>", func(ctx context.Context, e *Event) error {
		ec, _ := FromContext(ctx)
		time.Sleep(time.Duration(ec.Attempt) * 10 * time.Millisecond) // virtual
		if e.Name == "d.dead" || e.Name == "d.flaky" && ec.Attempt < 3 {
			return fmt.Errorf("boom %d", ec.Attempt)
		}
		return nil
	}, Durable("d"), MaxAttempts(3), Backoff(time.Millisecond, time.Millisecond))
	flaky, dead, ok := ev("d.flaky", "a", ""), ev("d.dead", "b", ""), ev("d.ok", "c", "")
	for _, e := range []*Event{flaky, dead, ok} {
		mustPublish(t, b, e)
	}
	outcome := func(e *Event, status OutcomeStatus) Outcome {
		t.Helper()
		var o Outcome
		testwait.For(t, e.Name+" "+string(status), func() bool {
			outs, err := b.Outcomes(context.Background(), OutcomeQuery{EventID: e.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) == 1 && outs[0].Status == status {
				o = outs[0]
				return true
			}
			return false
		})
		return o
	}
	failed := []AttemptError{{Attempt: 1, Duration: ms(10), Error: "boom 1"}, {Attempt: 2, Duration: ms(20), Error: "boom 2"}}
	same := func(got, want []AttemptError) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i].Attempt != want[i].Attempt || got[i].Duration != want[i].Duration || got[i].Error != want[i].Error || got[i].At.IsZero() {
				return false
			}
		}
		return true
	}

	if o := outcome(ok, OutcomeSucceeded); o.Attempts != 1 || o.Duration != ms(10) || o.History != nil {
		t.Errorf("first-time success: %+v, want 1 attempt of 10ms and no history", o)
	}
	if o := outcome(flaky, OutcomeSucceeded); o.Attempts != 3 || o.Duration != ms(30) || o.LastError != "" || !same(o.History, failed) {
		t.Errorf("retried success: %+v, want 3 attempts, the last of 30ms, history %+v", o, failed)
	}
	all := append(failed, AttemptError{Attempt: 3, Duration: ms(30), Error: "boom 3"})
	o := outcome(dead, OutcomeDeadLettered)
	if o.Attempts != 3 || o.Duration != ms(30) || o.LastError != "boom 3" || !same(o.History, all) {
		t.Errorf("dead-lettered: %+v, want 3 attempts, the last of 30ms, history %+v", o, all)
	}
	dls := deadLetters(t, b, "d")
	if len(dls) != 1 || !same(dls[0].Errors, all) {
		t.Fatalf("dead letters %+v, want one with errors %+v", dls, all)
	}
	if n, err := b.Discard(context.Background(), DeadLetterQuery{Subscription: "d"}); err != nil || n != 1 {
		t.Fatalf("Discard = %d, %v", n, err)
	}
	if o := outcome(dead, OutcomeDiscarded); o.Attempts != 3 || o.Duration != ms(30) || !same(o.History, all) {
		t.Errorf("discarded: %+v, want 3 attempts, the last of 30ms, history %+v", o, all)
	}
}

// TestOutcomeHistoryBound: an outcome keeps the last MaxOutcomeHistory
// failed attempts; the dead letter keeps them all.
func TestOutcomeHistoryBound(t *testing.T) { synctest.Test(t, testOutcomeHistoryBound) }

func testOutcomeHistoryBound(t *testing.T) {
	b := newBus(t)
	const n = MaxOutcomeHistory + 4
	mustSubscribe(t, b, "bound.>", func(ctx context.Context, e *Event) error {
		ec, _ := FromContext(ctx)
		return fmt.Errorf("boom %d", ec.Attempt)
	}, Durable("bound"), MaxAttempts(n), Backoff(time.Millisecond, time.Millisecond))
	e := ev("bound.x", "", "")
	mustPublish(t, b, e)
	testwait.For(t, "dead letter", func() bool { return len(deadLetters(t, b, "bound")) == 1 })
	if errs := deadLetters(t, b, "bound")[0].Errors; len(errs) != n {
		t.Fatalf("the dead letter has %d errors, want %d", len(errs), n)
	}
	outs, err := b.Outcomes(context.Background(), OutcomeQuery{EventID: e.ID})
	if err != nil || len(outs) != 1 {
		t.Fatalf("Outcomes = %+v, %v", outs, err)
	}
	h := outs[0].History
	if len(h) != MaxOutcomeHistory || h[0].Attempt != n-MaxOutcomeHistory+1 || h[len(h)-1].Attempt != n {
		t.Fatalf("history %+v, want attempts %d to %d", h, n-MaxOutcomeHistory+1, n)
	}
}
