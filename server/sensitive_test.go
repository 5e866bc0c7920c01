package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/heraldhq/herald/internal/testlog"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/sqlite"
)

const (
	secretEmail    = "alice@example.com"
	customerSchema = `{"type":"object","properties":{"email":{"type":"string","x-sensitive":true},"plan":{"type":"string"}}}`
)

// sensitiveEnv is a real server on a loopback port over a bus on a SQLite
// file whose codec encrypts the fields schemas mark sensitive.
func sensitiveEnv(t *testing.T, opts ...server.Option) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	schemas := herald.NewSchemas()
	codec, err := sensitive.New(st, schemas)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithSchemas(schemas), herald.WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvBus(t, st, bus, append([]server.Option{server.WithCodec(codec)}, opts...)...)
}

func forgetPath(subject string) string { return "/v1/subjects/" + url.PathEscape(subject) + "/forget" }

// rawHolds reports whether any stored event's JSON, as the store holds it,
// contains s.
func rawHolds(t *testing.T, st herald.Store, s string) bool {
	t.Helper()
	for ev, err := range st.Read(context.Background(), 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// readStream reads n events from GET /v1/stream?after=0.
func readStream(t *testing.T, e *env, n int) []herald.Event {
	t.Helper()
	return readStreamThen(t, e, n, nil)
}

// readStreamThen is readStream that calls got(i) after the i-th event.
func readStreamThen(t *testing.T, e *env, n int, got func(int)) []herald.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/stream?after=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []herald.Event
	sc := bufio.NewScanner(resp.Body)
	for len(out) < n && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev herald.Event
			if err := json.Unmarshal([]byte(d), &ev); err != nil {
				t.Fatalf("stream frame: %v: %s", err, d)
			}
			out = append(out, ev)
			if got != nil {
				got(len(out))
			}
		}
	}
	if len(out) < n {
		t.Fatalf("stream gave %d events, want %d (%v)", len(out), n, sc.Err())
	}
	return out
}

func emailOf(t *testing.T, ev *herald.Event) any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("data %s: %v", ev.Data, err)
	}
	if d["plan"] != "pro" {
		t.Errorf("plan = %v, want pro (a field not sensitive stays)", d["plan"])
	}
	return d["email"]
}

