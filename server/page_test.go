package server_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/server"
)

// A page of GET /v1/events holds at most WithMaxPageBytes of events (and
// at least one); next_after continues from there, and every event is
// read once.
func TestListPageCappedByBytes(t *testing.T) {
	e := newEnv(t, server.WithMaxPageBytes(64<<10))
	big := strings.Repeat("x", 20<<10)
	for range 10 {
		e.publish(map[string]any{"name": "big.x", "data": map[string]any{"s": big}})
	}
	var after uint64
	seen, pages := 0, 0
	for {
		a := e.do("GET", "/v1/events?limit=1000&after="+u(after), nil)
		if a.status != 200 {
			t.Fatalf("list: %d %s", a.status, a.body)
		}
		if len(a.body) > 64<<10+8<<10 {
			t.Fatalf("a page of %d bytes with a cap of 64 KiB", len(a.body))
		}
		var page struct {
			Events []struct {
				Position uint64 `json:"position"`
			} `json:"events"`
			NextAfter uint64 `json:"next_after"`
		}
		a.json(t, &page)
		if len(page.Events) == 0 {
			break
		}
		pages++
		for _, ev := range page.Events {
			if ev.Position != after+1 {
				t.Fatalf("position %d after %d", ev.Position, after)
			}
			after = ev.Position
			seen++
		}
		if page.NextAfter != after {
			t.Fatalf("next_after %d, last position %d", page.NextAfter, after)
		}
	}
	if seen != 10 || pages < 4 {
		t.Fatalf("%d events in %d pages; want 10 in at least 4", seen, pages)
	}
}
