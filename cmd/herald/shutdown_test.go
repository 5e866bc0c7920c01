package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A graceful stop that runs out of time (a webhook that never answers)
// returns an error — herald exits non-zero — that says what was left.
func TestServeStopTimeoutSaysWhatWasLeft(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	defer close(release)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	os.WriteFile(cfg, []byte("subscriptions:\n  - name: stuck\n    filter: \">\"\n    endpoint: "+hook.URL+"\n    timeout: 1m\n"), 0o600)
	p := startServe(t, "--addr", "127.0.0.1:0", "--store", "memory", "--config", cfg, "--shutdown-timeout", "300ms")
	if st, b := post(t, p.url+"/v1/events", "", map[string]any{"name": "a.b", "data": map[string]any{}}); st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivery never arrived")
	}
	err := p.stop(t)
	if err == nil {
		t.Fatal("a stop that timed out returned no error (exit 0)")
	}
	if exitCode(err) == 0 || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("exit %d, error %q: want non-zero and the subscription whose delivery was left", exitCode(err), err)
	}
}
