package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

func mustCommit(t *testing.T, st herald.Store, sub string, p herald.Progress) {
	t.Helper()
	if err := st.Commit(t.Context(), sub, p); err != nil {
		t.Fatalf("Commit(%s): %v", sub, err)
	}
}

func checkpoint(t *testing.T, st herald.Store, sub string) (uint64, bool) {
	t.Helper()
	p, ok, err := st.Checkpoint(t.Context(), sub)
	if err != nil {
		t.Fatalf("Checkpoint(%s): %v", sub, err)
	}
	return p, ok
}

func (s *suite) testCheckpoints(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	var evs []*herald.Event
	for i := range 6 {
		evs = append(evs, event(t, "a.b", i))
	}
	mustAppend(t, st, herald.AppendOptions{}, evs...)

	if p, ok := checkpoint(t, st, "transcriber"); ok || p != 0 {
		t.Errorf("Checkpoint of a subscription that never committed = %d, %v; want 0, false", p, ok)
	}
	if cps, err := st.Checkpoints(ctx); err != nil || len(cps) != 0 {
		t.Errorf("Checkpoints of a new store = %v, %v; want none", cps, err)
	}
	subs := map[string]uint64{"transcriber": 4, "push/webhook-1": 6, "a.b-c_d=e": 0}
	for sub, p := range subs {
		mustCommit(t, st, sub, herald.Progress{Checkpoint: p})
	}
	for sub, want := range subs {
		if p, ok := checkpoint(t, st, sub); !ok || p != want {
			t.Errorf("Checkpoint(%s) = %d, %v; want %d, true", sub, p, ok, want)
		}
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil || !maps.Equal(cps, subs) {
		t.Errorf("Checkpoints = %v, %v; want %v", cps, err, subs)
	}
	// A later commit replaces the checkpoint, also backwards (a replay).
	mustCommit(t, st, "transcriber", herald.Progress{Checkpoint: 5})
	mustCommit(t, st, "transcriber", herald.Progress{Checkpoint: 2})
	if p, _ := checkpoint(t, st, "transcriber"); p != 2 {
		t.Errorf("Checkpoint after moving back = %d, want 2", p)
	}

	// DeleteSubscription removes the checkpoint and the outcomes, and
	// keeps the dead letters.
	mustCommit(t, st, "transcriber", herald.Progress{
		Checkpoint:  3,
		Outcomes:    []herald.Outcome{outcome(evs[2], "transcriber", herald.OutcomeSucceeded)},
		DeadLetters: []herald.DeadLetter{deadLetter(evs[1], base)},
	})
	mustCommit(t, st, "push/webhook-1", herald.Progress{
		Checkpoint: 6,
		Outcomes:   []herald.Outcome{outcome(evs[2], "push/webhook-1", herald.OutcomeSucceeded)},
	})
	if err := st.DeleteSubscription(ctx, "transcriber"); err != nil {
		t.Fatal(err)
	}
	if p, ok := checkpoint(t, st, "transcriber"); ok {
		t.Errorf("Checkpoint after DeleteSubscription = %d, true; want absent", p)
	}
	if cps, _ := st.Checkpoints(ctx); len(cps) != 2 {
		t.Errorf("Checkpoints after DeleteSubscription = %v", cps)
	}
	if os, err := st.Outcomes(ctx, herald.OutcomeQuery{Subscription: "transcriber"}); err != nil || len(os) != 0 {
		t.Errorf("outcomes after DeleteSubscription = %v, %v; want none", os, err)
	}
	if os, err := st.Outcomes(ctx, herald.OutcomeQuery{EventID: evs[2].ID}); err != nil || len(os) != 1 || os[0].Subscription != "push/webhook-1" {
		t.Errorf("outcomes of the event after DeleteSubscription = %v, %v; want only the other subscription's", os, err)
	}
	if ds, err := st.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "transcriber"}); err != nil || len(ds) != 1 {
		t.Errorf("dead letters after DeleteSubscription = %d, %v; want them kept", len(ds), err)
	}
	if err := st.DeleteSubscription(ctx, "never-existed"); err != nil {
		t.Errorf("DeleteSubscription of an unknown subscription: %v", err)
	}
	// It can commit again afterwards, starting over.
	mustCommit(t, st, "transcriber", herald.Progress{Checkpoint: 1})
	if p, ok := checkpoint(t, st, "transcriber"); !ok || p != 1 {
		t.Errorf("Checkpoint after re-creating = %d, %v", p, ok)
	}
}

