package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/heraldhq/herald/internal/testlog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

func TestTailFollowsLive(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "recording.old", Data: json.RawMessage(`{}`)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testlog.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--server", ts.URL, "tail", "recording.>"}, strings.NewReader(""), &out, &bytes.Buffer{})
	}()
	// tail is live: publish until it shows, since it may not be connected yet.
	testwait.For(t, "tail to print a live event", func() bool {
		ts.publish(t, &herald.Event{Name: "recording.ended", Subject: "recording/r1", Data: json.RawMessage(`{"id":"r1"}`)})
		ts.publish(t, &herald.Event{Name: "other.thing", Data: json.RawMessage(`{}`)})
		return strings.Contains(out.String(), "recording.ended")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not stop when cancelled")
	}
	got := out.String()
	if strings.Contains(got, "recording.old") || strings.Contains(got, "other.thing") {
		t.Errorf("tail printed what it should not:\n%s", got)
	}
	line := strings.SplitN(got, "\n", 2)[0]
	if !strings.Contains(line, "recording/r1") || !strings.Contains(line, `{"id":"r1"}`) || strings.Contains(line, "\x1b[") {
		t.Errorf("line %q: want subject, data, no colour", line)
	}
}

func TestTailAfterJSONAndCount(t *testing.T) {
	ts := startServer(t)
	for i := range 5 {
		ts.publish(t, &herald.Event{Name: "n.e", Data: json.RawMessage(`{"i":` + string(rune('0'+i)) + `}`)})
	}
	r := ts.run(t, "tail", "--after", "2", "--count", "3", "--json").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), r.stdout)
	}
	for i, l := range lines {
		var e herald.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Position != uint64(i+3) {
			t.Errorf("line %d: %q (%v)", i, l, err)
		}
	}
	// Colour on demand, with the same content.
	r = ts.run(t, "--color", "always", "tail", "--after", "0", "--count", "1").ok(t)
	if !strings.Contains(r.stdout, "\x1b[") || !strings.Contains(r.stdout, "n.e") {
		t.Errorf("--color always: %q", r.stdout)
	}
	t.Setenv("NO_COLOR", "1")
	r = ts.run(t, "tail", "--after", "0", "--count", "1").ok(t)
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("NO_COLOR: %q", r.stdout)
	}
}

func TestTailRejects(t *testing.T) {
	ts := startServer(t)
	if r := ts.run(t, "tail", "Not A Pattern"); exitCode(r.err) != 2 {
		t.Errorf("bad pattern: %v", r.err)
	}
	if r := ts.run(t, "tail", "a", "b"); exitCode(r.err) != 2 {
		t.Errorf("two patterns: %v", r.err)
	}
}

func TestTailResumesAfterDrop(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut testlog.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--server", ts.URL, "tail", "--after", "0", "--count", "60", "--json"}, strings.NewReader(""), &out, &errOut)
	}()
	for i := range 60 {
		ts.publish(t, &herald.Event{Name: "d.e", Data: json.RawMessage(`{}`)})
		if i%10 == 5 {
			testwait.For(t, "the stream to catch up", func() bool { return strings.Count(out.String(), "\n") > i-3 })
			ts.hs.CloseClientConnections()
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines {
		var e herald.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Position != uint64(i+1) {
			t.Fatalf("line %d: %q (%v): an event was missed or repeated", i, l, err)
		}
	}
	if len(lines) != 60 || !strings.Contains(errOut.String(), "reconnecting") {
		t.Errorf("%d lines; stderr %q", len(lines), errOut.String())
	}
}

// TestTailColumns: tail aligns its columns across events, and says what a
// priority is rather than a bare "!high".
func TestTailColumns(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "a.b", Subject: "s/1", Data: json.RawMessage(`{"i":1}`)})
	ts.publish(t, &herald.Event{Name: "recording.completed", Subject: "recording/12345", Priority: herald.PriorityHigh, Data: json.RawMessage(`{"i":2}`)})
	ts.publish(t, &herald.Event{Name: "c.d", Subject: "s/2", Data: json.RawMessage(`{"i":3}`)})
	r := ts.run(t, "tail", "--after", "0", "--count", "3", "--color", "never").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("tail:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "!high") || !strings.Contains(lines[1], "priority high") {
		t.Errorf("priority not explained:\n%s", r.stdout)
	}
	// Every event of a page lines up: the data starts in one column.
	col := strings.Index(lines[0], `{"i":1}`)
	for i, l := range lines {
		if c := strings.Index(l, `{"i":`); c != col {
			t.Errorf("line %d: data at column %d, line 0 at %d:\n%s", i, c, col, r.stdout)
		}
	}
}
