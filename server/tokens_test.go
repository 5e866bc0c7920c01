package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald/server"
)

// createToken creates a token through the API and returns its id and secret.
func createToken(t *testing.T, e *env, body map[string]any, hdr ...string) (id, secret string) {
	t.Helper()
	a := e.do("POST", "/v1/tokens", body, hdr...)
	if a.status != 201 {
		t.Fatalf("create token %v: %d %s", body, a.status, a.body)
	}
	var got struct {
		Token  string `json:"token"`
		Secret string `json:"secret"`
		Info   struct {
			ID string `json:"id"`
		} `json:"info"`
		ID string `json:"id"`
	}
	a.json(t, &got)
	secret = got.Token
	if secret == "" {
		secret = got.Secret
	}
	id = got.ID
	if id == "" {
		id = got.Info.ID
	}
	if secret == "" || id == "" {
		t.Fatalf("create token: no id or secret in %s", a.body)
	}
	return id, secret
}

// TestFirstTokenMustBeAdmin: on an open server, a first token that is not
// an admin would lock everyone out of administration (every later call
// needs a token, and none may manage tokens). It is refused, and nothing
// changes: the server stays open.
func TestFirstTokenMustBeAdmin(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/v1/tokens", map[string]any{"identity": "recorder", "publish": []string{"recording.>"}})
	if a.status != 400 || !strings.Contains(string(a.body), "admin") {
		t.Fatalf("non-admin first token: %d %s", a.status, a.body)
	}
	if e.srv.AuthEnabled() {
		t.Fatal("a refused token turned authentication on")
	}
	if a := e.do("GET", "/v1/events", nil); a.status != 200 {
		t.Fatalf("server no longer open after a refused token: %d %s", a.status, a.body)
	}
	// An admin first token is fine, and then non-admin ones.
	_, admin := createToken(t, e, map[string]any{"identity": "ops", "admin": true})
	createToken(t, e, map[string]any{"identity": "recorder", "publish": []string{"recording.>"}}, "Authorization", bearer(admin))
}

// TestAdminMayPublishAndRead: an admin token holds every right.
func TestAdminMayPublishAndRead(t *testing.T) {
	e := newEnv(t, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	a := e.do("POST", "/v1/events", map[string]any{"name": "billing.paid", "data": map[string]any{}}, "Authorization", bearer(adminToken))
	if a.status != 201 {
		t.Fatalf("admin publish: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?name=>", nil, "Authorization", bearer(adminToken)); a.status != 200 {
		t.Fatalf("admin read: %d %s", a.status, a.body)
	}
}

// TestLastAdminTokenStays: revoking the last admin token while other
// tokens exist would leave nobody able to manage them; beyond loopback
// (server.WithRequireTokens) it would open the server to anyone. Both are
// refused.
func TestLastAdminTokenStays(t *testing.T) {
	e := newEnv(t)
	adminID, admin := createToken(t, e, map[string]any{"identity": "ops", "admin": true})
	auth := []string{"Authorization", bearer(admin)}
	recID, _ := createToken(t, e, map[string]any{"identity": "recorder", "publish": []string{"recording.>"}}, auth...)
	if a := e.do("DELETE", "/v1/tokens/"+adminID, nil, auth...); a.status != 409 || !strings.Contains(string(a.body), "last admin") {
		t.Fatalf("revoking the last admin with a token left: %d %s", a.status, a.body)
	}
	// With the other token gone the admin may leave on loopback: the
	// server is open again, as it was before any token.
	if a := e.do("DELETE", "/v1/tokens/"+recID, nil, auth...); a.status != 204 {
		t.Fatalf("revoke recorder: %d %s", a.status, a.body)
	}
	if a := e.do("DELETE", "/v1/tokens/"+adminID, nil, auth...); a.status != 204 {
		t.Fatalf("revoke the only token on loopback: %d %s", a.status, a.body)
	}
}

func TestRequireTokensNeverOpens(t *testing.T) {
	e := newEnv(t, server.WithRequireTokens(),
		server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	auth := []string{"Authorization", bearer(adminToken)}
	id, second := createToken(t, e, map[string]any{"identity": "ops2", "admin": true}, auth...)
	// Two admins: one may go.
	if a := e.do("DELETE", "/v1/tokens/"+id, nil, "Authorization", bearer(second)); a.status != 204 {
		t.Fatalf("revoking one of two admins: %d %s", a.status, a.body)
	}
	// A server that must not be open and knows no token at all (its
	// stored tokens were revoked through another server sharing the
	// store) serves nobody: anonymous callers get nothing, and cannot
	// mint a token.
	empty := newEnv(t, server.WithRequireTokens())
	for _, c := range []struct{ method, path string }{{"GET", "/v1/events"}, {"POST", "/v1/tokens"}} {
		if a := empty.do(c.method, c.path, map[string]any{"identity": "x", "admin": true}); a.status != 401 {
			t.Errorf("anonymous %s %s: %d %s", c.method, c.path, a.status, a.body)
		}
	}
}

// TestRequireTokensLastStoredAdmin: beyond loopback the last token cannot
// be revoked, even when it is the only one.
func TestRequireTokensLastStoredAdmin(t *testing.T) {
	e := newEnv(t)
	adminID, admin := createToken(t, e, map[string]any{"identity": "ops", "admin": true})
	srv, err := server.New(e.bus, server.WithRequireTokens())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close(context.Background())
	})
	e2 := &env{t: t, url: ts.URL}
	if a := e2.do("DELETE", "/v1/tokens/"+adminID, nil, "Authorization", bearer(admin)); a.status != 409 {
		t.Fatalf("revoking the only token beyond loopback: %d %s", a.status, a.body)
	}
	if a := e2.do("GET", "/v1/events", nil); a.status != 401 {
		t.Fatalf("anonymous read beyond loopback: %d %s", a.status, a.body)
	}
}
