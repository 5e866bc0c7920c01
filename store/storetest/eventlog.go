package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

func (s *suite) testEventLog(t *testing.T) {
	t.Run("Empty", s.testEmpty)
	t.Run("AppendAndRead", s.testAppendAndRead)
	t.Run("ReadAfter", s.testReadAfter)
	t.Run("ReadFilters", s.testReadFilters)
	t.Run("ReadStopsEarly", s.testReadStopsEarly)
	t.Run("ReadCanceled", s.testReadCanceled)
	t.Run("Get", s.testGet)
	t.Run("IdempotentAppend", s.testIdempotentAppend)
	t.Run("DuplicateWithinBatch", s.testDuplicateWithinBatch)
	t.Run("AtomicBatch", s.testAtomicBatch)
	t.Run("ExpectedVersion", s.testExpectedVersion)
	t.Run("ExpectedVersionBatch", s.testExpectedVersionBatch)
	t.Run("ExpectedVersionNeedsOneSubject", s.testExpectedVersionNeedsOneSubject)
	t.Run("RetriedConditionalAppend", s.testRetriedConditionalAppend)
	t.Run("SubjectVersion", s.testSubjectVersion)
}

func (s *suite) testEmpty(t *testing.T) {
	st := s.open(t)
	if h := head(t, st); h != 0 {
		t.Errorf("Head of an empty store = %d, want 0", h)
	}
	if evs := readAll(t, st, 0, herald.Filter{}); len(evs) != 0 {
		t.Errorf("Read of an empty store yielded %d events", len(evs))
	}
	if _, err := st.Get(t.Context(), herald.NewID()); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("Get in an empty store: %v, want ErrNotFound", err)
	}
	res, err := st.Append(t.Context(), nil, herald.AppendOptions{})
	if err != nil || len(res) != 0 {
		t.Errorf("Append of no events = %v, %v; want no results and no error", res, err)
	}
	if h := head(t, st); h != 0 {
		t.Errorf("Head after an empty append = %d, want 0", h)
	}
}

func (s *suite) testAppendAndRead(t *testing.T) {
	st := s.open(t)
	full := event(t, "recording.completed", 1, func(e *herald.Event) {
		e.CausationID = herald.NewID()
		e.CorrelationID = "corr-full"
		e.SourcePlugin = "recorder"
		e.Subject = "recording/1"
		e.Version = 2
		e.Priority = herald.PriorityCritical
		e.Metadata = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k": ""}
		e.Data = []byte(`{"path":"/rec/1.wav","size":12345,"tags":["a","b"],"nested":{"x":null,"u":"\u00e9\u2028<&>"}}`)
	})
	want := []*herald.Event{
		event(t, "recording.started", 0),
		full,
		event(t, "noise_reduction.completed", 2),
	}
	// Keep copies: the events handed to Append belong to the store.
	copies := make([]*herald.Event, len(want))
	for i, e := range want {
		copies[i] = again(e)
	}
	var got []herald.AppendResult
	got = append(got, mustAppend(t, st, herald.AppendOptions{}, want[0])...)
	got = append(got, mustAppend(t, st, herald.AppendOptions{}, want[1], want[2])...)
	for i, r := range got {
		if r.Duplicate {
			t.Errorf("result %d: Duplicate set for a new event", i)
		}
		if i > 0 && r.Position <= got[i-1].Position {
			t.Errorf("positions not strictly increasing: %d then %d", got[i-1].Position, r.Position)
		}
		if r.Position == 0 {
			t.Errorf("result %d: position 0", i)
		}
		if want[i].Position != r.Position {
			t.Errorf("Append did not set event %d's Position: %d, want %d", i, want[i].Position, r.Position)
		}
	}
	if h := head(t, st); h != got[2].Position {
		t.Errorf("Head = %d, want the last position %d", h, got[2].Position)
	}
	evs := readAll(t, st, 0, herald.Filter{})
	if len(evs) != 3 {
		t.Fatalf("Read yielded %d events, want 3", len(evs))
	}
	for i, e := range evs {
		if d := sameEvent(e, copies[i], got[i].Position); d != "" {
			t.Errorf("event %d read back differs: %s", i, d)
		}
	}
	for i, c := range copies {
		e, err := st.Get(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", c.ID, err)
		}
		if d := sameEvent(e, c, got[i].Position); d != "" {
			t.Errorf("Get of event %d differs: %s", i, d)
		}
	}
}

