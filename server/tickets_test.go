package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/server"
)

func ticketFor(t *testing.T, e *env, token string) string {
	t.Helper()
	tk := strict[api.StreamTicket](t, "POST /v1/stream/tickets", e.do("POST", "/v1/stream/tickets", nil, "Authorization", bearer(token)), http.StatusCreated)
	if !strings.HasPrefix(tk.Ticket, "hrst_") || strings.Contains(tk.Ticket, token) {
		t.Fatalf("ticket %q", tk.Ticket)
	}
	return tk.Ticket
}

// A browser opens the stream with a one-use ticket in the URL, never its
// token; the ticket carries exactly its token's rights.
func TestStreamTickets(t *testing.T) {
	e, _ := authEnv(t)
	e.publish(map[string]any{"name": "recording.done", "data": map[string]any{}}, "Authorization", bearer(recorderToken))

	tk := ticketFor(t, e, recorderToken)
	seen := func(string) {}
	e.streamAnswer(t, "/v1/stream?after=0&name=recording.>&ticket="+url.QueryEscape(tk), nil, seen)
	// Spent.
	if a := e.do("GET", "/v1/stream?name=recording.>&ticket="+url.QueryEscape(tk), nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a ticket used twice: %d %s", a.status, a.body)
	}
	// The token's rights, no more: the recorder may not read other names.
	tk = ticketFor(t, e, recorderToken)
	if a := e.do("GET", "/v1/stream?name=order.>&ticket="+url.QueryEscape(tk), nil); a.status != http.StatusForbidden {
		t.Fatalf("a ticket beyond its token's rights: %d %s", a.status, a.body)
	}
	tk = ticketFor(t, e, recorderToken)
	if a := e.do("GET", "/v1/stream?name=>&ticket="+url.QueryEscape(tk), nil); a.status != http.StatusForbidden {
		t.Fatalf("a ticket for every name: %d %s", a.status, a.body)
	}
	// An admin's ticket has the admin's rights.
	tk = ticketFor(t, e, adminToken)
	e.streamAnswer(t, "/v1/stream?ticket="+url.QueryEscape(tk), nil, seen)

	// A ticket opens the stream only, and is no bearer token.
	tk = ticketFor(t, e, adminToken)
	if a := e.do("GET", "/v1/events?ticket="+url.QueryEscape(tk), nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a ticket on another endpoint: %d", a.status)
	}
	if a := e.do("GET", "/v1/stream", nil, "Authorization", bearer(tk)); a.status != http.StatusUnauthorized {
		t.Fatalf("a ticket as a bearer token: %d", a.status)
	}
	if a := e.do("GET", "/v1/stream?ticket=hrst_made-up", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a made-up ticket: %d", a.status)
	}

	// Asking for one needs a token, and takes no body.
	if a := e.do("POST", "/v1/stream/tickets", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a ticket without a token: %d", a.status)
	}
	if a := e.do("POST", "/v1/stream/tickets", map[string]any{"for": "x"}, "Authorization", bearer(adminToken)); a.status != http.StatusBadRequest {
		t.Fatalf("a ticket request with a body: %d", a.status)
	}

	// A revoked token's tickets are worthless.
	var created api.TokenCreated
	e.do("POST", "/v1/tokens", api.TokenRequest{Identity: "page", Subscribe: []string{">"}}, "Authorization", bearer(adminToken)).json(t, &created)
	tk = ticketFor(t, e, created.Token)
	if a := e.do("DELETE", "/v1/tokens/"+created.Info.ID, nil, "Authorization", bearer(adminToken)); a.status != http.StatusNoContent {
		t.Fatalf("revoke: %d", a.status)
	}
	if a := e.do("GET", "/v1/stream?ticket="+url.QueryEscape(tk), nil); a.status != http.StatusUnauthorized {
		t.Fatalf("the ticket of a revoked token: %d %s", a.status, a.body)
	}
}

// A ticket works for 30 seconds, not longer.
func TestStreamTicketExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
		tk := ticketFor(t, e, adminToken)
		time.Sleep(29 * time.Second)
		// Still valid: the request passes authentication and stops at its
		// bad pattern (a stream in a bubble would never end).
		if a := e.do("GET", "/v1/stream?name=BAD&ticket="+url.QueryEscape(tk), nil); a.status != http.StatusBadRequest {
			t.Fatalf("a ticket 29 s old: %d %s", a.status, a.body)
		}
		tk = ticketFor(t, e, adminToken)
		time.Sleep(30 * time.Second)
		if a := e.do("GET", "/v1/stream?name=BAD&ticket="+url.QueryEscape(tk), nil); a.status != http.StatusUnauthorized {
			t.Fatalf("a ticket 30 s old: %d %s", a.status, a.body)
		}
	})
}