// testCommitAtomic checks that a Commit the store rejects records nothing.
func (s *suite) testCommitAtomic(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	e1, e2 := event(t, "a.b", 1), event(t, "a.b", 2)
	mustAppend(t, st, herald.AppendOptions{}, e1, e2)
	mustCommit(t, st, "s", herald.Progress{Checkpoint: 1, Outcomes: []herald.Outcome{outcome(e1, "s", herald.OutcomeSucceeded)}})
	bad := herald.Progress{
		Checkpoint:  2,
		Outcomes:    []herald.Outcome{outcome(e2, "s", herald.OutcomeDeadLettered), outcome(e1, "s", herald.OutcomeRetrying)},
		DeadLetters: []herald.DeadLetter{deadLetter(e2, base), {Errors: []herald.AttemptError{{Attempt: 1, At: base, Error: "x"}}}}, // no event
	}
	if err := st.Commit(ctx, "s", bad); err == nil {
		t.Fatal("Commit of a dead letter without an event succeeded")
	}
	if p, _ := checkpoint(t, st, "s"); p != 1 {
		t.Errorf("a rejected Commit moved the checkpoint to %d", p)
	}
	os, err := st.Outcomes(ctx, herald.OutcomeQuery{Subscription: "s"})
	if err != nil || len(os) != 1 || os[0].EventID != e1.ID || os[0].Status != herald.OutcomeSucceeded {
		t.Errorf("a rejected Commit changed outcomes: %+v, %v", os, err)
	}
	if ds, _ := st.DeadLetters(ctx, herald.DeadLetterQuery{}); len(ds) != 0 {
		t.Errorf("a rejected Commit stored %d dead letters", len(ds))
	}
	if err := st.Commit(ctx, "", herald.Progress{Checkpoint: 1}); err == nil {
		t.Error("Commit for an empty subscription name succeeded")
	}
}

func outcome(e *herald.Event, sub string, status herald.OutcomeStatus) herald.Outcome {
	return herald.Outcome{
		Subscription:  sub,
		EventID:       e.ID,
		EventName:     e.Name,
		Position:      e.Position,
		CorrelationID: e.CorrelationID,
		Status:        status,
		Attempts:      1,
		Duration:      herald.Duration(1500 * time.Microsecond),
		UpdatedAt:     base.Add(time.Duration(e.Position) * time.Second),
	}
}

func sameOutcome(got, want herald.Outcome) bool {
	return got.Subscription == want.Subscription && got.EventID == want.EventID &&
		got.EventName == want.EventName && got.Position == want.Position &&
		got.CorrelationID == want.CorrelationID && got.Status == want.Status &&
		got.Attempts == want.Attempts && got.LastError == want.LastError &&
		got.Duration == want.Duration && got.UpdatedAt.Equal(want.UpdatedAt) &&
		got.Redriven == want.Redriven && sameAttempts(got.History, want.History)
}

// sameAttempts reports whether two failed-attempt histories are equal.
func sameAttempts(got, want []herald.AttemptError) bool {
	return slices.EqualFunc(got, want, func(g, w herald.AttemptError) bool {
		return g.Attempt == w.Attempt && g.At.Equal(w.At) && g.Duration == w.Duration && g.Error == w.Error
	})
}