func (s *suite) testReadAfter(t *testing.T) {
	st := s.open(t)
	var evs []*herald.Event
	for i := range 10 {
		evs = append(evs, event(t, "a.b", i))
	}
	res := mustAppend(t, st, herald.AppendOptions{}, evs...)
	for k := range res {
		after := res[k].Position
		got := readAll(t, st, after, herald.Filter{})
		if len(got) != len(res)-k-1 {
			t.Fatalf("Read after %d yielded %d events, want %d", after, len(got), len(res)-k-1)
		}
		for i, e := range got {
			if e.Position != res[k+1+i].Position {
				t.Errorf("Read after %d: event %d at position %d, want %d", after, i, e.Position, res[k+1+i].Position)
			}
		}
	}
	// Reading from beyond the head yields nothing.
	if got := readAll(t, st, res[9].Position+100, herald.Filter{}); len(got) != 0 {
		t.Errorf("Read beyond the head yielded %d events", len(got))
	}
	// Limit.
	for _, limit := range []int{1, 3, 10, 11} {
		got := readAll(t, st, 0, herald.Filter{Limit: limit})
		if want := min(limit, 10); len(got) != want {
			t.Errorf("Read with Limit %d yielded %d events, want %d", limit, len(got), want)
		}
		for i, e := range got {
			if e.Position != res[i].Position {
				t.Errorf("Limit %d: event %d at %d, want %d", limit, i, e.Position, res[i].Position)
			}
		}
	}
	got := readAll(t, st, res[4].Position, herald.Filter{Limit: 2})
	if len(got) != 2 || got[0].Position != res[5].Position || got[1].Position != res[6].Position {
		t.Errorf("Read after %d with Limit 2 = %v, want positions %d, %d", res[4].Position, positions(got), res[5].Position, res[6].Position)
	}
}

