package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

func TestSchemasPersistAcrossRestart(t *testing.T) {
	st := herald.NewMemoryStore()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus)
	if err != nil {
		t.Fatal(err)
	}
	first := &env{t: t, store: st, bus: bus, srv: srv}
	ts := newTestHTTP(t, srv)
	first.url = ts
	schema := `{"type":"object","required":["recording_id"],"properties":{"recording_id":{"type":"string"}}}`
	if a := first.do("PUT", "/v1/schemas/recording.completed/1", schema); a.status != 201 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	if a := first.do("PUT", "/v1/schemas/recording.completed/1", schema); a.status != 200 {
		t.Fatalf("PUT schema again: %d %s", a.status, a.body)
	}
	a := first.do("GET", "/v1/schemas/recording.completed/1", nil)
	if a.status != 200 || !strings.Contains(string(a.body), "recording_id") {
		t.Fatalf("GET schema: %d %s", a.status, a.body)
	}
	if a := first.do("GET", "/v1/schemas/recording.completed/2", nil); a.status != 404 {
		t.Fatalf("GET missing version: %d", a.status)
	}
	var list struct {
		Schemas []herald.SchemaRef `json:"schemas"`
	}
	first.do("GET", "/v1/schemas", nil).json(t, &list)
	if len(list.Schemas) != 1 || list.Schemas[0].Version != 1 {
		t.Fatalf("list: %+v", list)
	}
	srv.Close(t.Context())
	bus.Close(t.Context())

	// A new bus and server over the same store enforce it.
	e := newEnvStore(t, st)
	a = e.do("POST", "/v1/events", map[string]any{"name": "recording.completed", "data": map[string]any{"recording_id": 5}})
	if a.status != 400 || a.errCode(t).Error.Code != "schema_violation" {
		t.Fatalf("after restart: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "recording.completed", "data": map[string]any{"recording_id": "r5"}})
}

func TestCorrelationWithOutcomesAndRedriveAll(t *testing.T) {
	fail := true
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	rc := newReceiver(t, func(id, mode string, n int) int {
		<-mu
		defer func() { mu <- struct{}{} }()
		if fail {
			return 422
		}
		return 204
	})
	e := newEnv(t)
	if a := e.do("PUT", "/v1/subscriptions/notes", map[string]any{"filter": "rec.>", "endpoint": rc.ts.URL}); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	root := e.publish(map[string]any{"id": "root-1", "name": "rec.ended", "data": map[string]any{}}).Events[0]
	e.publish(map[string]any{"id": "child-1", "name": "rec.cleaned", "data": map[string]any{}, "correlation_id": "root-1", "causation_id": "root-1"})
	var dl struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	testwait.For(t, "two dead letters", func() bool {
		e.do("GET", "/v1/dlq?subscription=notes", nil).json(t, &dl)
		return len(dl.DeadLetters) == 2
	})
	var tr herald.Trace
	a := e.do("GET", "/v1/correlations/root-1", nil)
	a.json(t, &tr)
	if a.status != 200 || len(tr.Events) != 2 || tr.Events[0].Event.ID != root.ID || tr.Events[1].Event.CausationID != "root-1" {
		t.Fatalf("trace: %d %s", a.status, a.body)
	}
	if len(tr.Events[0].Outcomes) != 1 || tr.Events[0].Outcomes[0].Status != herald.OutcomeDeadLettered || tr.Events[0].Outcomes[0].Subscription != "notes" {
		t.Fatalf("outcomes: %+v", tr.Events[0].Outcomes)
	}
	if a := e.do("GET", "/v1/correlations/nothing-here", nil); a.status != 404 {
		t.Fatalf("unknown correlation: %d", a.status)
	}

	<-mu
	fail = false
	mu <- struct{}{}
	a = e.do("POST", "/v1/dlq/redrive?subscription=notes", nil)
	var n struct {
		Redriven int `json:"redriven"`
	}
	a.json(t, &n)
	if a.status != 202 || n.Redriven != 2 {
		t.Fatalf("redrive all: %d %s", a.status, a.body)
	}
	testwait.For(t, "the queue to empty", func() bool {
		e.do("GET", "/v1/dlq?subscription=notes", nil).json(t, &dl)
		return len(dl.DeadLetters) == 0
	})
	testwait.For(t, "the outcome to be recorded", func() bool {
		e.do("GET", "/v1/correlations/root-1", nil).json(t, &tr)
		return tr.Events[1].Outcomes[0].Status == herald.OutcomeSucceeded
	})
	b, _ := json.Marshal(tr)
	if strings.Contains(string(b), rc.ts.URL) {
		t.Fatalf("the trace shows the endpoint")
	}
}
