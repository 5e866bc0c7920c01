package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

// testLimits checks the limits herald defines once for every store: the
// length of KV names and the default cap on outcomes.
func (s *suite) testLimits(t *testing.T) {
	t.Run("KVNameLength", func(t *testing.T) {
		st := s.open(t)
		ctx := t.Context()
		longest := strings.Repeat("k", herald.MaxKVNameLen)
		if err := st.PutValue(ctx, longest, longest, []byte("v")); err != nil {
			t.Fatalf("PutValue with %d-byte names: %v", herald.MaxKVNameLen, err)
		}
		if v, err := st.GetValue(ctx, longest, longest); err != nil || string(v) != "v" {
			t.Errorf("GetValue with %d-byte names = %q, %v", herald.MaxKVNameLen, v, err)
		}
		// Any subject can name a snapshot.
		subj := strings.Repeat("s", herald.MaxSubjectLen)
		if err := st.PutValue(ctx, herald.SnapshotBucket, subj, []byte(`{"position":1}`)); err != nil {
			t.Errorf("PutValue of the snapshot of a %d-byte subject: %v", herald.MaxSubjectLen, err)
		}
		over := longest + "k"
		if err := st.PutValue(ctx, "b", over, nil); !errors.Is(err, herald.ErrInvalidEvent) {
			t.Errorf("PutValue with a %d-byte key: %v, want ErrInvalidEvent", len(over), err)
		}
		if err := st.PutValue(ctx, over, "k", nil); !errors.Is(err, herald.ErrInvalidEvent) {
			t.Errorf("PutValue with a %d-byte bucket: %v, want ErrInvalidEvent", len(over), err)
		}
	})
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
