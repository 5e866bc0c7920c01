package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/server"
)

// The client reads a page of any size the server sends: here one of
// about 70 MB, past the 64 MiB that once failed with "unexpected EOF".
func TestEventsReadsAPageOfAnySize(t *testing.T) {
	ts := start(t, server.WithMaxPageBytes(1<<30))
	ctx := context.Background()
	data := `{"s":"` + strings.Repeat("x", 1_000_000) + `"}`
	for range 70 {
		if _, err := ts.c.Publish(ctx, ev("big.x", data)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := ts.c.Events(ctx, client.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("a 70 MB page: %v", err)
	}
	if len(page.Events) != 70 || page.NextAfter != 70 {
		t.Fatalf("%d events, next_after %d; want 70, 70", len(page.Events), page.NextAfter)
	}
}
