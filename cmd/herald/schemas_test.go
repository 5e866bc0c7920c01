package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

const recordingSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"required":["recording_id"],"properties":{"recording_id":{"type":"string"},"duration":{"type":"number","minimum":0}}}`

func TestSchemas(t *testing.T) {
	ts := startServer(t)
	file := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(file, []byte(recordingSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ts.run(t, "schemas", "put", "recording.completed", "1", file).ok(t)
	if r.stdout != "registered the schema of recording.completed version 1\n" {
		t.Errorf("put said %q", r.stdout)
	}
	ts.runIn(t, `{"type":"object"}`, "schemas", "put", "recording.completed", "2", "-").ok(t)

	r = ts.run(t, "schemas", "get", "recording.completed", "1").ok(t)
	var got, want any
	json.Unmarshal([]byte(recordingSchema), &want)
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("get: %v\n%s", err, r.stdout)
	}
	if g, _ := json.Marshal(got); string(g) != mustJSON(want) {
		t.Errorf("get returned %s", r.stdout)
	}
	r = ts.run(t, "schemas", "ls").ok(t)
	if !strings.Contains(r.stdout, "recording.completed  1") || !strings.Contains(r.stdout, "recording.completed  2") {
		t.Errorf("ls:\n%s", r.stdout)
	}

	// The schema is enforced, and the CLI says which field is wrong.
	r = ts.run(t, "publish", "recording.completed", "--data", `{"recording_id":"r1","duration":-1}`)
	if !errors.Is(r.err, herald.ErrSchemaViolation) || !strings.Contains(r.err.Error(), "duration") {
		t.Errorf("violation: %v", r.err)
	}
	ts.run(t, "publish", "recording.completed", "--data", `{"recording_id":"r1","duration":3}`).ok(t)

	if r := ts.run(t, "schemas", "get", "recording.completed", "9"); !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("get missing: %v", r.err)
	}
	r = ts.runIn(t, `{"type":"nonsense-type"}`, "schemas", "put", "bad.schema", "1", "-")
	if !errors.Is(r.err, herald.ErrInvalidEvent) {
		t.Errorf("a schema that does not compile: %v", r.err)
	}
	for _, bad := range [][]string{{"schemas", "get", "x.y", "zero"}, {"schemas", "get", "Bad", "1"}, {"schemas", "put", "x.y", "1"},
		{"schemas", "put", "x.y", "1", filepath.Join(t.TempDir(), "missing.json")}} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}
	if r := ts.runIn(t, "{oops", "schemas", "put", "x.y", "1", "-"); exitCode(r.err) != 2 {
		t.Errorf("invalid JSON schema: %v", r.err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
