package server_test

import (
	"context"
	"github.com/heraldhq/herald/internal/testlog"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

const (
	recorderToken = "hrld_recorder-secret-for-tests-only-0123456789"
	adminToken    = "hrld_admin-secret-for-tests-only-0123456789"
	slowToken     = "hrld_slow-secret-for-tests-only-0123456789"
)

func authEnv(t *testing.T) (*env, *testlog.Buffer) {
	audit := &testlog.Buffer{}
	e := newEnv(t,
		server.WithAuditLogger(slog.New(slog.NewJSONHandler(audit, nil))),
		server.WithTokens([]server.Token{
			{Identity: "recorder", Hash: server.HashToken(recorderToken), Publish: []string{"recording.>"}, Subscribe: []string{"recording.>"}},
			{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true, Publish: []string{">"}},
			{Identity: "slow", Hash: server.HashToken(slowToken), Publish: []string{">"}, Subscribe: []string{">"}, Rate: 1, Burst: 3},
		}))
	return e, audit
}

func bearer(tok string) string { return "Bearer " + tok }

func TestAuthMatrix(t *testing.T) {
	e, audit := authEnv(t)
	if !e.srv.AuthEnabled() {
		t.Fatal("AuthEnabled is false with tokens configured")
	}
	ev := map[string]any{"name": "recording.completed", "data": map[string]any{}, "source_plugin": "someone-else"}
	cases := []struct {
		name, method, path string
		body               any
		token              string
		status             int
		code               string
	}{
		{"no token", "POST", "/v1/events", ev, "", 401, "unauthorized"},
		{"wrong token", "POST", "/v1/events", ev, "hrld_wrong", 401, "unauthorized"},
		{"not bearer", "POST", "/v1/events", ev, "Basic " + recorderToken, 401, "unauthorized"},
		{"forbidden name", "POST", "/v1/events", map[string]any{"name": "billing.paid", "data": map[string]any{}}, recorderToken, 403, "forbidden"},
		{"forbidden in batch", "POST", "/v1/events", []any{ev, map[string]any{"name": "billing.paid", "data": map[string]any{}}}, recorderToken, 403, "forbidden"},
		{"forbidden read", "GET", "/v1/events?name=billing.>", nil, recorderToken, 403, "forbidden"},
		{"read all needs >", "GET", "/v1/events?name=>", nil, recorderToken, 403, "forbidden"},
		{"forbidden stream", "GET", "/v1/stream?name=>", nil, recorderToken, 403, "forbidden"},
		{"forbidden subscription", "PUT", "/v1/subscriptions/x", map[string]any{"filter": "billing.*", "endpoint": "http://127.0.0.1:1/"}, recorderToken, 403, "forbidden"},
		{"dlq needs admin", "GET", "/v1/dlq", nil, recorderToken, 403, "forbidden"},
		{"redrive needs admin", "POST", "/v1/dlq/redrive", nil, recorderToken, 403, "forbidden"},
		{"schemas need admin", "PUT", "/v1/schemas/a.b/1", map[string]any{"type": "object"}, recorderToken, 403, "forbidden"},
		{"tokens need admin", "POST", "/v1/tokens", map[string]any{"identity": "x"}, recorderToken, 403, "forbidden"},
		{"token list needs admin", "GET", "/v1/tokens", nil, recorderToken, 403, "forbidden"},
		{"allowed read", "GET", "/v1/events?name=recording.>", nil, recorderToken, 200, ""},
		{"admin reads all", "GET", "/v1/events", nil, adminToken, 200, ""},
		{"admin dlq", "GET", "/v1/dlq", nil, adminToken, 200, ""},
		{"health is public", "GET", "/healthz", nil, "", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := ""
			if c.token != "" {
				auth = c.token
				if !strings.HasPrefix(auth, "Basic ") {
					auth = bearer(auth)
				}
			}
			a := e.do(c.method, c.path, c.body, "Authorization", auth)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			if c.code != "" && a.errCode(t).Error.Code != c.code {
				t.Fatalf("code %s, want %s", a.body, c.code)
			}
			if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	if e.head() != 0 {
		t.Fatalf("denied requests stored %d events", e.head())
	}

	// The caller's identity is the source_plugin, whatever the body says.
	p := e.publish(ev, "Authorization", bearer(recorderToken))
	var got herald.Event
	e.do("GET", "/v1/events/"+p.Events[0].ID, nil, "Authorization", bearer(recorderToken)).json(t, &got)
	if got.SourcePlugin != "recorder" {
		t.Fatalf("source_plugin %q, want the caller's identity", got.SourcePlugin)
	}
	// An event the caller may not read is not found for it.
	q := e.publish(map[string]any{"name": "billing.paid", "data": map[string]any{}}, "Authorization", bearer(adminToken))
	if a := e.do("GET", "/v1/events/"+q.Events[0].ID, nil, "Authorization", bearer(recorderToken)); a.status != 404 {
		t.Fatalf("reading a forbidden event by id: %d", a.status)
	}

	log := audit.String()
	for _, want := range []string{`"code":"unauthorized"`, `"code":"forbidden"`, `"identity":"recorder"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, recorderToken) || strings.Contains(log, adminToken) {
		t.Errorf("audit log contains a token")
	}
}

func TestRateLimit(t *testing.T) {
	e, audit := authEnv(t)
	ev := map[string]any{"name": "a.b", "data": map[string]any{}}
	auth := bearer(slowToken)
	// A batch larger than the burst can never pass: it says so, and the
	// refused request costs one from the budget.
	a := e.do("POST", "/v1/events", []any{ev, ev, ev, ev}, "Authorization", auth)
	if a.status != 429 || !strings.Contains(a.errCode(t).Error.Message, "burst") {
		t.Fatalf("batch over the burst: %d %s", a.status, a.body)
	}
	// Burst 3, one spent: two events pass, the third is limited.
	e.publish([]any{ev, ev}, "Authorization", auth)
	a = e.do("POST", "/v1/events", ev, "Authorization", auth)
	if a.status != 429 || a.errCode(t).Error.Code != "rate_limited" || a.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s (Retry-After %q)", a.status, a.body, a.header.Get("Retry-After"))
	}
	if e.head() != 2 {
		t.Fatalf("head %d, want 2: a limited request stored events", e.head())
	}
	if !strings.Contains(audit.String(), "rate_limited") {
		t.Errorf("rate limiting is not in the audit log")
	}
}

func TestTokensAPI(t *testing.T) {
	e := newEnv(t) // open: anyone may create the first token
	if e.srv.AuthEnabled() {
		t.Fatal("AuthEnabled with no tokens")
	}
	a := e.do("POST", "/v1/tokens", map[string]any{"identity": "ops", "admin": true})
	var created struct {
		Token string       `json:"token"`
		Info  server.Token `json:"info"`
	}
	a.json(t, &created)
	if a.status != 201 || !strings.HasPrefix(created.Token, "hrld_") || created.Info.ID == "" || created.Info.Hash != "" {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	// From now on tokens are required.
	if a := e.do("GET", "/v1/tokens", nil); a.status != 401 {
		t.Fatalf("without a token after the first was made: %d", a.status)
	}
	auth := bearer(created.Token)
	a = e.do("POST", "/v1/tokens", map[string]any{"identity": "rec", "publish": []string{"recording.>"}}, "Authorization", auth)
	var second struct {
		Token string       `json:"token"`
		Info  server.Token `json:"info"`
	}
	a.json(t, &second)
	var list struct {
		Tokens []server.Token `json:"tokens"`
	}
	e.do("GET", "/v1/tokens", nil, "Authorization", auth).json(t, &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("list: %+v", list)
	}
	for _, tk := range list.Tokens {
		if tk.Hash != "" {
			t.Fatalf("list shows a hash")
		}
	}
	// The token is kept hashed in the store, never in clear.
	vals, err := e.store.ListValues(t.Context(), server.TokenBucket)
	if err != nil || len(vals) != 2 {
		t.Fatalf("tokens in KV: %d %v", len(vals), err)
	}
	for _, v := range vals {
		if strings.Contains(string(v), created.Token) || strings.Contains(string(v), second.Token) {
			t.Fatal("a token is stored in clear")
		}
	}
	if a := e.do("DELETE", "/v1/tokens/"+second.Info.ID, nil, "Authorization", auth); a.status != 204 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/events", map[string]any{"name": "recording.x", "data": map[string]any{}}, "Authorization", bearer(second.Token)); a.status != 401 {
		t.Fatalf("revoked token: %d", a.status)
	}
	if a := e.do("DELETE", "/v1/tokens/tok_nope", nil, "Authorization", auth); a.status != 404 {
		t.Fatalf("revoke unknown: %d", a.status)
	}
}

// Servers sharing a store (and a configuration) see the tokens each other
// creates.
func TestTokensSharedBetweenServers(t *testing.T) {
	synctest.Test(t, testTokensSharedBetweenServers)
}

func testTokensSharedBetweenServers(t *testing.T) {
	st := herald.NewMemoryStore()
	a := newBubbleEnvStore(t, st, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	busB, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := server.New(busB, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvB.Close(context.Background()); busB.Close(context.Background()) })
	b := &env{t: t, store: st, bus: busB, srv: srvB, url: "http://herald.test", client: &http.Client{Transport: handlerTransport{srvB}}}

	var created struct {
		Token string `json:"token"`
	}
	a.do("POST", "/v1/tokens", map[string]any{"identity": "rec", "publish": []string{">"}}, "Authorization", bearer(adminToken)).json(t, &created)
	time.Sleep(1100 * time.Millisecond) // on the bubble's clock: past the reload-on-miss interval
	p := b.publish(map[string]any{"name": "x.y", "data": map[string]any{}}, "Authorization", bearer(created.Token))
	var ev herald.Event
	a.do("GET", "/v1/events/"+p.Events[0].ID, nil, "Authorization", bearer(adminToken)).json(t, &ev)
	if ev.SourcePlugin != "rec" {
		t.Fatalf("source_plugin %q", ev.SourcePlugin)
	}
}