func (s *suite) testReadFilters(t *testing.T) {
	st := s.open(t)
	t0 := base
	evs := []*herald.Event{
		event(t, "recording.started", 0, correlation("c1"), source("recorder"), subject("rec/1"), at(t0)),
		event(t, "recording.completed", 1, correlation("c1"), source("recorder"), subject("rec/1"), at(t0.Add(time.Minute))),
		event(t, "noise_reduction.completed", 2, correlation("c1"), source("denoiser"), subject("rec/1"), at(t0.Add(2*time.Minute))),
		event(t, "recording.started", 3, correlation("c2"), source("recorder"), subject("rec/2"), at(t0.Add(3*time.Minute))),
		event(t, "recording.completed.local", 4, correlation("c2"), source("recorder"), at(t0.Add(4*time.Minute))),
		event(t, "transcription_local.completed", 5, correlation("c2"), source("transcriber"), subject("rec/2"), at(t0.Add(5*time.Minute)), priority(herald.PriorityHigh)),
	}
	all := ids(evs)
	mustAppend(t, st, herald.AppendOptions{}, evs...)
	pick := func(idx ...int) []string {
		out := []string{}
		for _, i := range idx {
			out = append(out, all[i])
		}
		return out
	}
	tests := []struct {
		name string
		f    herald.Filter
		want []string
	}{
		{"none", herald.Filter{}, all},
		{"all pattern", herald.Filter{Name: ">"}, all},
		{"literal name", herald.Filter{Name: "recording.started"}, pick(0, 3)},
		{"one segment", herald.Filter{Name: "recording.*"}, pick(0, 1, 3)},
		{"one or more segments", herald.Filter{Name: "recording.>"}, pick(0, 1, 3, 4)},
		{"leading wildcard", herald.Filter{Name: "*.completed"}, pick(1, 2, 5)},
		{"no match", herald.Filter{Name: "desktop_notification.completed"}, pick()},
		{"correlation", herald.Filter{CorrelationID: "c2"}, pick(3, 4, 5)},
		{"subject", herald.Filter{Subject: "rec/1"}, pick(0, 1, 2)},
		{"source", herald.Filter{SourcePlugin: "recorder"}, pick(0, 1, 3, 4)},
		{"since inclusive", herald.Filter{Since: t0.Add(4 * time.Minute)}, pick(4, 5)},
		{"until exclusive", herald.Filter{Until: t0.Add(2 * time.Minute)}, pick(0, 1)},
		{"time range", herald.Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, pick(1, 2)},
		{"combined", herald.Filter{Name: "recording.>", CorrelationID: "c2", SourcePlugin: "recorder", Subject: "rec/2"}, pick(3)},
		{"limit counts matches", herald.Filter{SourcePlugin: "recorder", Limit: 3}, pick(0, 1, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(readAll(t, st, 0, tt.f))
			if !equalStrings(got, tt.want) {
				t.Errorf("Read(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
	// A filter combines with after.
	got := ids(readAll(t, st, evs[1].Position, herald.Filter{CorrelationID: "c1"}))
	if !equalStrings(got, pick(2)) {
		t.Errorf("Read after %d for c1 = %v, want %v", evs[1].Position, got, pick(2))
	}
}

// testReadStopsEarly checks that a consumer may stop iterating at any time,
// and that a filter matching little still ends.
func (s *suite) testReadStopsEarly(t *testing.T) {
	st := s.open(t)
	var evs []*herald.Event
	for i := range 600 {
		name := "noise.tick"
		if i%250 == 0 {
			name = "rare.event"
		}
		evs = append(evs, event(t, name, i))
	}
	mustAppend(t, st, herald.AppendOptions{}, evs...)
	n := 0
	for e, err := range st.Read(t.Context(), 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != evs[n].Position {
			t.Fatalf("event %d at %d, want %d", n, e.Position, evs[n].Position)
		}
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Errorf("read %d events before stopping, want 5", n)
	}
	got := ids(readAll(t, st, 0, herald.Filter{Name: "rare.event"}))
	if want := []string{evs[0].ID, evs[250].ID, evs[500].ID}; !equalStrings(got, want) {
		t.Errorf("sparse filter: %v, want %v", got, want)
	}
	// The store still works after an abandoned iteration.
	mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 1))
}

func (s *suite) testReadCanceled(t *testing.T) {
	st := s.open(t)
	mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 1), event(t, "a.b", 2))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := collect(ctx, st, 0, herald.Filter{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context: %v, want context.Canceled", err)
	}
}

func (s *suite) testGet(t *testing.T) {
	st := s.open(t)
	e := event(t, "a.b", 1)
	want := again(e)
	res := mustAppend(t, st, herald.AppendOptions{}, e)
	got, err := st.Get(t.Context(), want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameEvent(got, want, res[0].Position); d != "" {
		t.Errorf("Get: %s", d)
	}
	for _, id := range []string{herald.NewID(), "", "no-such-id", want.ID + "x"} {
		if _, err := st.Get(t.Context(), id); !errors.Is(err, herald.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", id, err)
		}
	}
}

func (s *suite) testIdempotentAppend(t *testing.T) {
	st := s.open(t)
	e := event(t, "a.b", 1, subject("s/1"))
	first := mustAppend(t, st, herald.AppendOptions{}, e)[0]
	mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 2))
	h := head(t, st)

	// The same id again, even with other content, is not stored again.
	retry := again(e)
	retry.Data = []byte(`{"n":999}`)
	res := mustAppend(t, st, herald.AppendOptions{}, retry)
	if !res[0].Duplicate || res[0].Position != first.Position {
		t.Errorf("appending a stored id again = %+v, want Duplicate at %d", res[0], first.Position)
	}
	if got := head(t, st); got != h {
		t.Errorf("Head moved from %d to %d on a duplicate", h, got)
	}
	if n := len(readAll(t, st, 0, herald.Filter{})); n != 2 {
		t.Errorf("the log holds %d events, want 2", n)
	}
	got, err := st.Get(t.Context(), e.ID)
	if err != nil || !jsonEqual(got.Data, []byte(`{"n":1}`)) {
		t.Errorf("Get after a duplicate: %v, %v; want the first event's data", got, err)
	}
	if v := subjectVersion(t, st, "s/1"); v != 1 {
		t.Errorf("a duplicate changed the subject version to %d", v)
	}

	// In a batch, new events are stored and stored ones are reported.
	n1, n2 := event(t, "a.c", 3), event(t, "a.c", 4)
	res = mustAppend(t, st, herald.AppendOptions{}, n1, again(e), n2)
	if res[0].Duplicate || res[2].Duplicate || !res[1].Duplicate {
		t.Errorf("mixed batch results %+v: want only the middle one Duplicate", res)
	}
	if res[1].Position != first.Position {
		t.Errorf("duplicate in a batch at %d, want its first position %d", res[1].Position, first.Position)
	}
	if !(res[0].Position > h && res[2].Position > res[0].Position) {
		t.Errorf("new events of a mixed batch at %d and %d, want above %d and increasing", res[0].Position, res[2].Position, h)
	}
}

func (s *suite) testDuplicateWithinBatch(t *testing.T) {
	st := s.open(t)
	e := event(t, "a.b", 1)
	res := mustAppend(t, st, herald.AppendOptions{}, e, again(e), event(t, "a.b", 2))
	if res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate {
		t.Fatalf("results %+v: want the second copy Duplicate", res)
	}
	if res[1].Position != res[0].Position {
		t.Errorf("the second copy reports position %d, want %d", res[1].Position, res[0].Position)
	}
	if got := positions(readAll(t, st, 0, herald.Filter{})); len(got) != 2 {
		t.Errorf("the log holds positions %v, want two events", got)
	}
}

// testAtomicBatch checks that a failing batch stores none of its events,
// and that a store keeps working after it.
func (s *suite) testAtomicBatch(t *testing.T) {
	st := s.open(t)
	mustAppend(t, st, herald.AppendOptions{}, event(t, "order.placed", 0, subject("order/1")))
	h := head(t, st)
	batch := []*herald.Event{
		event(t, "order.paid", 1, subject("order/1")),
		event(t, "order.shipped", 2, subject("order/1")),
		event(t, "order.delivered", 3, subject("order/1")),
	}
	_, err := st.Append(t.Context(), batch, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0})
	if !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("batch at a stale version: %v, want ErrConflict", err)
	}
	if got := head(t, st); got != h {
		t.Errorf("Head moved from %d to %d after a failed batch", h, got)
	}
	for _, e := range batch {
		if _, err := st.Get(t.Context(), e.ID); !errors.Is(err, herald.ErrNotFound) {
			t.Errorf("an event of a failed batch is stored: Get = %v", err)
		}
	}
	if v := subjectVersion(t, st, "order/1"); v != 1 {
		t.Errorf("subject version %d after a failed batch, want 1", v)
	}
	// The same events succeed once the version is right, at the next positions.
	fresh := make([]*herald.Event, len(batch))
	for i, e := range batch {
		fresh[i] = again(e)
	}
	res := mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 1}, fresh...)
	for i, r := range res {
		if r.Duplicate || r.Position <= h || (i > 0 && r.Position <= res[i-1].Position) {
			t.Errorf("result %d = %+v after a failed batch, want new positions above %d", i, r, h)
		}
	}
}

