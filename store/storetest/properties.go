package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"pgregory.net/rapid"
)

// Property tests (pgregory.net/rapid) for ordering and idempotency. Each
// property runs many random cases (-rapid.checks, default 100) against one
// store, each case in its own namespace of ids and subjects and starting
// from the head the previous case left.

func (s *suite) testProperties(t *testing.T) {
	t.Run("AppendMatchesModel", s.testAppendModel)
	t.Run("ConcurrentAppendsOnce", s.testConcurrentModel)
	t.Run("ReadMatchesFilter", s.testReadModel)
	t.Run("PruneMatchesRules", s.testPruneModel)
}

// propEvent returns a prepared event; it panics on error, which rapid
// reports as a failure.
func propEvent(id, name, subj string, n int) *herald.Event {
	e := &herald.Event{
		ID:        id,
		Name:      name,
		Subject:   subj,
		Timestamp: base.Add(time.Duration(n) * time.Millisecond),
		Data:      json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
	if err := e.Prepare(time.Now()); err != nil {
		panic(err)
	}
	return e
}

// appendModel is what the log must hold: the ids in position order, each
// id's position and event, and each subject's version.
type appendModel struct {
	head     uint64 // the head before the case started
	order    []string
	pos      map[string]uint64
	events   map[string]*herald.Event
	versions map[string]uint64
}

// expect computes what Append(batch, opts) must return and applies it to the
// model: the results, or ErrConflict.
func (m *appendModel) expect(batch []*herald.Event, opts herald.AppendOptions) ([]herald.AppendResult, error) {
	res := make([]herald.AppendResult, len(batch))
	next := m.head + uint64(len(m.order)) + 1
	pending := map[string]uint64{}
	var fresh []*herald.Event
	for i, e := range batch {
		if p, ok := m.pos[e.ID]; ok {
			res[i] = herald.AppendResult{Position: p, Duplicate: true}
			continue
		}
		if p, ok := pending[e.ID]; ok {
			res[i] = herald.AppendResult{Position: p, Duplicate: true}
			continue
		}
		pending[e.ID] = next
		res[i] = herald.AppendResult{Position: next}
		next++
		fresh = append(fresh, e)
	}
	if opts.CheckVersion && len(fresh) > 0 && m.versions[batch[0].Subject] != opts.ExpectedVersion {
		return nil, herald.ErrConflict
	}
	for _, e := range fresh {
		m.order = append(m.order, e.ID)
		m.pos[e.ID] = pending[e.ID]
		m.events[e.ID] = e.Clone()
		if e.Subject != "" {
			m.versions[e.Subject]++
		}
	}
	return res, nil
}

// testAppendModel draws random sequences of appends — single events and
// batches, new ids and repeated ones (also within a batch), unconditional
// and conditional with right and wrong versions — and compares every result
// and the final log with a model.
func (s *suite) testAppendModel(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		h0, err := st.Head(ctx)
		if err != nil {
			rt.Fatalf("Head: %v", err)
		}
		m := &appendModel{head: h0, pos: map[string]uint64{}, events: map[string]*herald.Event{}, versions: map[string]uint64{}}
		subjects := []string{"", fmt.Sprintf("p%d/a", run), fmt.Sprintf("p%d/b", run), fmt.Sprintf("p%d/c", run)}
		names := []string{"a.b", "a.c", "x.y.z"}
		serial := 0
		newEvent := func(subj string) *herald.Event {
			serial++
			return propEvent(fmt.Sprintf("p%d-e%d", run, serial), names[serial%len(names)], subj, serial)
		}
		ops := rapid.IntRange(1, 20).Draw(rt, "ops")
		for op := range ops {
			conditional := rapid.IntRange(0, 2).Draw(rt, "conditional") == 0
			size := rapid.IntRange(1, 4).Draw(rt, "size")
			var subj string
			if conditional {
				subj = rapid.SampledFrom(subjects[1:]).Draw(rt, "subject")
			}
			var batch []*herald.Event
			for range size {
				// Candidates to repeat: stored events and earlier members of
				// this batch (of the batch's subject when conditional).
				var pool []*herald.Event
				for _, id := range m.order {
					if e := m.events[id]; !conditional || e.Subject == subj {
						pool = append(pool, e)
					}
				}
				pool = append(pool, batch...)
				k := rapid.IntRange(0, len(pool)+1).Draw(rt, "pick") // the last two: a new event
				if k < len(pool) {
					batch = append(batch, again(pool[k]))
					continue
				}
				es := subj
				if !conditional {
					es = rapid.SampledFrom(subjects).Draw(rt, "event subject")
				}
				batch = append(batch, newEvent(es))
			}
			var opts herald.AppendOptions
			if conditional {
				v := m.versions[subj]
				switch rapid.IntRange(0, 3).Draw(rt, "version") {
				case 0:
					v++ // ahead
				case 1:
					if v > 0 {
						v-- // stale
					} else {
						v += 2
					}
				}
				opts = herald.AppendOptions{CheckVersion: true, ExpectedVersion: v}
			}
			want, wantErr := m.expect(batch, opts)
			got, err := st.Append(ctx, batch, opts)
			if wantErr != nil {
				if !errors.Is(err, wantErr) {
					rt.Fatalf("op %d: Append(%d events, %+v) = %v, %v; want %v", op, len(batch), opts, got, err, wantErr)
				}
				continue
			}
			if err != nil {
				rt.Fatalf("op %d: Append(%d events, %+v): %v; want %v", op, len(batch), opts, err, want)
			}
			if !slices.Equal(got, want) {
				rt.Fatalf("op %d: Append(%d events, %+v) = %v, want %v", op, len(batch), opts, got, want)
			}
		}
		// The log is the model's.
		evs, err := collect(ctx, st, h0, herald.Filter{})
		if err != nil {
			rt.Fatalf("Read: %v", err)
		}
		if got := ids(evs); !slices.Equal(got, m.order) {
			rt.Fatalf("log after %d: %v, want %v", h0, got, m.order)
		}
		for i, e := range evs {
			if want := h0 + uint64(i) + 1; e.Position != want {
				rt.Fatalf("event %d at position %d, want %d", i, e.Position, want)
			}
			if d := sameEvent(e, m.events[e.ID], e.Position); d != "" {
				rt.Fatalf("event %s differs: %s", e.ID, d)
			}
		}
		if h, err := st.Head(ctx); err != nil || h != h0+uint64(len(m.order)) {
			rt.Fatalf("Head = %d, %v; want %d", h, err, h0+uint64(len(m.order)))
		}
		for _, subj := range subjects[1:] {
			v, err := st.SubjectVersion(ctx, subj)
			if err != nil || v != m.versions[subj] {
				rt.Fatalf("SubjectVersion(%s) = %d, %v; want %d", subj, v, err, m.versions[subj])
			}
		}
		for _, id := range m.order {
			e, err := st.Get(ctx, id)
			if err != nil || e.Position != m.pos[id] {
				rt.Fatalf("Get(%s) = %v, %v; want position %d", id, e, err, m.pos[id])
			}
		}
	})
}

