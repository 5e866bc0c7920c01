package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldhq/herald/server"
)

// Push subscriptions are capped per identity, in total, and in the
// concurrency one identity's subscriptions add up to.
func TestPushSubscriptionCaps(t *testing.T) {
	put := pushCapsServer(t, server.PushLimits{PerIdentity: 2, Total: 3, ConcurrencyPerIdentity: 8})
	if a := put(recorderToken, "r1", 4); a.status != 201 {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	if a := put(recorderToken, "r2", 5); a.status != 403 {
		t.Fatalf("concurrency 4+5 over a cap of 8: %d %s", a.status, a.body)
	}
	if a := put(recorderToken, "r2", 4); a.status != 201 {
		t.Fatalf("second: %d %s", a.status, a.body)
	}
	if a := put(recorderToken, "r1", 4); a.status != 200 {
		t.Fatalf("replacing one of its own is not a new one: %d %s", a.status, a.body)
	}
	if a := put(recorderToken, "r3", 1); a.status != 403 {
		t.Fatalf("third of one identity (cap 2): %d %s", a.status, a.body)
	}
	if a := put(adminToken, "a1", 1); a.status != 201 {
		t.Fatalf("admin's: %d %s", a.status, a.body)
	}
	a := put(adminToken, "a2", 1)
	if a.status != 403 {
		t.Fatalf("fourth in all (cap 3): %d %s", a.status, a.body)
	}
	if c := a.errCode(t).Error.Code; c != "forbidden" {
		t.Fatalf("code %q", c)
	}
}

// The concurrency of all push subscriptions together is capped too,
// admins' included: many identities at their own cap, or an admin, could
// otherwise add up to any number of deliveries in flight.
func TestPushConcurrencyCappedInTotal(t *testing.T) {
	put := pushCapsServer(t, server.PushLimits{ConcurrencyPerIdentity: 8, ConcurrencyTotal: 12})
	if a := put(recorderToken, "r1", 8); a.status != 201 {
		t.Fatalf("recorder at its own cap: %d %s", a.status, a.body)
	}
	a := put(adminToken, "a1", 5)
	if a.status != 403 || a.errCode(t).Error.Field != "concurrency" {
		t.Fatalf("8+5 over a total of 12: %d %s", a.status, a.body)
	}
	if a := put(adminToken, "a1", 4); a.status != 201 {
		t.Fatalf("8+4: %d %s", a.status, a.body)
	}
	if a := put(recorderToken, "r1", 8); a.status != 200 {
		t.Fatalf("replacing one keeps its own share out of the sum: %d %s", a.status, a.body)
	}
}

// pushCapsServer starts a server with caps lim, an admin ("ops") and a
// subscriber ("recorder"), and returns a PUT of a push subscription of
// the given concurrency, as token, to an endpoint that answers 200.
func pushCapsServer(t *testing.T, lim server.PushLimits) func(token, name string, concurrency int) answer {
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	e := newEnv(t, server.WithPushLimits(lim),
		server.WithTokens([]server.Token{
			{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
			{Identity: "recorder", Hash: server.HashToken(recorderToken), Subscribe: []string{"recording.>"}},
		}))
	return func(token, name string, concurrency int) answer {
		return e.do("PUT", "/v1/subscriptions/"+name, map[string]any{"filter": "recording.>", "endpoint": hook.URL,
			"concurrency": concurrency}, "Authorization", bearer(token))
	}
}
