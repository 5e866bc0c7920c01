package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func TestTokens(t *testing.T) {
	ts := startServer(t, withAdmin())
	admin := []string{"--token", adminSecret}
	r := ts.run(t, append(admin, "tokens", "create", "--identity", "transcriber", "--publish", "transcript.>",
		"--subscribe", "recording.>,transcript.>", "--rate", "50", "--burst", "100")...).ok(t)
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "hrld_") || strings.Contains(secret, "\n") || !strings.Contains(r.stderr, "for transcriber") {
		t.Fatalf("create: stdout %q stderr %q", r.stdout, r.stderr)
	}

	// The new token publishes what it may, as itself, and nothing else.
	t.Setenv("HERALD_TOKEN", secret)
	ts.run(t, "publish", "transcript.ready", "--id", "t1").ok(t)
	r = ts.run(t, "publish", "recording.ended")
	if !errors.Is(r.err, herald.ErrForbidden) || !strings.HasPrefix(r.err.Error(), "forbidden: ") {
		t.Errorf("forbidden name: %v", r.err)
	}
	r = ts.run(t, "tail", ">")
	if !errors.Is(r.err, herald.ErrForbidden) || strings.Count(r.err.Error(), "ask") != 1 {
		t.Errorf("tail of every name: %v", r.err)
	}
	// With no pattern, events and tail show what the token may read.
	ts.run(t, append(admin, "publish", "billing.paid")...).ok(t)
	if out := ts.run(t, "events", "--json").ok(t).stdout; !strings.Contains(out, `"transcript.ready"`) || strings.Contains(out, "billing") {
		t.Errorf("events with no pattern: %s", out)
	}
	if out := ts.run(t, "tail", "--after", "0", "--count", "1", "--json").ok(t).stdout; !strings.Contains(out, `"transcript.ready"`) {
		t.Errorf("tail with no pattern: %s", out)
	}
	ev := ts.run(t, "events", "--name", "transcript.>", "--json").ok(t).stdout
	if !strings.Contains(ev, `"source_plugin":"transcriber"`) {
		t.Errorf("source_plugin is not the identity: %s", ev)
	}
	t.Setenv("HERALD_TOKEN", "")

	r = ts.run(t, append(admin, "tokens", "ls", "--json")...).ok(t)
	var list []client.Token
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls --json: %v %s", err, r.stdout)
	}
	var id string
	for _, tk := range list {
		if tk.Identity == "transcriber" {
			id = tk.ID
			if tk.Rate != 50 || tk.Burst != 100 || len(tk.Subscribe) != 2 {
				t.Errorf("listed %+v", tk)
			}
		}
	}
	r = ts.run(t, append(admin, "tokens", "ls")...).ok(t)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "transcript.>") || strings.Contains(r.stdout, secret) {
		t.Errorf("ls:\n%s", r.stdout)
	}

	ts.run(t, append(admin, "tokens", "revoke", id)...).ok(t)
	r = ts.run(t, "--token", secret, "publish", "transcript.ready")
	if !errors.Is(r.err, herald.ErrUnauthorized) {
		t.Errorf("revoked token: %v", r.err)
	}
	if r := ts.run(t, append(admin, "tokens", "revoke", id)...); !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("revoke twice: %v", r.err)
	}
	if r := ts.run(t, "--token", secret, "tokens", "ls"); !errors.Is(r.err, herald.ErrUnauthorized) {
		t.Errorf("ls with a revoked token: %v", r.err)
	}
	for _, bad := range [][]string{{"tokens", "create"}, {"tokens", "create", "--identity", "x", "--publish", "Bad P"}, {"tokens", "revoke"}} {
		if r := ts.run(t, append(admin, bad...)...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}
}