func (s *suite) testExpectedVersion(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	cond := func(v uint64) herald.AppendOptions {
		return herald.AppendOptions{CheckVersion: true, ExpectedVersion: v}
	}
	// A new subject is at version 0.
	if _, err := st.Append(ctx, []*herald.Event{event(t, "acct.opened", 0, subject("acct/1"))}, cond(1)); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("expecting version 1 of a new subject: %v, want ErrConflict", err)
	}
	mustAppend(t, st, cond(0), event(t, "acct.opened", 0, subject("acct/1")))
	mustAppend(t, st, cond(1), event(t, "acct.credited", 1, subject("acct/1")))
	for _, v := range []uint64{0, 1, 3, 100} {
		h := head(t, st)
		e := event(t, "acct.debited", 2, subject("acct/1"))
		_, err := st.Append(ctx, []*herald.Event{e}, cond(v))
		if !errors.Is(err, herald.ErrConflict) {
			t.Errorf("expecting version %d at version 2: %v, want ErrConflict", v, err)
		}
		if got := head(t, st); got != h {
			t.Errorf("a conflicting append moved Head from %d to %d", h, got)
		}
		if _, err := st.Get(ctx, e.ID); !errors.Is(err, herald.ErrNotFound) {
			t.Errorf("a conflicting event is stored")
		}
	}
	mustAppend(t, st, cond(2), event(t, "acct.debited", 2, subject("acct/1")))
	if v := subjectVersion(t, st, "acct/1"); v != 3 {
		t.Errorf("subject version = %d, want 3", v)
	}
	// Other subjects, and unconditional appends, are independent.
	mustAppend(t, st, cond(0), event(t, "acct.opened", 0, subject("acct/2")))
	mustAppend(t, st, herald.AppendOptions{}, event(t, "acct.note", 3, subject("acct/1")))
	if v := subjectVersion(t, st, "acct/1"); v != 4 {
		t.Errorf("an unconditional append did not count: version %d, want 4", v)
	}
	if _, err := st.Append(ctx, []*herald.Event{event(t, "acct.debited", 5, subject("acct/1"))}, cond(3)); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("expecting a version an unconditional append moved past: %v, want ErrConflict", err)
	}
}

