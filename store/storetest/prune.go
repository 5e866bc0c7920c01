package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// The suite prunes "as of" now, an hour after base.
var now = base.Add(time.Hour)

// pruneBatch is the retention planner's batch in the suite: small, so
// that every test deletes in several DeleteEvents calls.
const pruneBatch = 3

// pruneStore runs the retention planner on st as of now.
func pruneStore(ctx context.Context, st herald.Store, rules []herald.RetentionRule) (herald.PruneResult, error) {
	return herald.Prune(ctx, st, rules, now, herald.PruneOptions{Batch: pruneBatch})
}

func prune(t *testing.T, st herald.Store, rules []herald.RetentionRule, want herald.PruneResult) {
	t.Helper()
	got, err := pruneStore(t.Context(), st, rules)
	if err != nil {
		t.Fatalf("Prune(%+v): %v", rules, err)
	}
	if got != want {
		t.Errorf("Prune(%+v) = %+v, want %+v", rules, got, want)
	}
}

// expectLog checks that the log holds exactly the events want, in order,
// and that the others are gone.
func expectLog(t *testing.T, st herald.Store, want []*herald.Event, gone []*herald.Event) {
	t.Helper()
	got := ids(readAll(t, st, 0, herald.Filter{}))
	if !equalStrings(got, ids(want)) {
		t.Errorf("log holds %v, want %v", got, ids(want))
	}
	for _, e := range gone {
		if _, err := st.Get(t.Context(), e.ID); !errors.Is(err, herald.ErrNotFound) {
			t.Errorf("Get of a pruned event: %v, want ErrNotFound", err)
		}
	}
	for _, e := range want {
		if _, err := st.Get(t.Context(), e.ID); err != nil {
			t.Errorf("Get of a kept event: %v", err)
		}
	}
}

func old(d time.Duration) func(*herald.Event) { return at(now.Add(-d)) }

func hours(n int) herald.Duration { return herald.Duration(time.Duration(n) * time.Hour) }

