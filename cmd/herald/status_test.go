package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestStatus(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "a.b", Data: json.RawMessage(`{}`)})
	r := ts.run(t, "status").ok(t)
	if r.stdout != ts.URL+" is ready; its log is at position 1\n" {
		t.Errorf("status said %q", r.stdout)
	}
	var none *testServer
	r = none.run(t, "status")
	if exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "is `herald serve` running?") {
		t.Errorf("no server: %v", r.err)
	}
}

// TestStatusJSON: herald status --json shows the store, the version, the
// head and the push subscriptions, for scripts and monitoring.
func TestStatusJSON(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "a.b", Data: json.RawMessage(`{}`)})
	h := newHook(t)
	ts.run(t, "subs", "create", "s1", "--endpoint", h.srv.URL).ok(t)
	r := ts.run(t, "status", "--json").ok(t)
	var st struct {
		Status        string `json:"status"`
		Version       string `json:"version"`
		Store         string `json:"store"`
		Head          *uint64
		Subscriptions int `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if st.Status != "ready" || st.Head == nil || *st.Head != 1 || st.Subscriptions != 1 {
		t.Errorf("status --json: %s", r.stdout)
	}
}