// testExpectedVersionBatch checks that a conditional batch for one subject
// takes versions N+1, N+2, ...
func (s *suite) testExpectedVersionBatch(t *testing.T) {
	st := s.open(t)
	mustAppend(t, st, herald.AppendOptions{CheckVersion: true}, event(t, "cart.created", 0, subject("cart/9")), event(t, "cart.item_added", 1, subject("cart/9")))
	if v := subjectVersion(t, st, "cart/9"); v != 2 {
		t.Fatalf("version after a batch of 2 from 0 = %d, want 2", v)
	}
	batch := []*herald.Event{
		event(t, "cart.item_added", 2, subject("cart/9")),
		event(t, "cart.item_added", 3, subject("cart/9")),
		event(t, "cart.checked_out", 4, subject("cart/9")),
	}
	res := mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 2}, batch...)
	if v := subjectVersion(t, st, "cart/9"); v != 5 {
		t.Errorf("version after a batch of 3 from 2 = %d, want 5", v)
	}
	// The subject's events come back in version order.
	got := readAll(t, st, 0, herald.Filter{Subject: "cart/9"})
	if len(got) != 5 {
		t.Fatalf("subject holds %d events, want 5", len(got))
	}
	for i := range 3 {
		if got[2+i].ID != batch[i].ID || got[2+i].Position != res[i].Position {
			t.Errorf("event of version %d is %s at %d, want %s at %d", 3+i, got[2+i].ID, got[2+i].Position, batch[i].ID, res[i].Position)
		}
	}
	// A second writer that read version 2 loses.
	_, err := st.Append(t.Context(), []*herald.Event{event(t, "cart.item_removed", 5, subject("cart/9"))}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 2})
	if !errors.Is(err, herald.ErrConflict) {
		t.Errorf("stale writer: %v, want ErrConflict", err)
	}
}

