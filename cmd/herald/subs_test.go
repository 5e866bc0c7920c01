package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/testwait"
)

// hook is a webhook receiver that records the ids it was sent and answers
// with status (200 by default).
type hook struct {
	mu     sync.Mutex
	status int
	ids    []string
	srv    *httptest.Server
}

func newHook(t *testing.T) *hook {
	h := &hook{status: http.StatusOK}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		st := h.status
		if st < 300 {
			h.ids = append(h.ids, r.Header.Get("Ce-Id"))
		}
		h.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) set(status int) {
	h.mu.Lock()
	h.status = status
	h.mu.Unlock()
}

func (h *hook) delivered() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...)
}

func TestSubs(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	r := ts.run(t, "subs", "create", "hooks", "--filter", "hook.*", "--endpoint", h.srv.URL,
		"--max-attempts", "2", "--backoff-initial", "10ms", "--backoff-max", "50ms", "--timeout", "2s", "--start", "earliest").ok(t)
	if !strings.Contains(r.stdout, "subscription hooks: hook.* → "+h.srv.URL) || !strings.Contains(r.stdout, "secret (shown once") {
		t.Errorf("create said %q", r.stdout)
	}
	ts.run(t, "publish", "hook.one", "--id", "h1").ok(t)
	ts.run(t, "publish", "other.one").ok(t)
	testwait.For(t, "the delivery", func() bool { return len(h.delivered()) == 1 })

	r = ts.run(t, "subs", "ls").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "hooks") || !strings.Contains(lines[1], "hook.*") {
		t.Fatalf("ls:\n%s", r.stdout)
	}
	r = ts.run(t, "subs", "show", "hooks").ok(t)
	var s client.Subscription
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Name != "hooks" || s.MaxAttempts != 2 || s.Secret != "" || !s.SecretSet {
		t.Errorf("show: %v %+v", err, s)
	}

	// Replay from the start: h1 is delivered again.
	ts.run(t, "subs", "replay", "hooks", "--position", "0").ok(t)
	testwait.For(t, "the replayed delivery", func() bool { return len(h.delivered()) == 2 })
	if d := h.delivered(); d[0] != "h1" || d[1] != "h1" {
		t.Errorf("delivered %v", d)
	}
	ts.run(t, "subs", "replay", "hooks", "--ago", "1h").ok(t)
	for _, bad := range [][]string{
		{"subs", "replay", "hooks"},
		{"subs", "replay", "hooks", "--position", "1", "--ago", "1h"},
		{"subs", "replay", "hooks", "--time", "noon"},
		{"subs", "create", "x"},
		{"subs", "create", "x", "--endpoint", h.srv.URL, "--filter", "Bad Pattern"},
	} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}

	ts.run(t, "subs", "rm", "hooks").ok(t)
	r = ts.run(t, "subs", "show", "hooks")
	if !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("show after rm: %v", r.err)
	}
	r = ts.run(t, "subs", "ls").ok(t)
	if r.stdout != "" || !strings.Contains(r.stderr, "no push subscriptions") {
		t.Errorf("ls after rm: %q %q", r.stdout, r.stderr)
	}
	if r := ts.run(t, "subs", "rm", "hooks"); !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("rm twice: %v", r.err)
	}
}

// TestSubsCreateRefusesExisting: create on an existing name used to
// redefine it silently (a filter of recording.* widened to >). It now
// refuses without --replace, and update changes only the flags given.
func TestSubsCreateRefusesExisting(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	ts.run(t, "subs", "create", "notes", "--filter", "recording.*", "--endpoint", h.srv.URL, "--max-attempts", "3").ok(t)
	r := ts.run(t, "subs", "create", "notes", "--endpoint", h.srv.URL)
	if !errors.Is(r.err, herald.ErrConflict) || !strings.Contains(r.err.Error(), "--replace") || !strings.Contains(r.err.Error(), "subs update") {
		t.Fatalf("create on an existing name: %v", r.err)
	}
	show := func() client.Subscription {
		var s client.Subscription
		if err := json.Unmarshal([]byte(ts.run(t, "subs", "show", "notes").ok(t).stdout), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := show(); s.Filter != "recording.*" || s.MaxAttempts != 3 {
		t.Fatalf("a refused create changed the subscription: %+v", s)
	}
	// update: only --concurrency changes.
	r = ts.run(t, "subs", "update", "notes", "--concurrency", "4").ok(t)
	if s := show(); s.Filter != "recording.*" || s.MaxAttempts != 3 || s.Concurrency != 4 || s.Endpoint != h.srv.URL {
		t.Fatalf("update changed more than --concurrency: %+v", s)
	}
	if r := ts.run(t, "subs", "update", "nope", "--concurrency", "2"); !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("update of a missing subscription: %v", r.err)
	}
	if r := ts.run(t, "subs", "update", "notes"); exitCode(r.err) != 2 {
		t.Errorf("update with no flag: %v", r.err)
	}
	// --replace redefines it: unset flags take the defaults again.
	ts.run(t, "subs", "create", "notes", "--endpoint", h.srv.URL, "--replace").ok(t)
	if s := show(); s.Filter != ">" || s.MaxAttempts == 3 {
		t.Fatalf("replace kept the old definition: %+v", s)
	}
}

// TestSubsReplaySaysWhere: replay prints the position it moved to.
func TestSubsReplaySaysWhere(t *testing.T) {
	ts := startServer(t)
	h := newHook(t)
	ts.run(t, "subs", "create", "s", "--endpoint", h.srv.URL).ok(t)
	for range 3 {
		ts.run(t, "publish", "a.b").ok(t)
	}
	r := ts.run(t, "subs", "replay", "s", "--position", "2").ok(t)
	if !strings.Contains(r.stdout, "after position 1") {
		t.Errorf("replay said %q", r.stdout)
	}
}
