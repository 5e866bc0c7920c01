package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

func TestEvents(t *testing.T) {
	ts := startServer(t)
	for i := range 5 {
		name := "recording.ended"
		if i%2 == 1 {
			name = "transcript.ready"
		}
		ts.publish(t, &herald.Event{ID: "ev-" + string(rune('a'+i)), Name: name, Subject: "recording/r" + string(rune('0'+i)), Data: json.RawMessage(`{}`)})
	}
	r := ts.run(t, "events").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "POSITION") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[1]); f[0] != "1" || f[3] != "recording.ended" || f[4] != "recording/r0" || f[5] != "ev-a" {
		t.Errorf("first row %q", lines[1])
	}

	r = ts.run(t, "events", "--name", "transcript.*", "--json").ok(t)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e herald.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		got = append(got, e.ID)
	}
	if strings.Join(got, ",") != "ev-b,ev-d" {
		t.Errorf("--name transcript.*: %v", got)
	}

	r = ts.run(t, "events", "--limit", "2", "--after", "1").ok(t)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 2 {
		t.Errorf("--limit 2 printed %d rows:\n%s", n, r.stdout)
	}
	if !strings.Contains(r.stderr, "--after 3") {
		t.Errorf("--limit 2 hint %q", r.stderr)
	}

	r = ts.run(t, "events", "--subject", "recording/r4", "--json").ok(t)
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"id":"ev-e"`) {
		t.Errorf("--subject: %s", r.stdout)
	}
	r = ts.run(t, "events", "--since", "1h", "--until", time.Now().Add(time.Hour).Format(time.RFC3339), "--limit", "0").ok(t)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 5 {
		t.Errorf("--since 1h printed %d rows", n)
	}
	r = ts.run(t, "events", "--name", "none.such").ok(t)
	if r.stdout != "" || !strings.Contains(r.stderr, "no events match") {
		t.Errorf("empty: %q", r.stderr)
	}
	var none *testServer
	if r := none.run(t, "events"); r.stdout != "" || r.err == nil {
		t.Errorf("unreachable: printed %q (%v)", r.stdout, r.err)
	}
	for _, bad := range [][]string{{"events", "--since", "yesterday"}, {"events", "--name", "A B"}, {"events", "extra"}} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}
}