func (s *suite) testPrune(t *testing.T) {
	t.Run("ByAge", func(t *testing.T) {
		st := s.open(t)
		o1 := event(t, "debug.trace", 1, old(3*time.Hour))
		o2 := event(t, "app.started", 2, old(2*time.Hour))
		edge := event(t, "app.edge", 3, old(time.Hour)) // exactly MaxAge old: kept
		n1 := event(t, "app.ready", 4, old(time.Minute))
		o3 := event(t, "app.late_old", 5, old(25*time.Hour)) // old, after newer ones
		mustAppend(t, st, herald.AppendOptions{}, o1, o2, edge, n1, o3)
		h := head(t, st)
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}}, herald.PruneResult{Deleted: 3})
		expectLog(t, st, []*herald.Event{edge, n1}, []*herald.Event{o1, o2, o3})
		if got := head(t, st); got != h {
			t.Errorf("Head after Prune = %d, want %d", got, h)
		}
		// Positions are never reused.
		res := mustAppend(t, st, herald.AppendOptions{}, event(t, "app.after", 6))
		if res[0].Position != h+1 {
			t.Errorf("first append after Prune at %d, want %d", res[0].Position, h+1)
		}
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}}, herald.PruneResult{})
		prune(t, st, nil, herald.PruneResult{})
	})
	t.Run("ByCount", func(t *testing.T) {
		st := s.open(t)
		var debug, app []*herald.Event
		var all []*herald.Event
		for i := range 8 {
			if i%3 == 2 {
				e := event(t, "app.event", i)
				app = append(app, e)
				all = append(all, e)
			} else {
				e := event(t, "debug.tick", i)
				debug = append(debug, e)
				all = append(all, e)
			}
		}
		mustAppend(t, st, herald.AppendOptions{}, all...)
		// debug: 0 1 3 4 6 7; app: 2 5. Keep the two newest debug events;
		// app events match no rule and are kept.
		prune(t, st, []herald.RetentionRule{{Pattern: "debug.>", MaxCount: 2}}, herald.PruneResult{Deleted: 4})
		expectLog(t, st, []*herald.Event{app[0], app[1], debug[4], debug[5]}, debug[:4])
		// Age and count together: either deletes.
		st2 := s.open(t)
		a := event(t, "x.y", 0, old(5*time.Hour))
		b := event(t, "x.y", 1, old(time.Minute))
		c := event(t, "x.y", 2, old(time.Minute))
		d := event(t, "x.y", 3, old(time.Minute))
		mustAppend(t, st2, herald.AppendOptions{}, a, b, c, d)
		prune(t, st2, []herald.RetentionRule{{Pattern: "x.y", MaxAge: hours(1), MaxCount: 2}}, herald.PruneResult{Deleted: 2})
		expectLog(t, st2, []*herald.Event{c, d}, []*herald.Event{a, b})
	})
	t.Run("FirstMatchingRule", func(t *testing.T) {
		st := s.open(t)
		audit := event(t, "audit.login", 0, old(48*time.Hour))
		dbg := event(t, "debug.x", 1, old(2*time.Hour))
		other := event(t, "app.x", 2, old(2*time.Hour))
		recent := event(t, "app.y", 3, old(time.Minute))
		mustAppend(t, st, herald.AppendOptions{}, audit, dbg, other, recent)
		rules := []herald.RetentionRule{
			{Pattern: "audit.>"},                   // kept forever
			{Pattern: "debug.>", MaxAge: hours(1)}, // a day in real life
			{Pattern: ">", MaxAge: hours(3)},       // the default
			{Pattern: "app.x", MaxAge: hours(1)},   // never reached: > matched first
		}
		prune(t, st, rules, herald.PruneResult{Deleted: 1})
		expectLog(t, st, []*herald.Event{audit, other, recent}, []*herald.Event{dbg})
	})
	t.Run("HeldByCheckpoint", func(t *testing.T) {
		st := s.open(t)
		var evs []*herald.Event
		for i := range 5 {
			evs = append(evs, event(t, "a.b", i, old(2*time.Hour)))
		}
		mustAppend(t, st, herald.AppendOptions{}, evs...)
		mustCommit(t, st, "fast", herald.Progress{Checkpoint: evs[4].Position})
		mustCommit(t, st, "slow", herald.Progress{Checkpoint: evs[1].Position})
		rule := herald.RetentionRule{Pattern: ">", MaxAge: hours(1)}
		prune(t, st, []herald.RetentionRule{rule}, herald.PruneResult{Deleted: 2, Held: 3})
		expectLog(t, st, evs[2:], evs[:2])
		// The slow subscription catches up by one.
		mustCommit(t, st, "slow", herald.Progress{Checkpoint: evs[2].Position})
		prune(t, st, []herald.RetentionRule{rule}, herald.PruneResult{Deleted: 1, Held: 2})
		// Force deletes what the subscription still needs.
		rule.Force = true
		prune(t, st, []herald.RetentionRule{rule}, herald.PruneResult{Deleted: 2})
		expectLog(t, st, nil, evs)
	})
	t.Run("ReleasedByDeleteSubscription", func(t *testing.T) {
		st := s.open(t)
		e1, e2 := event(t, "a.b", 1, old(2*time.Hour)), event(t, "a.b", 2, old(2*time.Hour))
		mustAppend(t, st, herald.AppendOptions{}, e1, e2)
		mustCommit(t, st, "gone", herald.Progress{Checkpoint: 0})
		rules := []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}}
		prune(t, st, rules, herald.PruneResult{Held: 2})
		if err := st.DeleteSubscription(t.Context(), "gone"); err != nil {
			t.Fatal(err)
		}
		prune(t, st, rules, herald.PruneResult{Deleted: 2})
	})
	t.Run("HeldBySnapshot", func(t *testing.T) {
		st := s.open(t)
		var agg1, agg2 []*herald.Event
		for i := range 4 {
			agg1 = append(agg1, event(t, "account.credited", i, old(5*time.Hour), subject("account/1")))
			agg2 = append(agg2, event(t, "account.credited", i, old(5*time.Hour), subject("account/2")))
		}
		mustAppend(t, st, herald.AppendOptions{}, agg1[0], agg2[0], agg1[1], agg2[1], agg1[2], agg2[2], agg1[3], agg2[3])
		snap := fmt.Sprintf(`{"position":%d,"state":{"balance":20}}`, agg1[1].Position)
		if err := st.PutValue(t.Context(), herald.SnapshotBucket, "account/1", []byte(snap)); err != nil {
			t.Fatal(err)
		}
		// Even Force does not delete events newer than the subject's snapshot;
		// a subject without a snapshot is not held.
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1), Force: true}}, herald.PruneResult{Deleted: 6, Held: 2})
		expectLog(t, st, agg1[2:], append(agg1[:2:2], agg2...))
		// A subject's version does not go down when its events are pruned,
		// so optimistic concurrency keeps working for the aggregate.
		if v := subjectVersion(t, st, "account/1"); v != 4 {
			t.Errorf("version of account/1 after pruning = %d, want 4", v)
		}
		if v := subjectVersion(t, st, "account/2"); v != 4 {
			t.Errorf("version of account/2 after pruning = %d, want 4", v)
		}
		mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 4}, event(t, "account.debited", 9, subject("account/1")))
	})
	t.Run("RemovesOutcomesAndDeadLetters", func(t *testing.T) {
		st := s.open(t)
		ctx := t.Context()
		e1 := event(t, "a.b", 1, old(2*time.Hour), correlation("chain"))
		e2 := event(t, "a.b", 2, old(2*time.Hour), correlation("chain"))
		keep := event(t, "a.b", 3, correlation("chain"))
		mustAppend(t, st, herald.AppendOptions{}, e1, e2, keep)
		mustCommit(t, st, "s", herald.Progress{
			Checkpoint:  keep.Position,
			Outcomes:    []herald.Outcome{outcome(e1, "s", herald.OutcomeDeadLettered), outcome(e2, "s", herald.OutcomeSucceeded), outcome(keep, "s", herald.OutcomeSucceeded)},
			DeadLetters: []herald.DeadLetter{deadLetter(e1.Clone(), base)},
		})
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}}, herald.PruneResult{Deleted: 2})
		for _, q := range []herald.OutcomeQuery{{EventID: e1.ID}, {EventID: e2.ID}} {
			if os, err := st.Outcomes(ctx, q); err != nil || len(os) != 0 {
				t.Errorf("Outcomes(%+v) after pruning its event = %v, %v; want none", q, os, err)
			}
		}
		os, err := st.Outcomes(ctx, herald.OutcomeQuery{Subscription: "s"})
		if err != nil || len(os) != 1 || os[0].EventID != keep.ID {
			t.Errorf("outcomes of s after pruning = %v, %v; want only the kept event's", outcomeKeys(os), err)
		}
		if os, _ := st.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: "chain"}); len(os) != 1 {
			t.Errorf("outcomes of the correlation after pruning: %d, want 1", len(os))
		}
		if ds, err := st.DeadLetters(ctx, herald.DeadLetterQuery{}); err != nil || len(ds) != 0 {
			t.Errorf("dead letters after pruning their event = %d, %v; want none", len(ds), err)
		}
	})
	t.Run("KeepsSubjectVersion", func(t *testing.T) {
		// Deleting a subject's events never takes its version back: the
		// next conditional append continues from it.
		st := s.open(t)
		a := event(t, "acct.opened", 1, old(5*time.Hour), subject("acct/9"))
		b := event(t, "acct.credited", 2, old(5*time.Hour), subject("acct/9"))
		mustAppend(t, st, herald.AppendOptions{}, a, b)
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}}, herald.PruneResult{Deleted: 2})
		if v, err := st.SubjectVersion(t.Context(), "acct/9"); err != nil || v != 2 {
			t.Errorf("SubjectVersion after pruning its events = %d, %v; want 2", v, err)
		}
		mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 2}, event(t, "acct.debited", 3, subject("acct/9")))
	})
	t.Run("ByCountHeldByCheckpoint", func(t *testing.T) {
		// Count and the checkpoint floor together, over several batches:
		// the four oldest are over the count, the two the slow
		// subscription has not reached are held.
		st := s.open(t)
		var evs []*herald.Event
		for i := range 10 {
			evs = append(evs, event(t, "tick.n", i))
		}
		mustAppend(t, st, herald.AppendOptions{}, evs...)
		mustCommit(t, st, "slow", herald.Progress{Checkpoint: evs[5].Position})
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 2}}, herald.PruneResult{Deleted: 6, Held: 2})
		expectLog(t, st, evs[6:], evs[:6])
		prune(t, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 2, Force: true}}, herald.PruneResult{Deleted: 2})
		expectLog(t, st, evs[8:], evs[:8])
	})
	t.Run("UnreadableSnapshotHoldsItsSubject", func(t *testing.T) {
		// A snapshot that does not parse, or has no position, holds every
		// event of its subject, even under Force, and is logged; other
		// subjects are pruned as usual.
		st := s.open(t)
		var broken, nopos, plain []*herald.Event
		for i := range 3 {
			broken = append(broken, event(t, "acct.credited", i, old(5*time.Hour), subject("acct/broken")))
			nopos = append(nopos, event(t, "acct.credited", i, old(5*time.Hour), subject("acct/nopos")))
			plain = append(plain, event(t, "acct.credited", i, old(5*time.Hour), subject("acct/plain")))
		}
		mustAppend(t, st, herald.AppendOptions{}, append(append(slices.Clone(broken), nopos...), plain...)...)
		for subj, v := range map[string]string{"acct/broken": `{"position":`, "acct/nopos": `{"state":{"balance":3}}`} {
			if err := st.PutValue(t.Context(), herald.SnapshotBucket, subj, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, nil))
		rules := []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1), Force: true}}
		got, err := herald.Prune(t.Context(), st, rules, now, herald.PruneOptions{Batch: pruneBatch, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if want := (herald.PruneResult{Deleted: 3, Held: 6}); got != want {
			t.Errorf("Prune with unreadable snapshots = %+v, want %+v", got, want)
		}
		expectLog(t, st, append(slices.Clone(broken), nopos...), plain)
		for _, subj := range []string{"acct/broken", "acct/nopos"} {
			if !strings.Contains(logged.String(), subj) {
				t.Errorf("the unreadable snapshot of %s was not logged: %q", subj, logged.String())
			}
		}
	})
	t.Run("DeleteEvents", func(t *testing.T) {
		// The mechanism alone: the given positions go with their outcomes
		// and dead letters; positions not held are skipped; the head and
		// subject versions stay.
		st := s.open(t)
		ctx := t.Context()
		var evs []*herald.Event
		for i := range 5 {
			evs = append(evs, event(t, "a.b", i, subject("agg/1"), correlation("c")))
		}
		mustAppend(t, st, herald.AppendOptions{}, evs...)
		mustCommit(t, st, "s", herald.Progress{
			Checkpoint:  evs[4].Position,
			Outcomes:    []herald.Outcome{outcome(evs[1], "s", herald.OutcomeSucceeded), outcome(evs[2], "s", herald.OutcomeDeadLettered)},
			DeadLetters: []herald.DeadLetter{deadLetter(evs[3].Clone(), base)},
		})
		h := head(t, st)
		n, err := st.DeleteEvents(ctx, []uint64{evs[1].Position, evs[3].Position, evs[4].Position, h + 10})
		if err != nil || n != 3 {
			t.Fatalf("DeleteEvents = %d, %v; want 3", n, err)
		}
		expectLog(t, st, []*herald.Event{evs[0], evs[2]}, []*herald.Event{evs[1], evs[3], evs[4]})
		if n, err := st.DeleteEvents(ctx, []uint64{evs[1].Position}); err != nil || n != 0 {
			t.Errorf("DeleteEvents of a deleted position = %d, %v; want 0", n, err)
		}
		if n, err := st.DeleteEvents(ctx, nil); err != nil || n != 0 {
			t.Errorf("DeleteEvents of nothing = %d, %v; want 0", n, err)
		}
		if got := head(t, st); got != h {
			t.Errorf("Head after DeleteEvents = %d, want %d", got, h)
		}
		if v := subjectVersion(t, st, "agg/1"); v != 5 {
			t.Errorf("version of agg/1 after DeleteEvents = %d, want 5", v)
		}
		os, err := st.Outcomes(ctx, herald.OutcomeQuery{CorrelationID: "c"})
		if err != nil || len(os) != 1 || os[0].EventID != evs[2].ID {
			t.Errorf("outcomes after DeleteEvents = %v, %v; want only the kept event's", outcomeKeys(os), err)
		}
		if ds, err := st.DeadLetters(ctx, herald.DeadLetterQuery{}); err != nil || len(ds) != 0 {
			t.Errorf("dead letters after DeleteEvents = %d, %v; want none", len(ds), err)
		}
		// Every event of the subject gone: its version still holds.
		if _, err := st.DeleteEvents(ctx, []uint64{evs[0].Position, evs[2].Position}); err != nil {
			t.Fatal(err)
		}
		if v := subjectVersion(t, st, "agg/1"); v != 5 {
			t.Errorf("version of agg/1 with no event left = %d, want 5", v)
		}
		r := mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 5}, event(t, "a.b", 9, subject("agg/1")))
		if r[0].Position != h+1 {
			t.Errorf("append after DeleteEvents at %d, want %d", r[0].Position, h+1)
		}
	})
	t.Run("DeletedIDsStayDuplicates", func(t *testing.T) {
		if !s.f.KeepsDeletedIDs {
			t.Skip("the store forgets the ids of deleted events")
		}
		st := s.open(t)
		a := event(t, "tmp.a", 1, old(2*time.Hour))
		b := event(t, "tmp.b", 2, old(2*time.Hour), subject("agg/1"))
		keep := event(t, "keep.me", 3)
		mustAppend(t, st, herald.AppendOptions{}, a, b, keep)
		prune(t, st, []herald.RetentionRule{{Pattern: "tmp.>", MaxAge: hours(1)}}, herald.PruneResult{Deleted: 2})
		fresh := event(t, "new.one", 4)
		got := mustAppend(t, st, herald.AppendOptions{}, again(a), fresh, again(b))
		want := []herald.AppendResult{{Position: a.Position, Duplicate: true}, {Position: keep.Position + 1}, {Position: b.Position, Duplicate: true}}
		if !slices.Equal(got, want) {
			t.Errorf("append of deleted ids = %+v, want %+v", got, want)
		}
		got = mustAppend(t, st, herald.AppendOptions{CheckVersion: true}, again(b))
		if got[0] != (herald.AppendResult{Position: b.Position, Duplicate: true}) {
			t.Errorf("conditional append of a deleted id = %+v, want a duplicate at %d", got[0], b.Position)
		}
		expectLog(t, st, []*herald.Event{keep, fresh}, []*herald.Event{a, b})
	})
	t.Run("InvalidRule", func(t *testing.T) {
		st := s.open(t)
		e := event(t, "a.b", 1, old(5*time.Hour))
		mustAppend(t, st, herald.AppendOptions{}, e)
		for _, p := range []string{"", "A.b", "a.>.b", "a..b"} {
			if _, err := pruneStore(t.Context(), st, []herald.RetentionRule{{Pattern: ">", MaxAge: hours(1)}, {Pattern: p}}); !errors.Is(err, herald.ErrInvalidEvent) {
				t.Errorf("Prune with pattern %q: %v, want ErrInvalidEvent", p, err)
			}
		}
		expectLog(t, st, []*herald.Event{e}, nil)
	})
}

