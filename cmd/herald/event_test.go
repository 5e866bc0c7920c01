package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestEvent(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{ID: "ev-1", Name: "a.b", Subject: "s/1", Data: json.RawMessage(`{"k":"v"}`), Metadata: map[string]string{"m": "1"}})
	r := ts.run(t, "event", "ev-1").ok(t)
	var e herald.Event
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if e.ID != "ev-1" || e.Name != "a.b" || e.Subject != "s/1" || !jsonEqual(e.Data, `{"k":"v"}`) || e.Metadata["m"] != "1" || e.Position != 1 {
		t.Errorf("event %+v", e)
	}
	if r := ts.run(t, "event", "nope"); !errors.Is(r.err, herald.ErrNotFound) || exitCode(r.err) != 1 {
		t.Errorf("missing: %v", r.err)
	}
	if r := ts.run(t, "event"); exitCode(r.err) != 2 {
		t.Errorf("no id: %v", r.err)
	}
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && mustJSON(x) == mustJSON(y)
}

// TestEventByPosition: herald event takes a position as well as an id.
func TestEventByPosition(t *testing.T) {
	ts := startServer(t)
	for _, id := range []string{"first", "second"} {
		ts.publish(t, &herald.Event{ID: id, Name: "a.b", Data: json.RawMessage(`{}`)})
	}
	r := ts.run(t, "event", "2").ok(t)
	var e herald.Event
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || e.ID != "second" || e.Position != 2 {
		t.Errorf("event 2: %v %s", err, r.stdout)
	}
	if r := ts.run(t, "event", "3"); !errors.Is(r.err, herald.ErrNotFound) || !strings.Contains(r.err.Error(), "position") {
		t.Errorf("event 3: %v", r.err)
	}
}
