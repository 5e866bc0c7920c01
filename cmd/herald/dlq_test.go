package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

func TestDLQ(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	h.set(http.StatusBadRequest) // permanent: straight to the dead-letter queue
	ts.run(t, "subs", "create", "hooks", "--filter", "hook.*", "--endpoint", h.srv.URL, "--backoff-initial", "10ms").ok(t)
	ts.run(t, "publish", "hook.a", "--id", "a").ok(t)
	ts.run(t, "publish", "hook.b", "--id", "b").ok(t)
	var out string
	testwait.For(t, "two dead letters", func() bool {
		out = ts.run(t, "dlq", "ls", "--subscription", "hooks").ok(t).stdout
		return strings.Count(out, "\n") == 3
	})
	if !strings.Contains(out, "hook.a #1") || !strings.Contains(out, "(permanent)") {
		t.Errorf("ls:\n%s", out)
	}
	idA := herald.DeadLetterID("hooks", "a")
	idB := herald.DeadLetterID("hooks", "b")
	if !strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Fatalf("ls lacks the entries' ids:\n%s", out)
	}

	// Drop one; redrive the rest once the endpoint is fixed.
	r := ts.run(t, "dlq", "drop", idB).ok(t)
	if r.stdout != "dropped "+idB+"\n" {
		t.Errorf("drop said %q", r.stdout)
	}
	h.set(http.StatusOK)
	r = ts.run(t, "dlq", "redrive", "--subscription", "hooks").ok(t)
	if r.stdout != "redriving 1 dead letter\n" {
		t.Errorf("redrive said %q", r.stdout)
	}
	testwait.For(t, "the redriven delivery", func() bool { return len(h.delivered()) == 1 })
	testwait.For(t, "an empty queue", func() bool {
		return strings.Contains(ts.run(t, "dlq", "ls").ok(t).stderr, "empty")
	})
	if d := h.delivered(); d[0] != "a" {
		t.Errorf("delivered %v", d)
	}

	r = ts.run(t, "dlq", "redrive", "no-such-entry")
	if !errors.Is(r.err, herald.ErrNotFound) || !strings.Contains(r.stderr, "no dead letter no-such-entry") {
		t.Errorf("redrive of nothing: %v / %q", r.err, r.stderr)
	}
	if r := ts.run(t, "dlq", "drop", "nope"); !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("drop of nothing: %v", r.err)
	}
	for _, bad := range [][]string{{"dlq", "redrive"}, {"dlq", "redrive", "x", "--all"}, {"dlq", "redrive", "x", "--subscription", "s"}, {"dlq", "drop"}, {"dlq", "ls", "x"}} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}
}

func TestDLQNeedsAdmin(t *testing.T) {
	ts := startServer(t, withAdmin())
	r := ts.run(t, "dlq", "ls")
	if !errors.Is(r.err, herald.ErrUnauthorized) || !strings.Contains(r.err.Error(), "--token or HERALD_TOKEN") {
		t.Errorf("no token: %v", r.err)
	}
	ts.run(t, "--token", adminSecret, "dlq", "ls").ok(t)
	secret := ts.run(t, "--token", adminSecret, "tokens", "create", "--identity", "plugin", "--publish", "a.>").ok(t).stdout
	r = ts.run(t, "--token", strings.TrimSpace(secret), "dlq", "ls")
	if !errors.Is(r.err, herald.ErrForbidden) || !strings.Contains(r.err.Error(), "more rights") {
		t.Errorf("plugin token: %v", r.err)
	}
}

// subs ls's DEAD column counts the dead letters waiting, the same entries
// dlq ls lists: it falls to zero once a redrive delivers them.
func TestSubsListDeadMatchesDLQAfterRedrive(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	h.set(http.StatusBadRequest)
	ts.run(t, "subs", "create", "hooks", "--filter", "hook.*", "--endpoint", h.srv.URL, "--backoff-initial", "10ms").ok(t)
	for _, id := range []string{"a", "b", "c"} {
		ts.run(t, "publish", "hook."+id, "--id", id).ok(t)
	}
	testwait.For(t, "three dead letters", func() bool {
		return strings.Count(ts.run(t, "dlq", "ls", "--subscription", "hooks").ok(t).stdout, "\n") == 4
	})
	dead := func() string {
		out := ts.run(t, "subs", "ls").ok(t).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("subs ls:\n%s", out)
		}
		f := strings.Fields(lines[1])
		return f[len(f)-1]
	}
	if d := dead(); d != "3" {
		t.Errorf("DEAD before the redrive = %s, want 3", d)
	}
	h.set(http.StatusOK)
	ts.run(t, "dlq", "redrive", "--subscription", "hooks").ok(t)
	testwait.For(t, "an empty queue", func() bool {
		return strings.Contains(ts.run(t, "dlq", "ls").ok(t).stderr, "empty")
	})
	if d := dead(); d != "0" {
		t.Errorf("DEAD after a redrive that delivered everything = %s, want 0 (dlq ls is empty)", d)
	}
}
