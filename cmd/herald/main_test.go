package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/server"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(attackerEnv); cfg != "" {
		os.Exit(runAttackers(cfg)) // the attackers of TestAbuse
	}
	leakcheck.Main(m)
}

// testServer is a real herald server (server.New over a Bus on the memory
// store) on a loopback port.
type testServer struct {
	URL string
	bus *herald.Bus
	hs  *httptest.Server
}

// adminSecret is the token of the admin a server started with tokens has.
const adminSecret = "hrld_test-admin-secret"

func startServer(t *testing.T, opts ...server.Option) *testServer {
	t.Helper()
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]server.Option{server.WithHeartbeat(200 * time.Millisecond)}, opts...)
	srv, err := server.New(bus, opts...)
	if err != nil {
		bus.Close(context.Background())
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.EndStreams()
		hs.Close()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus close: %v", err)
		}
	})
	return &testServer{URL: hs.URL, bus: bus, hs: hs}
}

// withAdmin gives the server one admin token, adminSecret.
func withAdmin() server.Option {
	return server.WithTokens([]server.Token{{ID: "tok_admin", Identity: "ops", Admin: true, Hash: server.HashToken(adminSecret)}})
}

// result is what one CLI run printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// run runs the CLI against ts with args.
func (ts *testServer) run(t *testing.T, args ...string) result {
	t.Helper()
	return ts.runIn(t, "", args...)
}

// runIn runs the CLI against ts with args and stdin.
func (ts *testServer) runIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	url := "http://127.0.0.1:1"
	if ts != nil {
		url = ts.URL
	}
	err := Run(ctx, append([]string{"--server", url}, args...), strings.NewReader(stdin), &out, &errb)
	return result{out.String(), errb.String(), err}
}

// ok fails the test when the run failed.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("run failed: %v\nstdout: %s\nstderr: %s", r.err, r.stdout, r.stderr)
	}
	return r
}

// publish publishes an event through the bus and returns it.
func (ts *testServer) publish(t *testing.T, e *herald.Event) *herald.Event {
	t.Helper()
	if _, err := ts.bus.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e
}