// attempts returns a failed-attempt history of n attempts, the last at
// end, each with its duration and error.
func attempts(n int, end time.Time, errs ...string) []herald.AttemptError {
	out := make([]herald.AttemptError, n)
	for i := range out {
		out[i] = herald.AttemptError{
			Attempt:  i + 1,
			At:       end.Add(time.Duration(i-n+1) * time.Second),
			Duration: herald.Duration(time.Duration(i+1)*time.Millisecond + 250*time.Microsecond),
			Error:    errs[i%len(errs)],
		}
	}
	return out
}

func outcomeKeys(os []herald.Outcome) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = fmt.Sprintf("%d/%s", o.Position, o.Subscription)
	}
	return out
}

func (s *suite) testOutcomes(t *testing.T) {
	t.Run("Commit", s.testCommitAtomic)
	st := s.open(t)
	ctx := t.Context()
	e1 := event(t, "recording.completed", 1, correlation("c1"))
	e2 := event(t, "transcription.completed", 2, correlation("c1"))
	e3 := event(t, "recording.completed", 3, correlation("c2"))
	mustAppend(t, st, herald.AppendOptions{}, e1, e2, e3)

	o11 := outcome(e1, "s1", herald.OutcomeSucceeded)
	// Outcomes keep their failed attempts, each with its duration and
	// error, whatever the error is made of.
	o12 := outcome(e2, "s1", herald.OutcomeRetrying)
	o12.Attempts, o12.LastError = 2, "transcriber: model not loaded"
	o12.History = attempts(2, o12.UpdatedAt, "transcriber: model not loaded")
	o21 := outcome(e1, "s2", herald.OutcomeDeadLettered)
	o21.Attempts, o21.LastError, o21.Redriven = 4, "permanent: bad input", true
	o21.History = attempts(4, o21.UpdatedAt, `endpoint answered 503 <"busy">`, "endpoint: \u00e9t\u00e9 \n", "permanent: bad input")
	o23 := outcome(e3, "s2", herald.OutcomeSucceeded)
	mustCommit(t, st, "s2", herald.Progress{Checkpoint: 3, Outcomes: []herald.Outcome{o23, o21}})
	mustCommit(t, st, "s1", herald.Progress{Checkpoint: 2, Outcomes: []herald.Outcome{o11, o12}})

	query := func(q herald.OutcomeQuery) []herald.Outcome {
		t.Helper()
		os, err := st.Outcomes(ctx, q)
		if err != nil {
			t.Fatalf("Outcomes(%+v): %v", q, err)
		}
		return os
	}
	check := func(name string, got []herald.Outcome, want ...herald.Outcome) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, outcomeKeys(got), outcomeKeys(want))
			return
		}
		for i := range got {
			if !sameOutcome(got[i], want[i]) {
				t.Errorf("%s: outcome %d = %+v, want %+v", name, i, got[i], want[i])
			}
		}
	}
	check("by event", query(herald.OutcomeQuery{EventID: e1.ID}), o11, o21)
	check("by correlation", query(herald.OutcomeQuery{CorrelationID: "c1"}), o11, o21, o12)
	check("by subscription", query(herald.OutcomeQuery{Subscription: "s2"}), o21, o23)
	check("by event and subscription", query(herald.OutcomeQuery{EventID: e1.ID, Subscription: "s2"}), o21)
	check("by correlation and subscription", query(herald.OutcomeQuery{CorrelationID: "c1", Subscription: "s1"}), o11, o12)
	check("limit", query(herald.OutcomeQuery{CorrelationID: "c1", Limit: 2}), o11, o21)
	check("unknown event", query(herald.OutcomeQuery{EventID: herald.NewID()}))
	check("unknown correlation", query(herald.OutcomeQuery{CorrelationID: "nope"}))

	// A new outcome for the same subscription and event replaces the old,
	// Redriven included.
	o12b := o12
	o12b.Status, o12b.Attempts, o12b.LastError, o12b.Redriven = herald.OutcomeSucceeded, 3, "", true
	o12b.History = attempts(2, o12.UpdatedAt, "transcriber: model not loaded", "transcriber: out of memory")
	o12b.UpdatedAt = o12.UpdatedAt.Add(time.Minute)
	mustCommit(t, st, "s1", herald.Progress{Checkpoint: 2, Outcomes: []herald.Outcome{o12b}})
	check("after upsert", query(herald.OutcomeQuery{EventID: e2.ID}), o12b)
	check("after upsert by subscription", query(herald.OutcomeQuery{Subscription: "s1"}), o11, o12b)

	// Many outcomes: the default limit is at least what a long chain needs.
	var more []herald.Outcome
	var evs []*herald.Event
	for i := range 150 {
		evs = append(evs, event(t, "bulk.event", i, correlation("bulk")))
	}
	mustAppend(t, st, herald.AppendOptions{}, evs...)
	for i, e := range evs {
		o := outcome(e, "bulk", herald.OutcomeSucceeded)
		o.Redriven = i%3 == 0
		if i%7 == 0 {
			// A retried event among many (written as a batch where a
			// store batches them).
			o.Attempts = 1 + i%(herald.MaxOutcomeHistory+1)
			o.History = attempts(o.Attempts-1, o.UpdatedAt, "flaky", "quoted \"error\" & <more>")
		}
		more = append(more, o)
	}
	mustCommit(t, st, "bulk", herald.Progress{Checkpoint: evs[len(evs)-1].Position, Outcomes: more})
	got := query(herald.OutcomeQuery{CorrelationID: "bulk"})
	if len(got) != len(more) {
		t.Fatalf("bulk: %d outcomes, want %d", len(got), len(more))
	}
	for _, o := range got {
		if want := more[slices.IndexFunc(more, func(m herald.Outcome) bool { return m.EventID == o.EventID })]; !sameOutcome(o, want) {
			t.Errorf("bulk: outcome %+v, want %+v", o, want)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b herald.Outcome) int { return int(a.Position) - int(b.Position) }) {
		t.Error("outcomes are not ordered by position")
	}
}

