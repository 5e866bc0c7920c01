package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// The outcomes a push subscription recorded belong to it: when its owner
// deletes it they go with it, and a new owner of the name never sees them
// in a trace — nor outcomes an earlier subscription of the name left in
// the store (deleted through an older herald).
func TestOutcomesStayWithTheirOwner(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	e := newEnv(t, server.WithTokens([]server.Token{
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
		{Identity: "biller", Hash: server.HashToken(billerToken), Publish: []string{"bill.>"}, Subscribe: []string{"bill.>"}},
		{Identity: "recorder", Hash: server.HashToken(recorderToken), Publish: []string{"recording.>"}, Subscribe: []string{"recording.>", "bill.>"}},
	}))
	biller, recorder, admin := bearer(billerToken), bearer(recorderToken), bearer(adminToken)
	trace := func(who string) string {
		a := e.do("GET", "/v1/correlations/inv-9", nil, "Authorization", who)
		if a.status != 200 {
			t.Fatalf("trace: %d %s", a.status, a.body)
		}
		return string(a.body)
	}
	if a := e.do("PUT", "/v1/subscriptions/bill-hook", map[string]any{"filter": "bill.>", "endpoint": ok.URL},
		"Authorization", biller); a.status != 201 {
		t.Fatalf("biller PUT: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "bill.paid", "correlation_id": "inv-9", "data": map[string]any{"card_last4": "4242"}}, "Authorization", biller)
	testwait.For(t, "bill-hook's outcome", func() bool {
		return strings.Contains(trace(admin), `"subscription":"bill-hook"`)
	})
	if a := e.do("DELETE", "/v1/subscriptions/bill-hook", nil, "Authorization", biller); a.status != 204 {
		t.Fatalf("biller DELETE: %d %s", a.status, a.body)
	}
	if a := e.do("PUT", "/v1/subscriptions/bill-hook", map[string]any{"filter": "recording.>", "endpoint": ok.URL},
		"Authorization", recorder); a.status != 201 {
		t.Fatalf("recorder PUT: %d %s", a.status, a.body)
	}
	for who, tok := range map[string]string{"the recorder": recorder, "an admin": admin} {
		if tr := trace(tok); strings.Contains(tr, `"subscription":"bill-hook"`) {
			t.Errorf("%s sees the old bill-hook's outcome under the new one's name: %s", who, tr)
		}
	}

	// Outcomes left under a name by a subscription deleted through an
	// older herald: a new subscription of the name starts without them.
	ctx := context.Background()
	var ev *herald.Event
	for got, err := range e.bus.Read(ctx, 0, herald.Filter{CorrelationID: "inv-9"}) {
		if err != nil {
			t.Fatal(err)
		}
		ev = got
	}
	if err := e.store.Commit(ctx, "late-hook", herald.Progress{Checkpoint: ev.Position, Outcomes: []herald.Outcome{{
		Subscription: "late-hook", EventID: ev.ID, EventName: ev.Name, Position: ev.Position,
		CorrelationID: ev.CorrelationID, Status: herald.OutcomeSucceeded, Attempts: 1, UpdatedAt: time.Now(),
	}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(trace(admin), `"subscription":"late-hook"`) {
		t.Fatal("the left-over outcome is not in the trace")
	}
	if a := e.do("PUT", "/v1/subscriptions/late-hook", map[string]any{"filter": "recording.>", "endpoint": ok.URL},
		"Authorization", recorder); a.status != 201 {
		t.Fatalf("recorder PUT: %d %s", a.status, a.body)
	}
	if tr := trace(admin); strings.Contains(tr, `"subscription":"late-hook"`) {
		t.Errorf("the new late-hook shows an earlier subscription's outcome: %s", tr)
	}
}
