package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"pgregory.net/rapid"
)

// testReadModel appends random events and checks random reads — name
// patterns with wildcards, correlation, subject, source, time range, limit,
// after — against herald.Filter.Match over the same events.
func (s *suite) testReadModel(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		ns := fmt.Sprintf("r%d", run)
		h0, err := st.Head(ctx)
		if err != nil {
			rt.Fatalf("Head: %v", err)
		}
		names := []string{ns + ".a", ns + ".a.b", ns + ".a.c", ns + ".b", ns + ".b.a.c", ns + ".ab"}
		values := []string{"", "x", "y"}
		n := rapid.IntRange(0, 30).Draw(rt, "events")
		var model []*herald.Event
		ts := base
		for i := range n {
			ts = ts.Add(time.Duration(rapid.IntRange(0, 3).Draw(rt, "tick")) * time.Second)
			e := propEvent(fmt.Sprintf("%s-e%d", ns, i), rapid.SampledFrom(names).Draw(rt, "name"), "", i)
			e.Timestamp = ts
			if v := rapid.SampledFrom(values).Draw(rt, "subject"); v != "" {
				e.Subject = ns + "/" + v
			}
			if v := rapid.SampledFrom(values).Draw(rt, "correlation"); v != "" {
				e.CorrelationID = ns + "-" + v
			}
			e.SourcePlugin = rapid.SampledFrom(values).Draw(rt, "source")
			model = append(model, e.Clone())
			batch := []*herald.Event{e}
			if _, err := st.Append(ctx, batch, herald.AppendOptions{}); err != nil {
				rt.Fatalf("Append: %v", err)
			}
			model[len(model)-1].Position = e.Position
		}
		patterns := []string{"", ns + ".>", ns + ".*", ns + ".a", ns + ".a.*", ns + ".a.>", ns + ".*.c", ns + ".*.a.>", ns + ".ab", ns + ".b.>"}
		for range 10 {
			f := herald.Filter{Name: rapid.SampledFrom(patterns).Draw(rt, "pattern")}
			if v := rapid.SampledFrom(values).Draw(rt, "f subject"); v != "" {
				f.Subject = ns + "/" + v
			}
			if v := rapid.SampledFrom(values).Draw(rt, "f correlation"); v != "" {
				f.CorrelationID = ns + "-" + v
			}
			f.SourcePlugin = rapid.SampledFrom(values).Draw(rt, "f source")
			if rapid.Bool().Draw(rt, "since") {
				f.Since = base.Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "since s")) * time.Second)
			}
			if rapid.Bool().Draw(rt, "until") {
				f.Until = base.Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "until s")) * time.Second)
			}
			f.Limit = rapid.IntRange(0, 5).Draw(rt, "limit")
			// After is at least h0, so reads stay within this case's events.
			after := h0 + uint64(rapid.IntRange(0, n+1).Draw(rt, "after"))
			var want []string
			for _, e := range model {
				if e.Position > after && f.Match(e) && (f.Limit == 0 || len(want) < f.Limit) {
					want = append(want, e.ID)
				}
			}
			got, err := collect(ctx, st, after, f)
			if err != nil {
				rt.Fatalf("Read(%d, %+v): %v", after, f, err)
			}
			if !slices.Equal(ids(got), want) {
				rt.Fatalf("Read(after %d, %+v) = %v, want %v", after, f, ids(got), want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Position <= got[i-1].Position {
					rt.Fatalf("Read out of order: %d after %d", got[i].Position, got[i-1].Position)
				}
			}
		}
	})
}