func deadLetter(e *herald.Event, deadAt time.Time) herald.DeadLetter {
	return herald.DeadLetter{
		Event: e,
		Errors: []herald.AttemptError{
			{Attempt: 1, At: deadAt.Add(-3 * time.Second), Duration: herald.Duration(30 * time.Second), Error: "timeout after 30s"},
			{Attempt: 2, At: deadAt.Add(-2 * time.Second), Duration: herald.Duration(1500 * time.Microsecond), Error: "connection refused"},
			{Attempt: 3, At: deadAt, Duration: herald.Duration(2 * time.Millisecond), Error: "connection refused"},
		},
		DeadAt: deadAt,
	}
}

func sameDeadLetter(got, want herald.DeadLetter) string {
	var diffs []string
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID %s, want %s", got.ID, want.ID))
	}
	if got.Subscription != want.Subscription {
		diffs = append(diffs, fmt.Sprintf("Subscription %s, want %s", got.Subscription, want.Subscription))
	}
	if d := sameEvent(got.Event, want.Event, want.Event.Position); d != "" {
		diffs = append(diffs, "Event: "+d)
	}
	if len(got.Errors) != len(want.Errors) {
		diffs = append(diffs, fmt.Sprintf("%d errors, want %d", len(got.Errors), len(want.Errors)))
	} else {
		for i := range got.Errors {
			if g, w := got.Errors[i:i+1], want.Errors[i:i+1]; !sameAttempts(g, w) {
				diffs = append(diffs, fmt.Sprintf("error %d = %+v, want %+v", i, g[0], w[0]))
			}
		}
	}
	if got.Permanent != want.Permanent || got.Redrive != want.Redrive || !got.DeadAt.Equal(want.DeadAt) {
		diffs = append(diffs, fmt.Sprintf("Permanent %v Redrive %v DeadAt %v, want %v %v %v", got.Permanent, got.Redrive, got.DeadAt, want.Permanent, want.Redrive, want.DeadAt))
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprint(diffs)
}

