package storetest

import (
	"testing"

	"github.com/heraldhq/herald"
)

// testLimits checks the limits herald defines once for every store (KV
// names are checked with the KV).
func (s *suite) testLimits(t *testing.T) {
	t.Run("DefaultOutcomeLimit", func(t *testing.T) {
		st := s.open(t)
		n := herald.DefaultOutcomeLimit + 1
		evs := make([]*herald.Event, n)
		outs := make([]herald.Outcome, n)
		for i := range evs {
			evs[i] = event(t, "a.b", i)
		}
		for i := 0; i < n; i += 100 {
			mustAppend(t, st, herald.AppendOptions{}, evs[i:min(i+100, n)]...)
		}
		for i, e := range evs {
			outs[i] = outcome(e, "s", herald.OutcomeSucceeded)
		}
		mustCommit(t, st, "s", herald.Progress{Checkpoint: evs[n-1].Position, Outcomes: outs})
		got, err := st.Outcomes(t.Context(), herald.OutcomeQuery{Subscription: "s"})
		if err != nil || len(got) != herald.DefaultOutcomeLimit {
			t.Errorf("Outcomes without a limit = %d, %v; want %d", len(got), err, herald.DefaultOutcomeLimit)
		}
		if got, err := st.Outcomes(t.Context(), herald.OutcomeQuery{Subscription: "s", Limit: n}); err != nil || len(got) != n {
			t.Errorf("Outcomes with limit %d = %d, %v", n, len(got), err)
		}
	})
}
