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
