package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// herald serve takes the webhook policy and the metrics token from its
// configuration file, flags winning over the file.
func TestServeWebhookPolicyAndMetricsToken(t *testing.T) {
	dir := t.TempDir()
	cfg := `
store: memory
metrics_token: plain-metrics-token
webhook_policy:
  private: nobody
  allow: [10.8.0.0/16]
tokens:
  - identity: recorder
    token: plain-recorder-token
    publish: ["recording.>"]
    subscribe: ["recording.>"]
  - identity: ops
    token: plain-admin-token
    admin: true
`
	path := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "--addr", "127.0.0.1:0", "--config", path, "--data", dir, "--webhook-allow", "10.9.0.0/16")
	do := func(method, path, token string, body any) (int, string) {
		t.Helper()
		st, b := send(t, method, p.url+path, token, body)
		return st, string(b)
	}
	for tok, want := range map[string]int{"": 401, "plain-recorder-token": 401, "plain-metrics-token": 200, "plain-admin-token": 200} {
		if st, _ := do("GET", "/metrics", tok, nil); st != want {
			t.Errorf("/metrics with %q: %d, want %d", tok, st, want)
		}
	}
	for _, c := range []struct {
		token, endpoint string
		want            int
	}{
		{"plain-admin-token", "http://10.0.0.1/", 403},       // private: nobody, from the file
		{"plain-recorder-token", "http://10.9.1.1/", 201},    // --webhook-allow wins over the file's allow
		{"plain-recorder-token", "http://10.8.1.1/", 403},    // the file's allow, replaced by the flag
		{"plain-recorder-token", "http://127.0.0.1:9/", 201}, // loopback: everyone, the default
	} {
		st, body := do("PUT", "/v1/subscriptions/s"+strings.NewReplacer(".", "", ":", "", "/", "").Replace(c.endpoint),
			c.token, map[string]any{"filter": "recording.*", "endpoint": c.endpoint})
		if st != c.want {
			t.Errorf("%s's webhook to %s: %d %s, want %d", c.token, c.endpoint, st, body, c.want)
		}
	}
	err := Run(t.Context(), []string{"serve", "--store", "memory", "--webhook-private", "friends"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "friends") {
		t.Errorf("--webhook-private friends: %v (exit %d)", err, exitCode(err))
	}
}
