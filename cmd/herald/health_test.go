package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	ts := startServer(t, withAdmin()) // /healthz needs no token
	if r := ts.run(t, "health").ok(t); r.stdout != "healthy\n" {
		t.Errorf("health said %q", r.stdout)
	}

	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			t.Errorf("asked %s", r.URL.Path)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	r := (&testServer{URL: sick.URL}).run(t, "health")
	if exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "503") {
		t.Errorf("a 503: %v", r.err)
	}

	r = (*testServer)(nil).run(t, "health", "--timeout", "2s") // nothing listens on port 1
	if exitCode(r.err) != 1 || r.stdout != "" {
		t.Errorf("nothing listening: %v %q", r.err, r.stdout)
	}
	if r := ts.run(t, "health", "extra"); exitCode(r.err) != 2 {
		t.Errorf("an argument: %v", r.err)
	}
}
