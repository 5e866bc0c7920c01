package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/server"
)

// TestReadDefaultsToTheTokensPatterns: a restricted token that lists or
// streams without a name pattern gets the events it may read, instead of a
// 403 for ">". A pattern beyond its rights is still refused.
func TestReadDefaultsToTheTokensPatterns(t *testing.T) {
	const multi = "hrld_multi-secret-for-tests-only-0123456789"
	e := newEnv(t, server.WithTokens([]server.Token{
		{Identity: "recorder", Hash: server.HashToken(recorderToken), Subscribe: []string{"recording.>"}},
		{Identity: "multi", Hash: server.HashToken(multi), Subscribe: []string{"recording.ended", "notes.*"}},
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
	}))
	admin := []string{"Authorization", bearer(adminToken)}
	for _, n := range []string{"recording.ended", "billing.paid", "notes.ready", "recording.started", "billing.paid", "notes.ready"} {
		e.publish(map[string]any{"name": n, "data": map[string]any{}}, admin...)
	}
	names := func(tok string, path string) []string {
		t.Helper()
		a := e.do("GET", path, nil, "Authorization", bearer(tok))
		if a.status != 200 {
			t.Fatalf("GET %s: %d %s", path, a.status, a.body)
		}
		var page struct {
			Events []struct {
				Name string `json:"name"`
			} `json:"events"`
			NextAfter uint64 `json:"next_after"`
		}
		if err := json.Unmarshal(a.body, &page); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range page.Events {
			out = append(out, ev.Name)
		}
		return out
	}
	if got := names(recorderToken, "/v1/events"); len(got) != 2 || got[0] != "recording.ended" || got[1] != "recording.started" {
		t.Errorf("one pattern: %v", got)
	}
	if got := names(multi, "/v1/events"); len(got) != 3 || got[0] != "recording.ended" || got[1] != "notes.ready" || got[2] != "notes.ready" {
		t.Errorf("two patterns: %v", got)
	}
	if a := e.do("GET", "/v1/events?name=billing.>", nil, "Authorization", bearer(multi)); a.status != 403 {
		t.Errorf("a pattern beyond the token: %d", a.status)
	}
	// The stream, too, defaults to what the token may read.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := e.stream(ctx, "/v1/stream?after=0", "Authorization", bearer(multi))
	want := []string{"recording.ended", "notes.ready", "notes.ready"}
	for i, w := range want {
		select {
		case ev := <-got:
			var d struct {
				Name string `json:"name"`
			}
			json.Unmarshal([]byte(ev.data), &d)
			if d.Name != w {
				t.Fatalf("stream event %d: %s, want %s", i, d.Name, w)
			}
		case <-ctx.Done():
			t.Fatalf("stream: only %d events", i)
		}
	}
}
