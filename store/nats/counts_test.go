package nats_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// countKeys returns how many count keys subscription sub has in the
// default namespace.
func countKeys(t *testing.T, s *natsstore.Store, sub string) int {
	t.Helper()
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), "herald_subs")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, "n."+sub+".") {
			n++
		}
	}
	return n
}

func commitCounts(t *testing.T, s *natsstore.Store, sub string, handled uint64) {
	t.Helper()
	if err := s.Commit(t.Context(), sub, herald.Progress{Counts: herald.SubscriptionCounts{Handled: handled}}); err != nil {
		t.Fatal(err)
	}
}

func handledCount(t *testing.T, s *natsstore.Store, sub string) uint64 {
	t.Helper()
	m, err := s.SubscriptionCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return m[sub].Handled
}

// Each run of a process counted a subscription under a key of its own,
// kept for ever: ten restarts, ten keys, each read by every count. A
// handle that closes now leaves its totals to be folded into the next
// one's key; the totals stay exact.
func TestCountKeysFoldedAcrossRuns(t *testing.T) {
	e := server(t)
	for run := range 10 {
		s, err := natsstore.Connect(context.Background(), e.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		commitCounts(t, s, "notes", 3)
		if got, want := handledCount(t, s, "notes"), uint64(3*(run+1)); got != want {
			t.Fatalf("run %d: handled %d, want %d", run, got, want)
		}
		if n := countKeys(t, s, "notes"); n > 2 {
			t.Fatalf("run %d: %d count keys, want at most 2 (this run's and the last one's until it is folded)", run, n)
		}
		s.Close()
	}
	s := open(t, e)
	if got := handledCount(t, s, "notes"); got != 30 {
		t.Fatalf("handled %d after ten runs, want 30", got)
	}
}

// Handles that start at once fold a closed key once between them, and a
// handle that dies without closing keeps its key, counted.
func TestCountKeysFoldedOnce(t *testing.T) {
	e := server(t)
	first, err := natsstore.Connect(context.Background(), e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	commitCounts(t, first, "notes", 5)
	first.Close()
	var wg sync.WaitGroup
	stores := make([]*natsstore.Store, 4)
	for i := range stores {
		stores[i] = open(t, e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stores[i].Commit(context.Background(), "notes", herald.Progress{Counts: herald.SubscriptionCounts{Handled: 1}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, s := range stores {
		if got := handledCount(t, s, "notes"); got != 9 {
			t.Fatalf("handled %d, want 9 (5 folded once, 4 of the new handles)", got)
		}
	}
}