// testDeadLetterCounts checks that DeadLetterCounts counts what
// DeadLetters lists, by subscription, through replacing, resolving and
// discarding, whatever the subscription's name is made of.
func (s *suite) testDeadLetterCounts(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	evs := make([]*herald.Event, 4)
	for i := range evs {
		evs[i] = event(t, "a.b", i+1)
	}
	mustAppend(t, st, herald.AppendOptions{}, evs...)
	subs := []string{"s1", "push/web hook.é"}
	counts := func(name string, want map[string]int) {
		t.Helper()
		got, err := st.DeadLetterCounts(ctx)
		if err != nil {
			t.Fatalf("%s: DeadLetterCounts: %v", name, err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: DeadLetterCounts = %v, want %v", name, got, want)
		}
		listed := map[string]int{}
		ds, err := st.DeadLetters(ctx, herald.DeadLetterQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			listed[d.Subscription]++
		}
		if !maps.Equal(listed, want) {
			t.Errorf("%s: DeadLetters lists %v, want %v", name, listed, want)
		}
	}
	counts("none", map[string]int{})
	for i, e := range evs {
		mustCommit(t, st, subs[i%2], herald.Progress{Checkpoint: uint64(i + 1), DeadLetters: []herald.DeadLetter{deadLetter(e.Clone(), base)}})
	}
	mustCommit(t, st, subs[1], herald.Progress{Checkpoint: 4, DeadLetters: []herald.DeadLetter{deadLetter(evs[1].Clone(), base)}})
	counts("two each, one replaced", map[string]int{subs[0]: 2, subs[1]: 2})
	mustCommit(t, st, subs[0], herald.Progress{Checkpoint: 4, Resolved: []string{herald.DeadLetterID(subs[0], evs[0].ID)}})
	counts("one resolved", map[string]int{subs[0]: 1, subs[1]: 2})
	if _, err := st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{Subscription: subs[1]}); err != nil {
		t.Fatal(err)
	}
	counts("one subscription's discarded", map[string]int{subs[0]: 1})
	if _, err := st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{}); err != nil {
		t.Fatal(err)
	}
	counts("all discarded", map[string]int{})
}

