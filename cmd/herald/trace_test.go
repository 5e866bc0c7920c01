package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

func TestTrace(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	// A chain: recording.ended → noise_reduction.completed → transcript.ready,
	// and a handler that fails for good.
	reducer, err := ts.bus.Subscribe(ctx, "recording.ended", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		_, err := ts.bus.Publish(ctx, &herald.Event{Name: "noise_reduction.completed", Data: json.RawMessage(`{}`)})
		return err
	}), herald.Durable("reducer"))
	if err != nil {
		t.Fatal(err)
	}
	defer reducer.Close(ctx)
	transcriber, err := ts.bus.Subscribe(ctx, "noise_reduction.completed", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		_, err := ts.bus.Publish(ctx, &herald.Event{Name: "transcript.ready", Data: json.RawMessage(`{}`)})
		return err
	}), herald.Durable("transcriber"))
	if err != nil {
		t.Fatal(err)
	}
	defer transcriber.Close(ctx)
	broken, err := ts.bus.Subscribe(ctx, "recording.ended", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		return herald.Permanent(errors.New("disk on fire"))
	}), herald.Durable("archiver"))
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close(ctx)

	root := ts.publish(t, &herald.Event{Name: "recording.ended", Data: json.RawMessage(`{"recording_id":"r1"}`)})
	testwait.For(t, "the chain to complete", func() bool {
		tr, err := ts.bus.Trace(ctx, root.ID)
		if err != nil || len(tr.Events) != 3 {
			return false
		}
		return len(tr.Events[0].Outcomes) == 2 && len(tr.Events[1].Outcomes) == 1
	})

	r := ts.run(t, "trace", root.ID).ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	want := []string{
		"correlation " + root.ID + ": 3 events",
		"└─ recording.ended #1",
		"   │  ✗ archiver dead_lettered, 1 attempt",
		"   │      #1 ",
		"   │  ✓ reducer succeeded, 1 attempt",
		"   └─ noise_reduction.completed #2",
		"      │  ✓ transcriber succeeded, 1 attempt",
		"      └─ transcript.ready #3",
		"            no subscription handled it",
	}
	if len(lines) != len(want) {
		t.Fatalf("trace:\n%s", r.stdout)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	if !strings.Contains(r.stdout, "disk on fire") {
		t.Errorf("the dead letter's error is not shown:\n%s", r.stdout)
	}

	r = ts.run(t, "trace", root.ID, "--json").ok(t)
	var tr herald.Trace
	if err := json.Unmarshal([]byte(r.stdout), &tr); err != nil || len(tr.Events) != 3 {
		t.Errorf("--json: %v %s", err, r.stdout)
	}

	r = ts.run(t, "trace", "no-such-correlation")
	if !errors.Is(r.err, herald.ErrNotFound) || exitCode(r.err) != 1 {
		t.Errorf("unknown correlation: %v", r.err)
	}
}

// An outcome's failed attempts are listed under it, each with its number,
// how long it ran and its error.
func TestPrintTraceHistory(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &herald.Trace{CorrelationID: "c", Events: []herald.TraceEvent{{
		Event: &herald.Event{ID: "a", Name: "recording.ended", Position: 1, Timestamp: at},
		Outcomes: []herald.Outcome{{
			Subscription: "transcriber", Status: herald.OutcomeSucceeded, Attempts: 3, Duration: herald.Duration(40 * time.Millisecond),
			History: []herald.AttemptError{
				{Attempt: 1, At: at, Duration: herald.Duration(10 * time.Millisecond), Error: "model not loaded"},
				{Attempt: 2, At: at, Duration: herald.Duration(1500 * time.Millisecond), Error: "endpoint answered 503\nretry later"},
			},
		}},
	}}}
	var b strings.Builder
	if err := printTrace(&b, false, tr); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"      ✓ transcriber succeeded, 3 attempts, 40ms",
		"          #1 10ms: model not loaded",
		"          #2 1.5s: endpoint answered 503 retry later",
	}
	out := b.String()
	if !strings.Contains(out, strings.Join(want, "\n")) {
		t.Errorf("trace:\n%s\nwant the lines:\n%s", out, strings.Join(want, "\n"))
	}
}

func TestPrintTraceOrphansAndCycles(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &herald.Trace{CorrelationID: "c", Events: []herald.TraceEvent{
		{Event: &herald.Event{ID: "b", Name: "b.b", Position: 2, CausationID: "a", Timestamp: at}},
		{Event: &herald.Event{ID: "a", Name: "a.a", Position: 1, CausationID: "b", Timestamp: at}},
		{Event: &herald.Event{ID: "x", Name: "x.x", Position: 3, CausationID: "gone", Timestamp: at}},
	}}
	var b strings.Builder
	if err := printTrace(&b, false, tr); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, name := range []string{"├─ a.a #1", "│  └─ b.b #2", "└─ x.x #3"} {
		if !strings.Contains(out, name) {
			t.Errorf("missing %q in:\n%s", name, out)
		}
	}
}