func (s *suite) testClose(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	e := event(t, "a.b", 1)
	mustAppend(t, st, herald.AppendOptions{}, e)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	closed := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, herald.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	_, err := st.Append(ctx, []*herald.Event{event(t, "a.b", 2)}, herald.AppendOptions{})
	closed("Append", err)
	_, err = collect(ctx, st, 0, herald.Filter{})
	closed("Read", err)
	_, err = st.Get(ctx, e.ID)
	closed("Get", err)
	_, err = st.Head(ctx)
	closed("Head", err)
	_, err = st.Wait(ctx, 0)
	closed("Wait", err)
	_, err = st.SubjectVersion(ctx, "x")
	closed("SubjectVersion", err)
	_, _, err = st.Checkpoint(ctx, "s")
	closed("Checkpoint", err)
	_, err = st.Checkpoints(ctx)
	closed("Checkpoints", err)
	closed("Commit", st.Commit(ctx, "s", herald.Progress{Checkpoint: 1}))
	closed("DeleteSubscription", st.DeleteSubscription(ctx, "s"))
	_, err = st.Outcomes(ctx, herald.OutcomeQuery{Subscription: "s"})
	closed("Outcomes", err)
	_, err = st.DeadLetters(ctx, herald.DeadLetterQuery{})
	closed("DeadLetters", err)
	_, err = st.RedriveDeadLetters(ctx, herald.DeadLetterQuery{})
	closed("RedriveDeadLetters", err)
	_, err = st.DeleteDeadLetters(ctx, herald.DeadLetterQuery{})
	closed("DeleteDeadLetters", err)
	closed("PutValue", st.PutValue(ctx, "b", "k", []byte("v")))
	_, err = st.GetValue(ctx, "b", "k")
	closed("GetValue", err)
	closed("DeleteValue", st.DeleteValue(ctx, "b", "k"))
	_, err = st.ListValues(ctx, "b")
	closed("ListValues", err)
	_, err = st.DeleteEvents(ctx, []uint64{1})
	closed("DeleteEvents", err)
	_, err = pruneStore(ctx, st, herald.DefaultRetention())
	closed("Prune", err)
}