// testConcurrentModel draws a few goroutines, each with its own sequence of
// batches over a small shared pool of ids, runs them at once while a reader
// follows the log, and checks: each id is stored exactly once and reported
// new to exactly one caller; every caller learns the same position for it;
// positions are contiguous; a batch's new events are in batch order; the
// reader never skipped a position; subject versions count each event once.
func (s *suite) testConcurrentModel(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		h0, err := st.Head(ctx)
		if err != nil {
			rt.Fatalf("Head: %v", err)
		}
		const poolSize = 8
		pool := make([]*herald.Event, poolSize)
		for i := range pool {
			pool[i] = propEvent(fmt.Sprintf("c%d-e%d", run, i), "pool.event", fmt.Sprintf("c%d/%d", run, i%2), i)
		}
		type call struct {
			idx []int
			res []herald.AppendResult
			err error
		}
		goroutines := rapid.IntRange(2, 6).Draw(rt, "goroutines")
		plans := make([][]call, goroutines)
		for g := range plans {
			n := rapid.IntRange(1, 5).Draw(rt, "batches")
			for range n {
				idx := rapid.SliceOfN(rapid.IntRange(0, poolSize-1), 1, 3).Draw(rt, "batch")
				plans[g] = append(plans[g], call{idx: idx})
			}
		}

		done := make(chan struct{})
		readerErr := make(chan error, 1)
		go func() {
			last := h0
			for {
				finished := isDone(done)
				for e, err := range st.Read(ctx, last, herald.Filter{}) {
					if err != nil {
						readerErr <- err
						return
					}
					if e.Position != last+1 {
						readerErr <- fmt.Errorf("reader saw position %d right after %d", e.Position, last)
						return
					}
					last = e.Position
				}
				if finished {
					readerErr <- nil
					return
				}
				wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				_, _ = st.Wait(wctx, last)
				cancel()
			}
		}()
		var wg sync.WaitGroup
		for g := range plans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range plans[g] {
					c := &plans[g][i]
					batch := make([]*herald.Event, len(c.idx))
					for k, j := range c.idx {
						batch[k] = again(pool[j])
					}
					c.res, c.err = st.Append(ctx, batch, herald.AppendOptions{})
				}
			}()
		}
		wg.Wait()
		close(done)
		if err := <-readerErr; err != nil {
			rt.Fatalf("reader: %v", err)
		}

		position := map[int]uint64{}
		fresh := map[int]int{}
		for g := range plans {
			for _, c := range plans[g] {
				if c.err != nil {
					rt.Fatalf("Append: %v", c.err)
				}
				if len(c.res) != len(c.idx) {
					rt.Fatalf("Append of %d events returned %d results", len(c.idx), len(c.res))
				}
				var prevNew uint64
				for k, j := range c.idx {
					r := c.res[k]
					if p, ok := position[j]; ok && p != r.Position {
						rt.Fatalf("event %d reported at %d and at %d", j, p, r.Position)
					}
					position[j] = r.Position
					if !r.Duplicate {
						fresh[j]++
						if r.Position <= prevNew {
							rt.Fatalf("a batch's new events out of order: %d after %d", r.Position, prevNew)
						}
						prevNew = r.Position
					}
				}
			}
		}
		var stored []uint64
		for j, p := range position {
			if fresh[j] != 1 {
				rt.Fatalf("event %d reported new %d times, want once", j, fresh[j])
			}
			stored = append(stored, p)
		}
		slices.Sort(stored)
		for i, p := range stored {
			if p != h0+uint64(i)+1 {
				rt.Fatalf("positions %v are not contiguous after %d", stored, h0)
			}
		}
		evs, err := collect(ctx, st, h0, herald.Filter{})
		if err != nil || len(evs) != len(stored) {
			rt.Fatalf("Read after %d: %d events, %v; want %d", h0, len(evs), err, len(stored))
		}
		for _, e := range evs {
			var j int
			if _, err := fmt.Sscanf(e.ID, fmt.Sprintf("c%d-e%%d", run), &j); err != nil || position[j] != e.Position {
				rt.Fatalf("event %s read at %d, appended at %d", e.ID, e.Position, position[j])
			}
		}
		for sub := range 2 {
			var want uint64
			for j := range position {
				if j%2 == sub {
					want++
				}
			}
			subj := fmt.Sprintf("c%d/%d", run, sub)
			if v, err := st.SubjectVersion(ctx, subj); err != nil || v != want {
				rt.Fatalf("SubjectVersion(%s) = %d, %v; want %d", subj, v, err, want)
			}
		}
	})
}