func (s *suite) testExpectedVersionNeedsOneSubject(t *testing.T) {
	st := s.open(t)
	cond := herald.AppendOptions{CheckVersion: true}
	for name, batch := range map[string][]*herald.Event{
		"no subject":     {event(t, "a.b", 0)},
		"two subjects":   {event(t, "a.b", 0, subject("x/1")), event(t, "a.b", 1, subject("x/2"))},
		"one without it": {event(t, "a.b", 0, subject("x/1")), event(t, "a.b", 1)},
	} {
		if _, err := st.Append(t.Context(), batch, cond); err == nil {
			t.Errorf("%s: a conditional append succeeded", name)
		}
	}
	if h := head(t, st); h != 0 {
		t.Errorf("rejected conditional appends stored events: Head = %d", h)
	}
}

// testRetriedConditionalAppend checks that a conditional append retried
// after it succeeded (the caller missed the answer) is idempotent: all its
// events are duplicates, so the stale version is not checked.
func (s *suite) testRetriedConditionalAppend(t *testing.T) {
	st := s.open(t)
	batch := []*herald.Event{event(t, "doc.created", 0, subject("doc/1")), event(t, "doc.edited", 1, subject("doc/1"))}
	retry := []*herald.Event{again(batch[0]), again(batch[1])}
	first := mustAppend(t, st, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0}, batch...)
	res, err := st.Append(t.Context(), retry, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0})
	if err != nil {
		t.Fatalf("retrying a conditional append that succeeded: %v, want success", err)
	}
	for i := range res {
		if !res[i].Duplicate || res[i].Position != first[i].Position {
			t.Errorf("retry result %d = %+v, want Duplicate at %d", i, res[i], first[i].Position)
		}
	}
	if v := subjectVersion(t, st, "doc/1"); v != 2 {
		t.Errorf("version after the retry = %d, want 2", v)
	}
	// A retry that adds a new event is checked again.
	mixed := []*herald.Event{again(batch[0]), event(t, "doc.edited", 2, subject("doc/1"))}
	if _, err := st.Append(t.Context(), mixed, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0}); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("a partly new batch at a stale version: %v, want ErrConflict", err)
	}
}

func (s *suite) testSubjectVersion(t *testing.T) {
	st := s.open(t)
	if v := subjectVersion(t, st, "never/seen"); v != 0 {
		t.Errorf("version of an unknown subject = %d, want 0", v)
	}
	for i := range 5 {
		mustAppend(t, st, herald.AppendOptions{}, event(t, "x.y", i, subject("sv/1")))
		mustAppend(t, st, herald.AppendOptions{}, event(t, "x.y", i)) // no subject
		if v := subjectVersion(t, st, "sv/1"); v != uint64(i+1) {
			t.Errorf("after %d events: version %d", i+1, v)
		}
	}
	subjects := []string{"a", "a/b", "a/b/c", "recording/123", "weird subject with spaces", "ünïcode/ß"}
	for i, subj := range subjects {
		for range i + 1 {
			mustAppend(t, st, herald.AppendOptions{}, event(t, "x.y", i, subject(subj)))
		}
	}
	for i, subj := range subjects {
		if v := subjectVersion(t, st, subj); v != uint64(i+1) {
			t.Errorf("SubjectVersion(%q) = %d, want %d", subj, v, i+1)
		}
		if got := readAll(t, st, 0, herald.Filter{Subject: subj}); len(got) != i+1 {
			t.Errorf("Read subject %q: %d events, want %d", subj, len(got), i+1)
		}
	}
}
