package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

const billerToken = "hrld_biller-secret-for-tests-only-0123456789"

// Dead letters belong to the subscription that made them: when its owner
// deletes it, they go with it, and a new owner of the name never receives
// them.
func TestDeadLettersStayWithTheirOwner(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }))
	defer refuse.Close()
	var got atomic.Int64
	recorderHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer recorderHook.Close()
	e := newEnv(t, server.WithTokens([]server.Token{
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
		{Identity: "biller", Hash: server.HashToken(billerToken), Publish: []string{"bill.>"}, Subscribe: []string{"bill.>"}},
		{Identity: "recorder", Hash: server.HashToken(recorderToken), Publish: []string{"recording.>"}, Subscribe: []string{"recording.>", "bill.>"}},
	}))
	biller, recorder, admin := bearer(billerToken), bearer(recorderToken), bearer(adminToken)
	if a := e.do("PUT", "/v1/subscriptions/bill-hook", map[string]any{"filter": "bill.>", "endpoint": refuse.URL, "max_attempts": 1},
		"Authorization", biller); a.status != 201 {
		t.Fatalf("biller PUT: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "bill.paid", "data": map[string]any{"card_last4": "4242"}}, "Authorization", biller)
	testwait.For(t, "the dead letter", func() bool {
		a := e.do("GET", "/v1/dlq?subscription=bill-hook", nil, "Authorization", admin)
		return strings.Contains(string(a.body), "bill.paid")
	})
	if a := e.do("DELETE", "/v1/subscriptions/bill-hook", nil, "Authorization", biller); a.status != 204 {
		t.Fatalf("biller DELETE: %d %s", a.status, a.body)
	}
	if a := e.do("PUT", "/v1/subscriptions/bill-hook", map[string]any{"filter": "recording.>", "endpoint": recorderHook.URL},
		"Authorization", recorder); a.status != 201 {
		t.Fatalf("recorder PUT: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/dlq?subscription=bill-hook", nil, "Authorization", admin); strings.Contains(string(a.body), "bill.paid") {
		t.Fatalf("the new bill-hook holds the old owner's dead letter: %s", a.body)
	}
	a := e.do("POST", "/v1/dlq/redrive?subscription=bill-hook", nil, "Authorization", admin)
	if a.status != 202 || !strings.Contains(string(a.body), `"redriven":0`) {
		t.Fatalf("redrive of the new bill-hook: %d %s; want nothing redriven", a.status, a.body)
	}
}
