package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestExport(t *testing.T) {
	ts := startServer(t)
	for i := range 1205 { // more than one page
		name := "a.even"
		if i%2 == 1 {
			name = "a.odd"
		}
		ts.publish(t, &herald.Event{Name: name, Data: json.RawMessage(`{"i":` + itoa(i) + `}`)})
	}
	r := ts.run(t, "export").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1205 || r.stderr != "exported 1205 events\n" {
		t.Fatalf("export: %d lines, stderr %q", len(lines), r.stderr)
	}
	for i, l := range lines {
		var e herald.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Position != uint64(i+1) {
			t.Fatalf("line %d: %v %q", i, err, l)
		}
	}
	out := filepath.Join(t.TempDir(), "odd.jsonl")
	r = ts.run(t, "export", "--name", "a.odd", "--after", "1000", "-o", out).ok(t)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 102 || r.stdout != "" {
		t.Errorf("filtered export: %d lines, stdout %q", n, r.stdout)
	}
	if !strings.Contains(string(b), `"name":"a.odd"`) || strings.Contains(string(b), `"name":"a.even"`) {
		t.Errorf("filtered export holds the wrong events")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