func TestSensitiveFieldsEndToEnd(t *testing.T) {
	audit := &testlog.Buffer{}
	e := sensitiveEnv(t, server.WithAuditLogger(slog.New(slog.NewJSONHandler(audit, nil))))
	if a := e.do("PUT", "/v1/schemas/customer.created/1", customerSchema); a.status/100 != 2 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	hook := newReceiver(t, func(id, mode string, attempt int) int { return 200 })
	dead := newReceiver(t, func(id, mode string, attempt int) int { return 400 })
	for name, rc := range map[string]*receiver{"hook": hook, "dead": dead} {
		if a := e.do("PUT", "/v1/subscriptions/"+name, map[string]any{"filter": "customer.*", "endpoint": rc.ts.URL,
			"max_attempts": 1}); a.status != 201 {
			t.Fatalf("PUT subscription: %d %s", a.status, a.body)
		}
	}
	ev := map[string]any{"name": "customer.created", "subject": "customer/42", "correlation_id": "c42",
		"data": map[string]any{"email": secretEmail, "plan": "pro"}}
	id := e.publish(ev).Events[0].ID

	// Without a subject a sensitive value has no key: refused, nothing stored.
	if a := e.do("POST", "/v1/events", map[string]any{"name": "customer.created", "data": map[string]any{"email": "x@y"}}); a.status != 400 {
		t.Errorf("sensitive event without subject: %d %s", a.status, a.body)
	}

	if rawHolds(t, e.store, secretEmail) {
		t.Fatal("the store holds the sensitive value in clear")
	}
	if !rawHolds(t, e.store, `"$enc"`) {
		t.Fatal("the store holds no envelope")
	}

	testwait.For(t, "the webhook delivery and the dead letter", func() bool {
		_, ok := hook.counts(id)
		a := e.do("GET", "/v1/dlq", nil)
		return ok == 1 && bytes.Contains(a.body, []byte(id))
	})
	hook.mu.Lock()
	body := hook.bodies[id]
	hook.mu.Unlock()
	if !bytes.Contains(body, []byte(secretEmail)) {
		t.Errorf("webhook body lacks the decoded value: %s", body)
	}

	// Every reading endpoint returns the value in clear.
	check := func(want any) {
		t.Helper()
		var one herald.Event
		e.do("GET", "/v1/events/"+id, nil).json(t, &one)
		if got := emailOf(t, &one); got != want {
			t.Errorf("GET /v1/events/{id}: email = %v, want %v", got, want)
		}
		var list struct{ Events []*herald.Event }
		e.do("GET", "/v1/events?subject=customer/42", nil).json(t, &list)
		if len(list.Events) != 1 || emailOf(t, list.Events[0]) != want {
			t.Errorf("GET /v1/events: %+v", list.Events)
		}
		var tr herald.Trace
		e.do("GET", "/v1/correlations/c42", nil).json(t, &tr)
		if len(tr.Events) != 1 || emailOf(t, tr.Events[0].Event) != want {
			t.Errorf("GET /v1/correlations: %+v", tr.Events)
		}
		var dl struct {
			DeadLetters []herald.DeadLetter `json:"dead_letters"`
		}
		e.do("GET", "/v1/dlq", nil).json(t, &dl)
		if len(dl.DeadLetters) != 1 || emailOf(t, dl.DeadLetters[0].Event) != want {
			t.Errorf("GET /v1/dlq: %+v", dl.DeadLetters)
		}
		if s := readStream(t, e, 1); emailOf(t, &s[0]) != want {
			t.Errorf("GET /v1/stream: %s", s[0].Data)
		}
	}
	check(secretEmail)

	// A live stream (served from the hub) decodes too.
	streamed := make(chan []herald.Event, 1)
	caughtUp, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		streamed <- readStreamThen(t, e, 2, func(i int) {
			if i == 1 {
				close(caughtUp) // the stream has the log's one event: it waits for the next
			}
		})
	}()
	select {
	case <-caughtUp:
	case <-ended:
		t.Fatal("the stream ended before its first event")
	}
	ev["data"] = map[string]any{"email": secretEmail, "plan": "pro"}
	ev["correlation_id"] = "c43"
	e.publish(ev)
	if s := <-streamed; emailOf(t, &s[1]) != secretEmail {
		t.Errorf("live stream: %s", s[1].Data)
	}

	if a := e.do("POST", forgetPath("customer/42"), nil); a.status != http.StatusNoContent {
		t.Fatalf("forget: %d %s", a.status, a.body)
	}
	if !strings.Contains(audit.String(), `"subject.forget"`) || !strings.Contains(audit.String(), "customer/42") {
		t.Errorf("forget not audited: %s", audit.String())
	}
	e.do("DELETE", "/v1/subscriptions/hook", nil)
	var list struct{ Events []*herald.Event }
	e.do("GET", "/v1/events?subject=customer/42", nil).json(t, &list)
	if len(list.Events) != 2 {
		t.Fatalf("events after forget: %d", len(list.Events))
	}
	for _, ev := range list.Events {
		if got := emailOf(t, ev); got != nil {
			t.Errorf("email after forget = %v, want null", got)
		}
		if ev.Metadata[sensitive.ShreddedMetadata] == "" {
			t.Errorf("metadata lacks %s: %v", sensitive.ShreddedMetadata, ev.Metadata)
		}
	}
	var one herald.Event
	e.do("GET", "/v1/events/"+id, nil).json(t, &one)
	if got := emailOf(t, &one); got != nil {
		t.Errorf("GET one after forget: email = %v", got)
	}
	var tr herald.Trace
	e.do("GET", "/v1/correlations/c42", nil).json(t, &tr)
	if len(tr.Events) != 1 || emailOf(t, tr.Events[0].Event) != nil {
		t.Errorf("correlation after forget: %+v", tr.Events)
	}
	var dl struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	e.do("GET", "/v1/dlq", nil).json(t, &dl)
	if len(dl.DeadLetters) == 0 {
		t.Error("dlq after forget is empty")
	}
	for _, d := range dl.DeadLetters {
		if got := emailOf(t, d.Event); got != nil {
			t.Errorf("dlq after forget: email = %v", got)
		}
	}
	// Deleting a subscription discards its dead letters: only now.
	e.do("DELETE", "/v1/subscriptions/dead", nil)
	if s := readStream(t, e, 2); emailOf(t, &s[0]) != nil || emailOf(t, &s[1]) != nil {
		t.Errorf("stream after forget: %s %s", s[0].Data, s[1].Data)
	}
	// A webhook subscription made after the forget gets the old events
	// with the field null.
	late := newReceiver(t, func(id, mode string, attempt int) int { return 200 })
	if a := e.do("PUT", "/v1/subscriptions/late", map[string]any{"filter": "customer.*", "endpoint": late.ts.URL,
		"start": "earliest"}); a.status != 201 {
		t.Fatalf("PUT subscription: %d %s", a.status, a.body)
	}
	testwait.For(t, "the late delivery", func() bool { _, ok := late.counts(id); return ok == 1 })
	late.mu.Lock()
	lateBody := late.bodies[id]
	late.mu.Unlock()
	var d map[string]any
	if err := json.Unmarshal(lateBody, &d); err != nil || d["email"] != nil || d["plan"] != "pro" {
		t.Errorf("webhook body after forget: %s (%v)", lateBody, err)
	}
	e.do("DELETE", "/v1/subscriptions/late", nil)
	if strings.Contains(audit.String(), secretEmail) {
		t.Error("the audit log holds the sensitive value")
	}

	// Forgetting again is fine; a subject no event has is not found, so
	// that a typo in a forget request is seen.
	if a := e.do("POST", forgetPath("customer/42"), nil); a.status != http.StatusNoContent {
		t.Errorf("forget again: %d %s", a.status, a.body)
	}
	if a := e.do("POST", forgetPath("nobody/at all"), nil); a.status != http.StatusNotFound {
		t.Errorf("forget of a subject never seen: %d %s", a.status, a.body)
	}
	// A subject too long is refused.
	if a := e.do("POST", forgetPath(strings.Repeat("x", herald.MaxSubjectLen+1)), nil); a.status != 400 {
		t.Errorf("forget of a long subject: %d", a.status)
	}
}

