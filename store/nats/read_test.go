package nats_test

import (
	"context"
	"sync"
	"testing"

	herald "github.com/heraldhq/herald"
)

// TestStreamedRead: reads longer than a page go through an ordered
// consumer; with filters, limits and appends going on meanwhile they
// yield exactly what direct gets would, in order, and end.
func TestStreamedRead(t *testing.T) {
	t.Parallel()
	s := open(t, server(t))
	ctx := context.Background()
	var all []*herald.Event
	for b := range 5 {
		var batch []*herald.Event
		for i := range 1000 {
			name := "stream.even"
			if i%2 == 1 {
				name = "stream.odd"
			}
			subject := ""
			if i%10 == 0 {
				subject = "s/" + string(rune('a'+b))
			}
			batch = append(batch, ev(t, name, subject))
		}
		if _, err := s.Append(ctx, batch, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	check := func(name string, got []*herald.Event, want func(*herald.Event) bool, limit int) {
		t.Helper()
		var exp []*herald.Event
		for _, e := range all {
			if want(e) && (limit == 0 || len(exp) < limit) {
				exp = append(exp, e)
			}
		}
		if len(got) != len(exp) {
			t.Fatalf("%s: read %d events, want %d", name, len(got), len(exp))
		}
		for i := range got {
			if got[i].ID != exp[i].ID || got[i].Position != exp[i].Position {
				t.Fatalf("%s: event %d is %s at %d, want %s at %d", name, i, got[i].ID, got[i].Position, exp[i].ID, exp[i].Position)
			}
		}
	}
	check("everything", readAll(t, s, 0, herald.Filter{}), func(*herald.Event) bool { return true }, 0)
	check("after 1200", readAll(t, s, 1200, herald.Filter{}), func(e *herald.Event) bool { return e.Position > 1200 }, 0)
	check("name", readAll(t, s, 0, herald.Filter{Name: "stream.odd"}), func(e *herald.Event) bool { return e.Name == "stream.odd" }, 0)
	check("subject", readAll(t, s, 0, herald.Filter{Subject: "s/c"}), func(e *herald.Event) bool { return e.Subject == "s/c" }, 0)
	check("limit", readAll(t, s, 0, herald.Filter{Limit: 1700}), func(*herald.Event) bool { return true }, 1700)
	check("limit and name", readAll(t, s, 0, herald.Filter{Name: "stream.even", Limit: 900}), func(e *herald.Event) bool { return e.Name == "stream.even" }, 900)

	// The caller stops early: the read ends and releases its consumer.
	n := 0
	for _, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 600 {
			break
		}
	}

	// Appends while a long read runs: the read yields positions in order,
	// without gaps in what was stored before it began, and ends.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, []*herald.Event{ev(t, "stream.late", "")}, herald.AppendOptions{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var last uint64
	count := 0
	for e, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != last+1 {
			t.Fatalf("position %d after %d", e.Position, last)
		}
		last = e.Position
		count++
	}
	close(stop)
	wg.Wait()
	if count < len(all) {
		t.Fatalf("read %d events while appending, want at least %d", count, len(all))
	}
}