func (s *suite) testDeadLetters(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	e1, e2, e3 := event(t, "a.b", 1), event(t, "a.b", 2), event(t, "a.c", 3)
	mustAppend(t, st, herald.AppendOptions{}, e1, e2, e3)
	copies := map[string]*herald.Event{e1.ID: e1.Clone(), e2.ID: e2.Clone(), e3.ID: e3.Clone()}

	d11 := deadLetter(copies[e1.ID], base)
	d12 := deadLetter(copies[e2.ID], base.Add(time.Second))
	d12.Permanent = true
	d12.Errors = d12.Errors[2:]
	d21 := deadLetter(copies[e1.ID], base.Add(2*time.Second))
	d21.ID = herald.DeadLetterID("s2", e1.ID) // given explicitly
	mustCommit(t, st, "s1", herald.Progress{Checkpoint: 2, DeadLetters: []herald.DeadLetter{d12, d11}})
	mustCommit(t, st, "s2", herald.Progress{Checkpoint: 1, DeadLetters: []herald.DeadLetter{d21}})
	// What the store should hold.
	d11.ID, d11.Subscription = herald.DeadLetterID("s1", e1.ID), "s1"
	d12.ID, d12.Subscription = herald.DeadLetterID("s1", e2.ID), "s1"
	d21.Subscription = "s2"

	list := func(q herald.DeadLetterQuery) []herald.DeadLetter {
		t.Helper()
		ds, err := st.DeadLetters(ctx, q)
		if err != nil {
			t.Fatalf("DeadLetters(%+v): %v", q, err)
		}
		return ds
	}
	check := func(name string, got []herald.DeadLetter, want ...herald.DeadLetter) {
		t.Helper()
		if len(got) != len(want) {
			var g []string
			for _, d := range got {
				g = append(g, d.Subscription+"/"+d.Event.ID)
			}
			t.Errorf("%s: %d dead letters %v, want %d", name, len(got), g, len(want))
			return
		}
		for i := range got {
			if d := sameDeadLetter(got[i], want[i]); d != "" {
				t.Errorf("%s: dead letter %d: %s", name, i, d)
			}
		}
	}
	check("all, oldest first", list(herald.DeadLetterQuery{}), d11, d12, d21)
	check("by subscription", list(herald.DeadLetterQuery{Subscription: "s1"}), d11, d12)
	check("by event", list(herald.DeadLetterQuery{EventID: e1.ID}), d11, d21)
	check("by ids", list(herald.DeadLetterQuery{IDs: []string{d21.ID, d12.ID}}), d12, d21)
	check("by unknown id", list(herald.DeadLetterQuery{IDs: []string{"nope"}}))
	check("limit", list(herald.DeadLetterQuery{Limit: 2}), d11, d12)
	check("subscription and event", list(herald.DeadLetterQuery{Subscription: "s2", EventID: e1.ID}), d21)
	check("only redrive, none marked", list(herald.DeadLetterQuery{OnlyRedrive: true}))

	// Redrive marks entries.
	redrive := func(q herald.DeadLetterQuery, want int) {
		t.Helper()
		n, err := st.RedriveDeadLetters(ctx, q)
		if err != nil || n != want {
			t.Errorf("RedriveDeadLetters(%+v) = %d, %v; want %d", q, n, err, want)
		}
	}
	redrive(herald.DeadLetterQuery{IDs: []string{d11.ID}}, 1)
	redrive(herald.DeadLetterQuery{Subscription: "nobody"}, 0)
	d11.Redrive = true
	check("only redrive", list(herald.DeadLetterQuery{OnlyRedrive: true}), d11)
	redrive(herald.DeadLetterQuery{Subscription: "s2"}, 1)
	d21.Redrive = true
	check("only redrive of s2", list(herald.DeadLetterQuery{OnlyRedrive: true, Subscription: "s2"}), d21)

	// The redriven s1 entry failed again: the new entry replaces the old one
	// and is no longer marked.
	d11b := deadLetter(copies[e1.ID], base.Add(10*time.Second))
	d11b.Errors = append(d11.Errors, herald.AttemptError{Attempt: 4, At: base.Add(10 * time.Second), Duration: herald.Duration(time.Second), Error: "still failing"})
	mustCommit(t, st, "s1", herald.Progress{Checkpoint: 2, DeadLetters: []herald.DeadLetter{d11b}})
	d11b.ID, d11b.Subscription = d11.ID, "s1"
	check("after replacing", list(herald.DeadLetterQuery{Subscription: "s1"}), d12, d11b)

	// The redriven s2 entry succeeded: it is resolved.
	mustCommit(t, st, "s2", herald.Progress{Checkpoint: 1, Resolved: []string{d21.ID}})
	check("after resolving", list(herald.DeadLetterQuery{}), d12, d11b)

	// Discard.
	n, err := st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{IDs: []string{d12.ID}})
	if err != nil || n != 1 {
		t.Errorf("DeleteDeadLetters(one id) = %d, %v; want 1", n, err)
	}
	n, err = st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{Subscription: "nobody"})
	if err != nil || n != 0 {
		t.Errorf("DeleteDeadLetters(no match) = %d, %v; want 0", n, err)
	}
	check("after deleting", list(herald.DeadLetterQuery{}), d11b)
	n, err = st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{})
	if err != nil || n != 1 {
		t.Errorf("DeleteDeadLetters(all) = %d, %v; want 1", n, err)
	}
	check("after deleting all", list(herald.DeadLetterQuery{}))
	// The events themselves stay in the log.
	if _, err := st.Get(ctx, e1.ID); err != nil {
		t.Errorf("deleting a dead letter removed its event: %v", err)
	}
}