func TestForgetNeedsAdmin(t *testing.T) {
	audit := &testlog.Buffer{}
	e := sensitiveEnv(t, server.WithAuditLogger(slog.New(slog.NewJSONHandler(audit, nil))),
		server.WithTokens([]server.Token{
			{Identity: "recorder", Hash: server.HashToken(recorderToken), Publish: []string{">"}, Subscribe: []string{">"}},
			{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true, Publish: []string{">"}, Subscribe: []string{">"}},
		}))
	if a := e.do("PUT", "/v1/schemas/customer.created/1", customerSchema, "Authorization", bearer(adminToken)); a.status/100 != 2 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	id := e.publish(map[string]any{"name": "customer.created", "subject": "customer/7",
		"data": map[string]any{"email": secretEmail, "plan": "pro"}}, "Authorization", bearer(recorderToken)).Events[0].ID
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {bearer("hrld_wrong"), 401}, {bearer(recorderToken), 403}} {
		if a := e.do("POST", forgetPath("customer/7"), nil, "Authorization", c.auth); a.status != c.want {
			t.Errorf("forget with %q: %d, want %d", c.auth, a.status, c.want)
		}
	}
	var one herald.Event
	e.do("GET", "/v1/events/"+id, nil, "Authorization", bearer(recorderToken)).json(t, &one)
	if got := emailOf(t, &one); got != secretEmail {
		t.Fatalf("after refused forgets: email = %v", got)
	}
	if !strings.Contains(audit.String(), "request denied") {
		t.Errorf("denied forget not audited: %s", audit.String())
	}
	if a := e.do("POST", forgetPath("customer/7"), nil, "Authorization", bearer(adminToken)); a.status != 204 {
		t.Fatalf("admin forget: %d %s", a.status, a.body)
	}
	e.do("GET", "/v1/events/"+id, nil, "Authorization", bearer(recorderToken)).json(t, &one)
	if got := emailOf(t, &one); got != nil {
		t.Errorf("after forget: email = %v", got)
	}
}

func TestForgetWithoutCodec(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", forgetPath("customer/1"), nil)
	if a.status != 404 || a.errCode(t).Error.Code != "not_found" {
		t.Errorf("forget without a codec: %d %s", a.status, a.body)
	}
}
