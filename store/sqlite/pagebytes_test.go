package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

// TestReadPagesBoundedByBytes: one read query holds at most about
// pageBytes of large events in memory (it held 512 rows, whatever their
// size: hundreds of megabytes for each reader at once), and a read goes on
// across such pages, by position and by subject, with and without a limit.
func TestReadPagesBoundedByBytes(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	const n, size = 30, 200_000
	data := json.RawMessage(`{"x":"` + strings.Repeat("x", size) + `"}`)
	var evs []*herald.Event
	for range n {
		evs = append(evs, ev(t, "big.e", withSubject("s/1"), func(e *herald.Event) { e.Data = data }))
	}
	if _, err := s.Append(ctx, evs, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	q, args, _ := buildRead(herald.Filter{})
	page, _, more, err := s.readPage(ctx, q, false, 0, cursor{}, args, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	if want := pageBytes/size + 1; len(page) != want || !more {
		t.Fatalf("one query read %d events (more %v), want %d: about %d bytes", len(page), more, want, pageBytes)
	}
	for _, f := range []herald.Filter{{}, {Subject: "s/1"}, {Limit: n - 1}, {Subject: "s/1", Limit: n - 1}} {
		got := readAll(t, s, 0, f)
		want := n
		if f.Limit > 0 {
			want = f.Limit
		}
		if len(got) != want {
			t.Fatalf("%+v: read %d events, want %d", f, len(got), want)
		}
		for i, e := range got {
			if e.Position != uint64(i+1) {
				t.Fatalf("%+v: event %d at position %d", f, i, e.Position)
			}
		}
	}
}