// testPruneModel draws events, retention rules, durable checkpoints and
// snapshots, and checks Prune's result and what remains against the rules
// as the Store contract states them.
func (s *suite) testPruneModel(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		ns := fmt.Sprintf("q%d", run)
		names := []string{ns + ".a", ns + ".a.b", ns + ".b", ns + ".c.d"}
		subjects := []string{"", ns + "/1", ns + "/2"}
		n := rapid.IntRange(1, 25).Draw(rt, "events")
		var evs []*herald.Event
		ts := now.Add(-10 * time.Hour)
		for i := range n {
			ts = ts.Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "minutes")) * time.Minute)
			e := propEvent(fmt.Sprintf("%s-e%d", ns, i), rapid.SampledFrom(names).Draw(rt, "name"), rapid.SampledFrom(subjects).Draw(rt, "subject"), i)
			e.Timestamp = ts
			evs = append(evs, e)
		}
		if _, err := st.Append(ctx, evs, herald.AppendOptions{}); err != nil {
			rt.Fatalf("Append: %v", err)
		}
		first := evs[0].Position
		pick := func(label string) uint64 { // a position around this case's events
			return first - 1 + uint64(rapid.IntRange(0, n).Draw(rt, label))
		}
		// Durable subscriptions of this case, removed when it ends so that
		// they hold back no later case.
		floor := ^uint64(0)
		subs := rapid.IntRange(0, 2).Draw(rt, "subscriptions")
		rt.Cleanup(func() {
			for i := range subs {
				_ = st.DeleteSubscription(ctx, fmt.Sprintf("%s-sub%d", ns, i))
			}
		})
		for i := range subs {
			p := pick("checkpoint")
			floor = min(floor, p)
			if err := st.Commit(ctx, fmt.Sprintf("%s-sub%d", ns, i), herald.Progress{Checkpoint: p}); err != nil {
				rt.Fatalf("Commit: %v", err)
			}
		}
		snaps := map[string]uint64{}
		for _, subj := range subjects[1:] {
			if rapid.Bool().Draw(rt, "snapshot") {
				p := pick("snapshot position")
				snaps[subj] = p
				if err := st.PutValue(ctx, herald.SnapshotBucket, subj, fmt.Appendf(nil, `{"position":%d}`, p)); err != nil {
					rt.Fatalf("PutValue: %v", err)
				}
			}
		}
		patterns := []string{ns + ".a", ns + ".*", ns + ".>", ns + ".a.>", ns + ".c.d", ns + ".b"}
		var rules []herald.RetentionRule
		for range rapid.IntRange(1, 3).Draw(rt, "rules") {
			r := herald.RetentionRule{Pattern: rapid.SampledFrom(patterns).Draw(rt, "pattern")}
			if rapid.Bool().Draw(rt, "max age") {
				r.MaxAge = herald.Duration(time.Duration(rapid.IntRange(1, 10).Draw(rt, "hours")) * time.Hour)
			}
			if rapid.Bool().Draw(rt, "max count") {
				r.MaxCount = rapid.IntRange(1, 6).Draw(rt, "count")
			}
			r.Force = rapid.IntRange(0, 3).Draw(rt, "force") == 0
			rules = append(rules, r)
		}

		// The contract, written out.
		governed := make([][]*herald.Event, len(rules))
		for _, e := range evs {
			for i, r := range rules {
				if herald.MatchName(r.Pattern, e.Name) {
					governed[i] = append(governed[i], e)
					break
				}
			}
		}
		var want herald.PruneResult
		deleted := map[string]bool{}
		for i, r := range rules {
			g := governed[i]
			for j, e := range g {
				old := r.MaxAge > 0 && now.Sub(e.Timestamp) > r.MaxAge.Std()
				over := r.MaxCount > 0 && j < len(g)-r.MaxCount
				if !old && !over {
					continue
				}
				snap, hasSnap := snaps[e.Subject]
				if (!r.Force && e.Position > floor) || (e.Subject != "" && hasSnap && e.Position > snap) {
					want.Held++
					continue
				}
				want.Deleted++
				deleted[e.ID] = true
			}
		}
		got, err := pruneStore(ctx, st, rules)
		if err != nil {
			rt.Fatalf("Prune: %v", err)
		}
		if got != want {
			rt.Fatalf("Prune(%+v) with floor %d, snapshots %v = %+v, want %+v", rules, floor, snaps, got, want)
		}
		var kept []string
		for _, e := range evs {
			if !deleted[e.ID] {
				kept = append(kept, e.ID)
			}
		}
		rest, err := collect(ctx, st, first-1, herald.Filter{Name: ns + ".>"})
		if err != nil {
			rt.Fatalf("Read: %v", err)
		}
		if !slices.Equal(ids(rest), kept) {
			rt.Fatalf("after Prune the log holds %v, want %v", ids(rest), kept)
		}
		// Pruning again deletes nothing more and holds the same events.
		again, err := pruneStore(ctx, st, rules)
		if err != nil || again != (herald.PruneResult{Held: want.Held}) {
			rt.Fatalf("second Prune = %+v, %v; want Held %d only", again, err, want.Held)
		}
	})
}