func (s *suite) testKV(t *testing.T) {
	t.Run("Values", s.testKVValues)
	t.Run("Names", s.testKVNames)
	t.Run("Create", s.testKVCreate)
	t.Run("CreateRace", s.testKVCreateRace)
	t.Run("Update", s.testKVUpdate)
	t.Run("UpdateRace", s.testKVUpdateRace)
	t.Run("SharedCreateRace", s.testKVSharedCreateRace)
	t.Run("DeleteErases", s.testKVDeleteErases)
}

func (s *suite) testKVValues(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	if _, err := st.GetValue(ctx, "subscriptions", "missing"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("GetValue of a missing key: %v, want ErrNotFound", err)
	}
	if m, err := st.ListValues(ctx, "empty"); err != nil || len(m) != 0 {
		t.Errorf("ListValues of an empty bucket = %v, %v", m, err)
	}
	want := map[string][]byte{
		"a":                       []byte("1"),
		"recording/123":           []byte(`{"position":7}`),
		"A.b-c_d=e":               {0, 1, 2, 255},
		"empty":                   {},
		"long/" + longKey(200):    []byte("x"),
		"push/webhook.notify-1=2": []byte("y"),
	}
	for k, v := range want {
		in := slices.Clone(v)
		if err := st.PutValue(ctx, "bucket", k, in); err != nil {
			t.Fatalf("PutValue(%q): %v", k, err)
		}
		if len(in) > 0 {
			in[0] ^= 0xff // the store must have kept its own copy
		}
	}
	if err := st.PutValue(ctx, "other", "a", []byte("other bucket")); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		got, err := st.GetValue(ctx, "bucket", k)
		if err != nil || string(got) != string(v) {
			t.Errorf("GetValue(%q) = %q, %v; want %q", k, got, err, v)
		}
	}
	all, err := st.ListValues(ctx, "bucket")
	if err != nil || len(all) != len(want) {
		t.Fatalf("ListValues = %d entries, %v; want %d", len(all), err, len(want))
	}
	for k, v := range want {
		if string(all[k]) != string(v) {
			t.Errorf("ListValues[%q] = %q, want %q", k, all[k], v)
		}
	}
	// Returned values are the caller's.
	got, _ := st.GetValue(ctx, "bucket", "a")
	got[0] = 'X'
	if again, _ := st.GetValue(ctx, "bucket", "a"); string(again) != "1" {
		t.Errorf("modifying a returned value changed the store: %q", again)
	}
	// Replace, delete.
	if err := st.PutValue(ctx, "bucket", "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.GetValue(ctx, "bucket", "a"); string(v) != "2" {
		t.Errorf("after replacing: %q", v)
	}
	if err := st.DeleteValue(ctx, "bucket", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetValue(ctx, "bucket", "a"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("GetValue after DeleteValue: %v, want ErrNotFound", err)
	}
	if err := st.DeleteValue(ctx, "bucket", "a"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if err := st.DeleteValue(ctx, "no-bucket", "a"); err != nil {
		t.Errorf("deleting from a missing bucket: %v", err)
	}
	if m, _ := st.ListValues(ctx, "bucket"); len(m) != len(want)-1 {
		t.Errorf("ListValues after a delete: %d entries, want %d", len(m), len(want)-1)
	}
	if v, _ := st.GetValue(ctx, "other", "a"); string(v) != "other bucket" {
		t.Errorf("buckets are not separate: %q", v)
	}
}

func longKey(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'k'
	}
	return string(b)
}
