package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// An IPv6 zone id does not hide a link-local address, and the default
// policy keeps non-admins from private ranges and everyone from cloud
// metadata addresses, written in any form.
func TestWebhookPolicyDefault(t *testing.T) {
	e := newEnv(t, leakTokens())
	put := func(tok, name, endpoint string) answer {
		return e.do("PUT", "/v1/subscriptions/"+name, map[string]any{"endpoint": endpoint, "filter": strings.ReplaceAll(name, "-", "_") + ".*"}, "Authorization", bearer(tok))
	}
	for _, endpoint := range []string{
		"http://[fe80::1%25eth0]:8080/", "http://[fe80::1]:8080/", "http://10.0.0.1:9/", "http://172.16.5.4/",
		"http://192.168.1.1/", "http://100.64.0.1/", "http://[fd12::1]:9/", "http://169.254.10.1/",
		"http://[::ffff:10.0.0.1]/",
	} {
		a := put(aliceToken, "private", endpoint)
		if a.status != http.StatusForbidden || a.errCode(t).Error.Code != "forbidden" || a.errCode(t).Error.Field != "endpoint" {
			t.Errorf("alice's webhook to %s: %d %s, want 403 on endpoint", endpoint, a.status, a.body)
		}
	}
	if a := put(adminToken, "admin-private", "http://10.0.0.1:9/"); a.status != http.StatusCreated {
		t.Fatalf("an admin's webhook to a private address: %d %s", a.status, a.body)
	}
	if a := put(adminToken, "admin-link-local", "http://[fe80::1%25eth0]:8080/"); a.status != http.StatusCreated {
		t.Fatalf("an admin's webhook to a link-local address with its zone: %d %s", a.status, a.body)
	}
	for _, endpoint := range []string{
		"http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/",
		"http://[64:ff9b::a9fe:a9fe]/", "http://0.0.0.0:80/", "http://[::]:80/", "http://224.0.0.1/",
	} {
		a := put(adminToken, "meta", endpoint)
		if a.status != http.StatusBadRequest || a.errCode(t).Error.Field != "endpoint" {
			t.Errorf("an admin's webhook to %s: %d %s, want 400 on endpoint", endpoint, a.status, a.body)
		}
	}
	// Loopback is everyone's by default: a plugin on the same machine.
	var got atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	defer hook.Close()
	if a := put(aliceToken, "local", hook.URL); a.status != http.StatusCreated {
		t.Fatalf("alice's webhook to loopback: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "local.x", "data": map[string]any{}}, "Authorization", bearer(aliceToken))
	testwait.For(t, "the loopback delivery", func() bool { return got.Load() >= 1 })
}

// A policy that keeps loopback for admins is checked on the address a
// delivery dials, after DNS: a name that resolves to loopback gets
// nowhere for a non-admin, and an admin's webhook to it is delivered. An
// allow list opens a metadata address.
func TestWebhookPolicyAtDial(t *testing.T) {
	var got atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	defer hook.Close()
	e := newEnv(t, leakTokens(), server.WithWebhookPolicy(server.WebhookPolicy{
		Loopback: server.AccessAdmin, Allow: []string{"169.254.169.254/32"}}))
	u, _ := url.Parse(hook.URL)
	byName := "http://localhost:" + u.Port() + "/"
	put := func(tok, name, endpoint string) answer {
		return e.do("PUT", "/v1/subscriptions/"+name, map[string]any{"endpoint": endpoint, "filter": name + ".*", "max_attempts": 1},
			"Authorization", bearer(tok))
	}
	if a := put(aliceToken, "literal", hook.URL); a.status != http.StatusForbidden {
		t.Fatalf("alice's webhook to a loopback address: %d %s", a.status, a.body)
	}
	if a := put(aliceToken, "named", byName); a.status != http.StatusCreated {
		t.Fatalf("alice's webhook to a name: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "named.x", "data": map[string]any{}}, "Authorization", bearer(aliceToken))
	var dl struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	testwait.For(t, "alice's delivery refused at dial", func() bool {
		e.do("GET", "/v1/dlq?subscription=named", nil, "Authorization", bearer(adminToken)).json(t, &dl)
		return len(dl.DeadLetters) == 1
	})
	if msg := dl.DeadLetters[0].Errors[0].Error; !strings.Contains(msg, "policy") {
		t.Errorf("the refused delivery's error does not name the policy: %q", msg)
	}
	if got.Load() != 0 {
		t.Fatalf("the endpoint got %d requests from a webhook the policy refuses", got.Load())
	}
	if a := put(adminToken, "admins", byName); a.status != http.StatusCreated {
		t.Fatalf("the admin's webhook to a name: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"name": "admins.x", "data": map[string]any{}}, "Authorization", bearer(adminToken))
	testwait.For(t, "the admin's delivery", func() bool { return got.Load() == 1 })
	if a := put(adminToken, "meta", "http://169.254.169.254/"); a.status != http.StatusCreated {
		t.Fatalf("a metadata address on the allow list: %d %s", a.status, a.body)
	}
	if _, err := server.New(e.bus, server.WithWebhookPolicy(server.WebhookPolicy{Allow: []string{"10.0.0.0/33"}})); err == nil {
		t.Fatal("New took a bad CIDR in the allow list")
	}
	if _, err := server.New(e.bus, server.WithWebhookPolicy(server.WebhookPolicy{Private: "friends"})); err == nil {
		t.Fatal("New took an unknown access")
	}
}
