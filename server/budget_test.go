package server_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/server"
)

const (
	readerToken  = "hrld_reader-secret-for-tests-only-0123456789"
	stingyToken  = "hrld_stingy-secret-for-tests-only-0123456789"
	budgetEvents = `[{"name":"recording.done","data":{}}]`
)

func budgetEnv(t *testing.T, opts ...server.Option) *env {
	return newEnv(t, append(opts, budgetTokens())...)
}

// budgetTokens are a reader, a publisher with a tiny budget and an admin.
func budgetTokens() server.Option {
	return server.WithTokens([]server.Token{
		{Identity: "reader", Hash: server.HashToken(readerToken), Subscribe: []string{">"}},
		// Almost no refill: the burst is the whole budget of the test.
		{Identity: "stingy", Hash: server.HashToken(stingyToken), Publish: []string{"recording.>"}, Rate: 0.0001, Burst: 3},
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
	})
}

// holdBody starts a publish whose body never completes and returns its
// connection; the caller closes it.
func holdBody(t *testing.T, e *env, token string) net.Conn {
	t.Helper()
	c := e.dial()
	fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n[", token)
	return c
}

// A token without any publish right is refused before its body is read:
// the 403 comes at once, although the body never arrives.
func TestPublishRightCheckedBeforeBody(t *testing.T) {
	e := budgetEnv(t)
	resp, _ := sendShortBody(t, e, readerToken, 30*time.Second)
	if resp == nil {
		t.Fatal("a subscribe-only token's publish waited for its body")
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("answer %d, want 403", resp.StatusCode)
	}
}

// Refused publishes (invalid, forbidden) use the rate budget, and a token
// whose budget is spent is refused before its body is read.
func TestRefusedPublishesUseTheBudget(t *testing.T) {
	e := budgetEnv(t)
	auth := bearer(stingyToken)
	for i, body := range []string{`{"name":`, `[{"name":"billing.paid","data":{}}]`} {
		if a := e.do("POST", "/v1/events", body, "Authorization", auth); a.status != 400 && a.status != 403 {
			t.Fatalf("refused publish %d answered %d", i, a.status)
		}
	}
	if a := e.do("POST", "/v1/events", budgetEvents, "Authorization", auth); a.status != 201 {
		t.Fatalf("third request (budget 3) answered %d: %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/events", budgetEvents, "Authorization", auth); a.status != 429 {
		t.Fatalf("fourth request (budget spent) answered %d, want 429", a.status)
	}
	resp, _ := sendShortBody(t, e, stingyToken, 30*time.Second)
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("spent budget, short body: %v, want 429 at once", resp)
	}
}

// The server reads at most WithMaxBodyReads publish bodies at once; one
// more waits briefly, then gets 503 with Retry-After. In a bubble, on a
// network in memory, so that the bodies held are known to be read before
// the third publish comes.
func TestConcurrentBodyReadsCapped(t *testing.T) {
	synctest.Test(t, testConcurrentBodyReadsCapped)
}

func testConcurrentBodyReadsCapped(t *testing.T) {
	e := newBubbleEnv(t, server.WithMaxBodyReads(2), budgetTokens())
	for range 2 {
		c := holdBody(t, e, adminToken)
		defer c.Close()
	}
	synctest.Wait() // the server reads both bodies, each holding a slot
	a := e.do("POST", "/v1/events", budgetEvents, "Authorization", bearer(adminToken))
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("with 2 bodies held and a cap of 2, a third publish answered %d: %s", a.status, a.body)
	}
	if a.header.Get("Retry-After") == "" || !strings.Contains(string(a.body), "backpressure") {
		t.Fatalf("503 without Retry-After or code: %s", a.body)
	}
}
