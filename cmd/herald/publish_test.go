package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

func TestPublish(t *testing.T) {
	ts := startServer(t)
	r := ts.run(t, "publish", "recording.ended", "--data", `{"recording_id":"r1"}`, "--subject", "recording/r1",
		"--id", "ev-1", "--priority", "high", "--meta", "trace=abc").ok(t)
	if !strings.HasPrefix(r.stdout, "published recording.ended at position 1 (id ev-1)") {
		t.Fatalf("stdout %q", r.stdout)
	}
	e, err := ts.bus.Get(context.Background(), "ev-1")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Data) != `{"recording_id":"r1"}` || e.Subject != "recording/r1" || e.Priority != herald.PriorityHigh || e.Metadata["trace"] != "abc" {
		t.Errorf("stored %+v", e)
	}

	// The same id again: stored once, said so.
	r = ts.run(t, "publish", "recording.ended", "--id", "ev-1", "--data", `{"recording_id":"r1"}`, "--subject", "recording/r1").ok(t)
	if !strings.HasPrefix(r.stdout, "already stored: recording.ended at position 1") {
		t.Errorf("duplicate: stdout %q", r.stdout)
	}

	// Data from a file and from standard input, result as JSON.
	file := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = ts.run(t, "publish", "a.file", "--data", "@"+file, "--json").ok(t)
	var res client.PublishResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Position != 2 || res.ID == "" {
		t.Fatalf("--json: %q (%v)", r.stdout, err)
	}
	if e, _ := ts.bus.Get(context.Background(), res.ID); e == nil || string(e.Data) != `{"from":"file"}` {
		t.Errorf("@file data not stored: %+v", e)
	}
	ts.runIn(t, `{"from":"stdin"}`, "publish", "a.stdin", "--data", "-").ok(t)
	r = ts.run(t, "events", "--name", "a.stdin", "--json").ok(t)
	if !strings.Contains(r.stdout, `"data":{"from":"stdin"}`) {
		t.Errorf("stdin data not stored: %s", r.stdout)
	}
}

func TestPublishExpectVersion(t *testing.T) {
	ts := startServer(t)
	ts.run(t, "publish", "order.placed", "--subject", "order/7", "--expect-version", "0").ok(t)
	r := ts.run(t, "publish", "order.paid", "--subject", "order/7", "--expect-version", "0")
	if !errors.Is(r.err, herald.ErrConflict) {
		t.Fatalf("stale version: %v", r.err)
	}
	if !strings.Contains(r.err.Error(), "retry with its current version") || exitCode(r.err) != 1 {
		t.Errorf("conflict said as %q (exit %d)", r.err, exitCode(r.err))
	}
	ts.run(t, "publish", "order.paid", "--subject", "order/7", "--expect-version", "1").ok(t)
	r = ts.run(t, "publish", "order.paid", "--expect-version", "1")
	if exitCode(r.err) != 2 || !strings.Contains(r.err.Error(), "--subject") {
		t.Errorf("--expect-version without --subject: %v", r.err)
	}
}

func TestPublishRejected(t *testing.T) {
	ts := startServer(t)
	r := ts.run(t, "publish", "Bad Name!", "--data", "{}")
	if !errors.Is(r.err, herald.ErrInvalidEvent) || exitCode(r.err) != 1 {
		t.Fatalf("bad name: %v", r.err)
	}
	if strings.Contains(r.err.Error(), "\n") || !strings.Contains(r.err.Error(), "name") {
		t.Errorf("bad name said as %q", r.err)
	}
	r = ts.run(t, "publish", "a.b", "--data", `[1,2]`)
	if !errors.Is(r.err, herald.ErrInvalidEvent) {
		t.Errorf("array data: %v", r.err)
	}
	for _, bad := range [][]string{
		{"publish"},
		{"publish", "a.b", "--data", "{not json"},
		{"publish", "a.b", "--priority", "urgent"},
		{"publish", "a.b", "--data", "@/no/such/file"},
		{"publish", "a.b", "--no-such-flag"},
	} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: exit %d (%v), want 2", bad, exitCode(r.err), r.err)
		}
	}
	if n, _ := ts.bus.Head(context.Background()); n != 0 {
		t.Errorf("rejected publishes stored %d events", n)
	}
}

func TestPublishUnreachable(t *testing.T) {
	var ts *testServer // no server: the CLI talks to a closed port
	r := ts.run(t, "publish", "a.b")
	if r.err == nil || exitCode(r.err) != 1 {
		t.Fatalf("unreachable server: %v", r.err)
	}
	want := "cannot reach http://127.0.0.1:1: is `herald serve` running?"
	if !strings.HasPrefix(r.err.Error(), want) {
		t.Errorf("said %q, want it to start with %q", r.err, want)
	}
}

// TestPublishOutcomeUnknown: when the server cannot tell whether it stored
// the event, herald publish says so, not "server busy", and names the id
// it chose before sending, to publish again with.
func TestPublishOutcomeUnknown(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e api.Event
		json.NewDecoder(r.Body).Decode(&e)
		mu.Lock()
		sent = append(sent, e.ID)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(api.Status(api.CodeOutcomeUnknown))
		json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeOutcomeUnknown,
			Message: "the outcome is unknown: the event may be stored; retry with the same id"}})
	}))
	defer hs.Close()
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"--server", hs.URL, "publish", "a.b"}, strings.NewReader(""), &out, &errb)
	if !errors.Is(err, herald.ErrOutcomeUnknown) {
		t.Fatalf("error %v, want ErrOutcomeUnknown", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || sent[0] == "" {
		t.Fatalf("the server got ids %q, want one chosen by the CLI", sent)
	}
	msg := err.Error()
	if strings.Contains(msg, "busy") || !strings.Contains(msg, "--id "+sent[0]) {
		t.Errorf("message %q: want no \"busy\" and the way to retry with --id %s", msg, sent[0])
	}
}

// TestPublishOneEventErrors: an error about a single publish does not talk
// of "event 0" or of a batch.
func TestPublishOneEventErrors(t *testing.T) {
	ts := startServer(t)
	r := ts.run(t, "publish", "a.b", "--data", "[1]")
	if r.err == nil || strings.Contains(r.err.Error(), "event 0") || strings.Contains(r.err.Error(), "batch") {
		t.Errorf("single publish error: %v", r.err)
	}
}

// TestPublishDataVersion: --version sets the data's (schema) version.
func TestPublishDataVersion(t *testing.T) {
	ts := startServer(t)
	ts.run(t, "publish", "a.b", "--id", "v2", "--version", "2").ok(t)
	e, err := ts.bus.Get(t.Context(), "v2")
	if err != nil || e.Version != 2 {
		t.Fatalf("stored version: %v %+v", err, e)
	}
	if r := ts.run(t, "publish", "a.b", "--version", "0"); exitCode(r.err) != 2 {
		t.Errorf("--version 0: %v", r.err)
	}
}
