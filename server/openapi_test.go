package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// contract is openapi.json loaded with a maintained OpenAPI validator:
// every answer the tests get through env.do is checked against it.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

// loadContract loads openapi.json once for the package's tests.
var loadContract = sync.OnceValues(func() (*contract, error) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil // match paths on any host: the tests' servers are on random ports
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/openmetrics-text", openapi3filter.PlainBodyDecoder)
	return &contract{doc: doc, router: r}, nil
})

// checkContract fails the test when an answer to req does not fit
// openapi.json: an undocumented status, a body or a header of the wrong
// shape. Answers to paths the document does not know (a 404 for an unknown
// endpoint, a 405) are checked by the route test instead. It returns the
// operation's id, or "" when no operation matched.
func (e *env) checkContract(req *http.Request, status int, h http.Header, body []byte) string {
	e.t.Helper()
	c, err := loadContract()
	if err != nil {
		e.t.Fatalf("openapi.json: %v", err)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return ""
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 h,
		Options:                opts,
	}
	in.SetBodyBytes(bytes.Clone(body))
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Errorf("%s %s answered %d, which openapi.json does not describe: %v\n%.400s", req.Method, req.URL.Path, status, err, body)
	}
	return route.Operation.OperationID
}

// TestOpenAPIAnswersOfEveryEndpoint gets a success and an error answer of
// every operation; env.do checks each against openapi.json.
func TestOpenAPIAnswersOfEveryEndpoint(t *testing.T) {
	e, _ := authEnv(t)
	admin := []string{"Authorization", bearer(adminToken)}
	rec := []string{"Authorization", bearer(recorderToken)}
	var failing atomic.Bool
	failing.Store(true)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer hook.Close()

	seen := map[string][2]bool{} // operationId: a success, an error
	got := func(a answer, status int) answer {
		t.Helper()
		if a.status != status {
			t.Fatalf("%s answered %d, want %d: %s", a.op, a.status, status, a.body)
		}
		if a.op == "" {
			t.Fatalf("no operation of openapi.json matched an answer %d: %s", a.status, a.body)
		}
		s := seen[a.op]
		s[0] = s[0] || status < 400 // a login's success is a redirect
		s[1] = s[1] || status >= 400
		seen[a.op] = s
		return a
	}

	// Public.
	doc := got(e.do("GET", "/v1/openapi.json", nil), 200)
	if !bytes.Equal(doc.body, server.OpenAPI()) || doc.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json is not the embedded document")
	}
	got(e.do("GET", "/healthz", nil), 200)
	got(e.do("GET", "/readyz", nil), 200)
	got(e.do("GET", "/metrics", nil), 200)
	got(e.do("GET", "/v1/status", nil, rec...), 200)
	got(e.do("GET", "/v1/status", nil), 401)

	// Events.
	var pub published
	got(e.do("POST", "/v1/events", map[string]any{"name": "recording.done", "subject": "rec/1", "data": map[string]any{}}, rec...), 201).json(t, &pub)
	got(e.do("POST", "/v1/events", map[string]any{"name": "recording.done", "subject": "rec/1", "data": map[string]any{}},
		append(rec, "Herald-Expected-Version", "0")...), 409)
	got(e.do("POST", "/v1/events", map[string]any{"name": "Bad", "data": map[string]any{}}, admin...), 400)
	got(e.do("POST", "/v1/events", "{}", append(rec, "Content-Type", "text/plain")...), 415)
	got(e.do("GET", "/v1/events?name=recording.>", nil, rec...), 200)
	got(e.do("GET", "/v1/events?format=cloudevents", nil, admin...), 200)
	got(e.do("GET", "/v1/events?after=x", nil, rec...), 400)
	got(e.do("GET", "/v1/events/"+pub.Events[0].ID, nil, rec...), 200)
	got(e.do("GET", "/v1/events/"+pub.Events[0].ID+"?format=cloudevents", nil, rec...), 200)
	got(e.do("GET", "/v1/events/nope", nil, rec...), 404)
	got(e.do("GET", "/v1/correlations/"+pub.Events[0].ID, nil, rec...), 200)
	got(e.do("GET", "/v1/correlations/nope", nil, rec...), 404)
	got(e.do("GET", "/v1/stream?name=BAD", nil, rec...), 400)
	got(e.do("GET", "/v1/stream", nil), 401)
	got(e.do("POST", "/v1/stream/tickets", nil, rec...), 201)
	got(e.do("POST", "/v1/stream/tickets", nil), 401)
	e.streamAnswer(t, "/v1/stream?after=0&name=recording.>", rec, func(op string) { seen[op] = [2]bool{true, seen[op][1]} })

	// Push subscriptions and dead letters.
	got(e.do("PUT", "/v1/subscriptions/rec", map[string]any{"filter": "recording.>", "endpoint": hook.URL, "max_attempts": 1}, admin...), 201)
	got(e.do("PUT", "/v1/subscriptions/rec", map[string]any{"endpoint": hook.URL}, append(admin, "If-None-Match", "*")...), 409)
	got(e.do("PUT", "/v1/subscriptions/bad", map[string]any{"endpoint": "ftp://x"}, admin...), 400)
	got(e.do("GET", "/v1/subscriptions", nil, admin...), 200)
	got(e.do("GET", "/v1/subscriptions", nil), 401)
	got(e.do("GET", "/v1/subscriptions/rec", nil, admin...), 200)
	got(e.do("GET", "/v1/subscriptions/none", nil, admin...), 404)
	var dl struct {
		DeadLetters []struct {
			ID string `json:"id"`
		} `json:"dead_letters"`
	}
	testwait.For(t, "a dead letter", func() bool {
		got(e.do("GET", "/v1/dlq", nil, admin...), 200).json(t, &dl)
		return len(dl.DeadLetters) == 1
	})
	got(e.do("GET", "/v1/dlq", nil, rec...), 403)
	got(e.do("POST", "/v1/dlq/"+dl.DeadLetters[0].ID+"/redrive", nil, admin...), 202)
	got(e.do("POST", "/v1/dlq/nope/redrive", nil, admin...), 404)
	got(e.do("POST", "/v1/dlq/redrive?subscription=rec", nil, admin...), 202)
	got(e.do("POST", "/v1/dlq/redrive", nil, rec...), 403)
	testwait.For(t, "the dead letter again", func() bool {
		e.do("GET", "/v1/dlq", nil, admin...).json(t, &dl)
		return len(dl.DeadLetters) == 1
	})
	var redriven struct {
		Events []struct {
			Outcomes []struct {
				Redriven bool `json:"redriven"`
				Attempts int  `json:"attempts"`
				History  []struct {
					Attempt  int    `json:"attempt"`
					Duration string `json:"duration"`
				} `json:"history"`
			} `json:"outcomes"`
		} `json:"events"`
	}
	testwait.For(t, "the redriven outcome", func() bool {
		got(e.do("GET", "/v1/correlations/"+pub.Events[0].ID, nil, admin...), 200).json(t, &redriven)
		return len(redriven.Events) > 0 && len(redriven.Events[0].Outcomes) == 1 && redriven.Events[0].Outcomes[0].Redriven
	})
	// Its history holds every failed attempt (one per delivery: the first
	// and each redrive's, as both redrives may have come in turn), the one
	// before the redrive too, each with its duration.
	o := redriven.Events[0].Outcomes[0]
	if len(o.History) < 2 || len(o.History) != o.Attempts {
		t.Errorf("the redriven outcome of %d attempts has the history %+v, want each attempt", o.Attempts, o.History)
	}
	for i, ae := range o.History {
		if ae.Attempt != i+1 || ae.Duration == "" {
			t.Errorf("the redriven outcome's history is %+v, want attempts 1 to %d with their durations", o.History, o.Attempts)
			break
		}
	}
	got(e.do("DELETE", "/v1/dlq/"+dl.DeadLetters[0].ID, nil, admin...), 200)
	got(e.do("DELETE", "/v1/dlq/nope", nil, admin...), 404)
	got(e.do("DELETE", "/v1/dlq?subscription=rec", nil, admin...), 200)
	got(e.do("DELETE", "/v1/dlq", nil, admin...), 400)
	got(e.do("DELETE", "/v1/dlq?subscription=rec", nil, rec...), 403)
	got(e.do("GET", "/v1/history", nil, rec...), 200)
	got(e.do("GET", "/v1/history", nil), 401)
	got(e.do("POST", "/v1/subscriptions/rec/replay", map[string]any{"position": 0}, admin...), 200)
	got(e.do("POST", "/v1/subscriptions/rec/replay", map[string]any{}, admin...), 400)
	got(e.do("DELETE", "/v1/subscriptions/rec", nil, admin...), 204)
	got(e.do("DELETE", "/v1/subscriptions/rec", nil, admin...), 404)

	// Subjects.
	got(e.do("GET", "/v1/subjects/rec%2F1", nil, rec...), 200)
	got(e.do("GET", "/v1/subjects/"+strings.Repeat("s", 501), nil, rec...), 400)
	got(e.do("POST", "/v1/subjects/rec%2F1/forget", nil, admin...), 404) // this server keeps no keys
	got(e.do("POST", "/v1/subjects/rec%2F1/forget", nil, rec...), 403)

	// Schemas.
	got(e.do("PUT", "/v1/schemas/recording.done/1", `{"type":"object"}`, admin...), 201)
	got(e.do("PUT", "/v1/schemas/recording.done/2", `{"type":"nonsense"}`, admin...), 400)
	got(e.do("GET", "/v1/schemas", nil, rec...), 200)
	got(e.do("GET", "/v1/schemas", nil), 401)
	got(e.do("GET", "/v1/schemas/recording.done/1", nil, rec...), 200)
	got(e.do("GET", "/v1/schemas/recording.done/9", nil, rec...), 404)

	// Tokens.
	var tok struct {
		Info struct {
			ID string `json:"id"`
		} `json:"info"`
	}
	got(e.do("POST", "/v1/tokens", map[string]any{"identity": "x", "publish": []string{"x.>"}}, admin...), 201).json(t, &tok)
	got(e.do("POST", "/v1/tokens", map[string]any{"identity": "y"}, rec...), 403)
	got(e.do("GET", "/v1/tokens", nil, admin...), 200)
	got(e.do("GET", "/v1/tokens", nil, rec...), 403)
	got(e.do("DELETE", "/v1/tokens/"+tok.Info.ID, nil, admin...), 204)
	got(e.do("DELETE", "/v1/tokens/"+tok.Info.ID, nil, admin...), 404)

	// The console's session: a round trip of login, session and logout,
	// with a refusal of each.
	cc := newConsoleClient(e)
	got(cc.do("GET", "/ui/session", ""), 401)
	got(cc.do("POST", "/ui/login", "token="+adminToken, "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"), 403)
	if a := got(cc.login(adminToken), 303); a.header.Get("Location") != "/ui/dlq" || cc.csrf == "" {
		t.Fatalf("login: to %q, CSRF token %q", a.header.Get("Location"), cc.csrf)
	}
	got(cc.do("GET", "/ui/session", ""), 200)
	got(cc.do("POST", "/ui/logout", ""), 403)
	got(cc.do("POST", "/ui/logout", "", "Herald-Csrf", cc.csrf), 204)
	got(cc.do("GET", "/ui/session", ""), 401)

	// Every operation was seen; every one but the public ones and
	// forgetting (whose success TestSensitiveFieldsEndToEnd checks) with a
	// success and an error.
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	onlyOne := map[string]bool{"openapi": true, "health": true, "ready": true, "metrics": true, "forgetSubject": true}
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			s := seen[op.OperationID]
			if !s[0] && !s[1] {
				t.Errorf("%s %s (%s): no answer checked", method, path, op.OperationID)
			} else if !onlyOne[op.OperationID] && !(s[0] && s[1]) {
				t.Errorf("%s %s (%s): success checked %v, error checked %v", method, path, op.OperationID, s[0], s[1])
			}
		}
	}
}

// streamAnswer opens an SSE stream, reads its first bytes, and checks the
// answer's status and headers against openapi.json.
func (e *env) streamAnswer(t *testing.T, path string, hdr []string, seen func(op string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(resp.Body, buf, 8)
	if resp.StatusCode != 200 {
		t.Fatalf("stream answered %d", resp.StatusCode)
	}
	op := e.checkContract(req, resp.StatusCode, resp.Header, buf[:n])
	if op == "" {
		t.Fatalf("no operation matched %s", path)
	}
	seen(op)
}
