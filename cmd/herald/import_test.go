package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestImport(t *testing.T) {
	src := startServer(t)
	for i := range 30 {
		src.publish(t, &herald.Event{Name: "a.b", Subject: "s/" + itoa(i%3), Data: json.RawMessage(`{"i":` + itoa(i) + `}`)})
	}
	file := filepath.Join(t.TempDir(), "events.jsonl")
	dump := src.run(t, "export").ok(t).stdout
	if err := os.WriteFile(file, []byte(dump+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	dst := startServer(t)
	dst.publish(t, &herald.Event{Name: "already.here", Data: json.RawMessage(`{}`)})
	r := dst.run(t, "import", file, "--batch", "7").ok(t)
	if r.stderr != "imported 30 events: 30 stored, 0 already present\n" {
		t.Errorf("import said %q", r.stderr)
	}
	// Idempotent by id: a second run stores nothing.
	r = dst.runIn(t, dump, "import", "-").ok(t)
	if r.stderr != "imported 30 events: 0 stored, 30 already present\n" {
		t.Errorf("second import said %q", r.stderr)
	}
	if head, _ := dst.bus.Head(context.Background()); head != 31 {
		t.Errorf("head %d after importing twice, want 31", head)
	}
	// The events kept their ids, data, subjects and correlation.
	first := strings.SplitN(dump, "\n", 2)[0]
	var e herald.Event
	json.Unmarshal([]byte(first), &e)
	got, err := dst.bus.Get(context.Background(), e.ID)
	if err != nil || string(got.Data) != string(e.Data) || got.Subject != e.Subject || got.CorrelationID != e.CorrelationID ||
		!got.Timestamp.Equal(e.Timestamp) || got.Position != 2 {
		t.Errorf("imported %+v (%v), exported %+v", got, err, e)
	}

	// A bad line stops the import and is named.
	r = dst.runIn(t, `{"name":"ok.one","data":{}}`+"\n"+`{"name":"Bad Name","data":{}}`+"\n", "import")
	if !errors.Is(r.err, herald.ErrInvalidEvent) || !strings.Contains(r.err.Error(), "line 2") {
		t.Errorf("bad event: %v", r.err)
	}
	r = dst.runIn(t, "not json\n", "import")
	if r.err == nil || !strings.Contains(r.err.Error(), "line 1") {
		t.Errorf("bad line: %v", r.err)
	}
	if r := dst.run(t, "import", filepath.Join(t.TempDir(), "missing")); r.err == nil {
		t.Error("a missing file imported")
	}
}
