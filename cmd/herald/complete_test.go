package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// TestDynamicCompletion: the shell completes names and ids the server
// knows: subscriptions, dead letters, schemas and their versions, tokens.
func TestDynamicCompletion(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	h.status = 400 // every delivery is dead-lettered at once
	ts.run(t, "subs", "create", "notes", "--endpoint", h.srv.URL, "--filter", "a.*").ok(t)
	ts.run(t, "subs", "create", "alerts", "--endpoint", h.srv.URL, "--filter", "b.*").ok(t)
	schema := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(schema, []byte(`{"type":"object"}`), 0o600)
	ts.run(t, "schemas", "put", "a.b", "2", schema).ok(t)
	ts.publish(t, &herald.Event{ID: "dead-1", Name: "a.b", Data: json.RawMessage(`{}`), Version: 2})
	var dlID string
	testwait.For(t, "the dead letter", func() bool {
		dls, err := ts.bus.DeadLetters(t.Context(), herald.DeadLetterQuery{})
		if err == nil && len(dls) > 0 {
			dlID = dls[0].ID
		}
		return dlID != ""
	})
	complete := func(args ...string) []string {
		t.Helper()
		r := ts.run(t, append([]string{"__complete"}, args...)...).ok(t)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") && l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"subs", "show", ""}, "alerts,notes"},
		{[]string{"subs", "rm", "n"}, "notes"},
		{[]string{"subs", "replay", ""}, "alerts,notes"},
		{[]string{"dlq", "drop", ""}, dlID},
		{[]string{"dlq", "ls", "--subscription", ""}, "alerts,notes"},
		{[]string{"schemas", "get", ""}, "a.b"},
		{[]string{"schemas", "get", "a.b", ""}, "2"},
		{[]string{"subs", "show", "notes", ""}, ""},
	} {
		if got := strings.Join(complete(c.args...), ","); got != c.want {
			t.Errorf("complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	// No server: nothing, and no error.
	var none *testServer
	r := none.run(t, "__complete", "subs", "show", "")
	if r.err != nil || strings.Contains(r.stdout, "cannot reach") {
		t.Errorf("without a server: %v %q", r.err, r.stdout)
	}
}

func TestTokenCompletion(t *testing.T) {
	ts := startServer(t, withAdmin())
	ts.run(t, "--token", adminSecret, "tokens", "create", "--identity", "rec", "--publish", "a.>").ok(t)
	toks, err := (func() ([]string, error) {
		r := ts.run(t, "--token", adminSecret, "__complete", "tokens", "revoke", "")
		return strings.Split(strings.TrimSpace(r.stdout), "\n"), r.err
	})()
	if err != nil || len(toks) != 2 || !strings.HasPrefix(toks[0], "tok_") || toks[1][0] != ':' {
		t.Errorf("tokens revoke completion (the configured token is not offered): %q %v", toks, err)
	}
}
