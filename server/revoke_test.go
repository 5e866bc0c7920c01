package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// Revoking a token ends its open SSE streams and pauses the webhooks its
// identity owns (no other token of it is left).
func TestRevocationEndsAccess(t *testing.T) {
	var delivered atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { delivered.Add(1) }))
	defer hook.Close()
	e := newEnv(t, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	admin := bearer(adminToken)
	pluginID, pluginSecret := createToken(t, e, map[string]any{"identity": "plugin", "publish": []string{"p.>"}, "subscribe": []string{"p.>"}}, "Authorization", admin)
	plugin := bearer(pluginSecret)
	if a := e.do("PUT", "/v1/subscriptions/plugin-hook", map[string]any{"filter": "p.>", "endpoint": hook.URL}, "Authorization", plugin); a.status != 201 {
		t.Fatalf("PUT subscription: %d %s", a.status, a.body)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream := e.stream(ctx, "/v1/stream?name=p.>", "Authorization", plugin)
	e.publish(map[string]any{"name": "p.one", "data": map[string]any{}}, "Authorization", admin)
	recv(t, stream, 1)
	testwait.For(t, "the first delivery", func() bool { return delivered.Load() == 1 })

	if a := e.do("DELETE", "/v1/tokens/"+pluginID, nil, "Authorization", admin); a.status != 204 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	select {
	case ev, open := <-stream:
		if open {
			t.Fatalf("the stream of a revoked token got %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream of a revoked token is still open")
	}
	var v struct {
		Running bool `json:"running"`
	}
	a := e.do("GET", "/v1/subscriptions/plugin-hook", nil, "Authorization", admin)
	if a.status != 200 {
		t.Fatalf("GET subscription: %d %s", a.status, a.body)
	}
	a.json(t, &v)
	if v.Running {
		t.Fatal("the webhook of a revoked identity still runs")
	}
}

// TestRevokeAnswersAfterPausing pins the order: when DELETE /v1/tokens/{id}
// answers, the webhooks of the identity left without a token are already
// paused, even while one of their deliveries is in flight.
func TestRevokeAnswersAfterPausing(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices a closed connection
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-r.Context().Done() // hang until herald gives up on the delivery
		select {
		case ended <- struct{}{}:
		default:
		}
	}))
	defer hook.Close()
	e := newEnv(t, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	admin := bearer(adminToken)
	for i := range 20 {
		id, secret := createToken(t, e, map[string]any{"identity": "plugin", "publish": []string{"p.>"}, "subscribe": []string{"p.>"}}, "Authorization", admin)
		name := fmt.Sprintf("plugin-hook-%d", i)
		if a := e.do("PUT", "/v1/subscriptions/"+name, map[string]any{"filter": "p.>", "endpoint": hook.URL}, "Authorization", bearer(secret)); a.status != 201 {
			t.Fatalf("PUT subscription: %d %s", a.status, a.body)
		}
		e.publish(map[string]any{"name": "p.one", "data": map[string]any{"i": i}}, "Authorization", admin)
		select {
		case <-inFlight:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery reached the endpoint")
		}
		if a := e.do("DELETE", "/v1/tokens/"+id, nil, "Authorization", admin); a.status != 204 {
			t.Fatalf("revoke: %d %s", a.status, a.body)
		}
		var v struct {
			Running bool `json:"running"`
		}
		a := e.do("GET", "/v1/subscriptions/"+name, nil, "Authorization", admin)
		if a.status != 200 {
			t.Fatalf("GET subscription: %d %s", a.status, a.body)
		}
		a.json(t, &v)
		if v.Running {
			t.Fatalf("round %d: the revoke answered while the webhook of the revoked identity still ran", i)
		}
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the delivery in flight at the revoke still runs", i)
		}
	}
}
