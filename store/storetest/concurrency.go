package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

func (s *suite) testConcurrency(t *testing.T) {
	t.Run("Appenders", s.testConcurrentAppenders)
	t.Run("ConditionalAppenders", s.testConcurrentConditionalAppenders)
	t.Run("SameIDs", s.testConcurrentSameIDs)
}

// testConcurrentAppenders runs 16 appenders (single events and batches)
// while readers follow the log: positions are strictly increasing and
// contiguous, every event is stored once, and no reader ever sees a
// position before a smaller one is visible.
func (s *suite) testConcurrentAppenders(t *testing.T) {
	st := s.open(t)
	const appenders, rounds = 16, 25
	ctx := t.Context()
	done := make(chan struct{})

	var readers sync.WaitGroup
	readerErr := make(chan error, 4)
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var last uint64
			for {
				// After the writers finish, one last pass reaches the head.
				finished := isDone(done)
				for e, err := range st.Read(ctx, last, herald.Filter{}) {
					if err != nil {
						readerErr <- fmt.Errorf("reader %d: %w", r, err)
						return
					}
					if e.Position != last+1 {
						readerErr <- fmt.Errorf("reader %d saw position %d right after %d: a reader must never see a later position before an earlier one", r, e.Position, last)
						return
					}
					last = e.Position
				}
				if finished {
					return
				}
				if r%2 == 0 {
					wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
					_, _ = st.Wait(wctx, last)
					cancel()
				}
			}
		}()
	}

	type appended struct {
		ids []string
		res []herald.AppendResult
	}
	results := make([][]appended, appenders)
	var writers sync.WaitGroup
	for w := range appenders {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range rounds {
				n := 1 + (w+i)%3 // batches of 1 to 3
				batch := make([]*herald.Event, n)
				for k := range batch {
					batch[k] = event(t, "load.test", w*1000+i*10+k, subject(fmt.Sprintf("w/%d", w)))
				}
				res, err := st.Append(ctx, batch, herald.AppendOptions{})
				if err != nil {
					t.Errorf("appender %d: %v", w, err)
					return
				}
				results[w] = append(results[w], appended{ids(batch), res})
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	close(readerErr)
	for err := range readerErr {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	var all []uint64
	byID := map[string]uint64{}
	for w := range results {
		var prev uint64
		for _, a := range results[w] {
			for k, r := range a.res {
				if r.Duplicate {
					t.Errorf("a new event was reported Duplicate")
				}
				if r.Position <= prev {
					t.Errorf("appender %d got position %d after %d", w, r.Position, prev)
				}
				prev = r.Position
				all = append(all, r.Position)
				byID[a.ids[k]] = r.Position
			}
		}
	}
	slices.Sort(all)
	for i, p := range all {
		if p != uint64(i+1) {
			t.Fatalf("positions are not contiguous from 1: the %d-th is %d", i+1, p)
		}
	}
	if h := head(t, st); h != uint64(len(all)) {
		t.Errorf("Head = %d, want %d", h, len(all))
	}
	evs := readAll(t, st, 0, herald.Filter{})
	if len(evs) != len(all) {
		t.Fatalf("Read yielded %d events, want %d", len(evs), len(all))
	}
	for _, e := range evs {
		if byID[e.ID] != e.Position {
			t.Errorf("event %s read at %d, appended at %d", e.ID, e.Position, byID[e.ID])
		}
	}
	for w := range appenders {
		n := 0
		for _, a := range results[w] {
			n += len(a.ids)
		}
		if v := subjectVersion(t, st, fmt.Sprintf("w/%d", w)); v != uint64(n) {
			t.Errorf("subject w/%d at version %d, want %d", w, v, n)
		}
	}
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// testConcurrentConditionalAppenders has 16 writers compete to extend one
// subject with the version they read: exactly one wins each version, and
// the subject's events are exactly the winners' in version order.
func (s *suite) testConcurrentConditionalAppenders(t *testing.T) {
	st := s.open(t)
	const writers, target = 16, 40
	ctx := t.Context()
	var mu sync.Mutex
	won := map[uint64]string{} // version won (1-based) → the winner's event id
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := st.SubjectVersion(ctx, "contended/1")
				if err != nil {
					t.Error(err)
					return
				}
				if v >= target {
					return
				}
				e := event(t, "counter.incremented", w, subject("contended/1"))
				_, err = st.Append(ctx, []*herald.Event{e}, herald.AppendOptions{CheckVersion: true, ExpectedVersion: v})
				switch {
				case err == nil:
					// Callers may return in any order: record wins by version,
					// not by the order in which they are learned.
					mu.Lock()
					if prev, ok := won[v+1]; ok {
						t.Errorf("version %d won twice: by %s and by writer %d's %s", v+1, prev, w, e.ID)
					}
					won[v+1] = e.ID
					mu.Unlock()
				case errors.Is(err, herald.ErrConflict):
				default:
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := ids(readAll(t, st, 0, herald.Filter{Subject: "contended/1"}))
	if len(got) < target {
		t.Fatalf("subject holds %d events, want at least %d", len(got), target)
	}
	winners := make([]string, len(won))
	for v, id := range won {
		if v < 1 || v > uint64(len(won)) {
			t.Fatalf("version %d won, but only %d versions were won", v, len(won))
		}
		winners[v-1] = id
	}
	if !slices.Equal(got, winners) {
		t.Errorf("subject's events differ from the winners of each version:\n got %v\nwant %v", got, winners)
	}
}

// testConcurrentSameIDs appends the same ids from many goroutines at once:
// each is stored once, and every caller learns the same position.
func (s *suite) testConcurrentSameIDs(t *testing.T) {
	st := s.open(t)
	const goroutines = 16
	proto := make([]*herald.Event, 20)
	for i := range proto {
		proto[i] = event(t, "dup.test", i)
	}
	ctx := t.Context()
	got := make([][]herald.AppendResult, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine sends the events in its own order and batching.
			order := make([]*herald.Event, len(proto))
			for i := range proto {
				j := (i + 7*g) % len(proto)
				if g%2 == 1 {
					j = len(proto) - 1 - j
				}
				order[i] = again(proto[j])
			}
			res := make([]herald.AppendResult, len(proto))
			for i := 0; i < len(order); i += 1 + g%4 {
				end := min(len(order), i+1+g%4)
				r, err := st.Append(ctx, order[i:end], herald.AppendOptions{})
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				for k := range r {
					res[indexOf(proto, order[i+k].ID)] = r[k]
				}
			}
			got[g] = res
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, e := range proto {
		fresh := 0
		pos := got[0][i].Position
		for g := range goroutines {
			r := got[g][i]
			if r.Position != pos {
				t.Errorf("event %d: goroutine %d got position %d, goroutine 0 got %d", i, g, r.Position, pos)
			}
			if !r.Duplicate {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("event %d: %d appends reported it new, want exactly 1", i, fresh)
		}
		stored, err := st.Get(ctx, e.ID)
		if err != nil || stored.Position != pos {
			t.Errorf("event %d: Get = %v, %v; want position %d", i, stored, err, pos)
		}
	}
	if h := head(t, st); h != uint64(len(proto)) {
		t.Errorf("Head = %d, want %d: every id stored once", h, len(proto))
	}
}

func indexOf(evs []*herald.Event, id string) int {
	for i, e := range evs {
		if e.ID == id {
			return i
		}
	}
	panic("unknown id " + id)
}

func (s *suite) testWait(t *testing.T) {
	t.Run("ReturnsAtOnceWhenBehind", func(t *testing.T) {
		st := s.open(t)
		mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 1), event(t, "a.b", 2))
		ctx, cancel := context.WithTimeout(t.Context(), s.f.wakeTimeout())
		defer cancel()
		h, err := st.Wait(ctx, 0)
		if err != nil || h != 2 {
			t.Errorf("Wait(0) with head 2 = %d, %v; want 2 at once", h, err)
		}
		h, err = st.Wait(ctx, 1)
		if err != nil || h != 2 {
			t.Errorf("Wait(1) with head 2 = %d, %v; want 2 at once", h, err)
		}
	})
	t.Run("WakesOnAppend", func(t *testing.T) {
		st := s.open(t)
		mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 1))
		type result struct {
			h   uint64
			err error
		}
		ctx, cancel := context.WithTimeout(t.Context(), s.f.wakeTimeout())
		defer cancel()
		const waiters = 4
		ch := make(chan result, waiters)
		for range waiters {
			go func() {
				h, err := waitIn(ctx, st, 1)
				ch <- result{h, err}
			}()
		}
		testwait.Blocked(t, waiters, waitInFunc)
		select {
		case r := <-ch:
			t.Fatalf("Wait(1) at head 1 returned %d, %v before any append", r.h, r.err)
		default:
		}
		mustAppend(t, st, herald.AppendOptions{}, event(t, "a.b", 2))
		for range waiters {
			r := <-ch
			if r.err != nil || r.h < 2 {
				t.Errorf("Wait after an append = %d, %v; want head 2", r.h, r.err)
			}
		}
	})
	t.Run("ContextEnds", func(t *testing.T) {
		st := s.open(t)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := waitIn(ctx, st, 0)
			errc <- err
		}()
		testwait.Blocked(t, 1, waitInFunc)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Wait after cancel: %v, want context.Canceled", err)
			}
		case <-time.After(s.f.wakeTimeout()):
			t.Fatal("Wait did not return when its context was canceled")
		}
		dctx, dcancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer dcancel()
		if _, err := st.Wait(dctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait past its deadline: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		st := s.open(t)
		errc := make(chan error, 1)
		go func() {
			_, err := waitIn(t.Context(), st, 0)
			errc <- err
		}()
		testwait.Blocked(t, 1, waitInFunc)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, herald.ErrClosed) {
				t.Errorf("Wait when the store closed: %v, want ErrClosed", err)
			}
		case <-time.After(s.f.wakeTimeout()):
			t.Fatal("Wait did not return when the store closed")
		}
		if _, err := st.Wait(t.Context(), 0); !errors.Is(err, herald.ErrClosed) {
			t.Errorf("Wait after Close: %v, want ErrClosed", err)
		}
	})
}
