package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/internal/memnet"
	"github.com/heraldhq/herald/server"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

// env is a real server on a loopback port over a bus on a memory store.
type env struct {
	t     *testing.T
	store herald.Store
	bus   *herald.Bus
	srv   *server.Server
	ts    *httptest.Server
	url   string
	// client sends e.do's requests; nil is http.DefaultClient.
	client *http.Client
	// dialer opens a connection to the server of a bubble env; nil dials
	// url's loopback port.
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newEnv(t *testing.T, opts ...server.Option) *env {
	t.Helper()
	return newEnvStore(t, herald.NewMemoryStore(), opts...)
}

func newEnvStore(t *testing.T, st herald.Store, opts ...server.Option) *env {
	t.Helper()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvBus(t, st, bus, opts...)
}

// newEnvBus serves bus (on st) on a loopback port; the env's cleanup closes
// the server, the bus and st.
func newEnvBus(t *testing.T, st herald.Store, bus *herald.Bus, opts ...server.Option) *env {
	t.Helper()
	srv, err := server.New(bus, opts...)
	if err != nil {
		bus.Close(context.Background())
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.RegisterOnShutdown(srv.EndStreams)
	ts.Start()
	e := &env{t: t, store: st, bus: bus, srv: srv, ts: ts, url: ts.URL}
	t.Cleanup(func() {
		srv.EndStreams()
		ts.CloseClientConnections()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server Close: %v", err)
		}
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus Close: %v", err)
		}
		st.Close()
	})
	return e
}

// httpClient is e.client, or http.DefaultClient.
func (e *env) httpClient() *http.Client {
	if e.client != nil {
		return e.client
	}
	return http.DefaultClient
}

// newBubbleEnv is an env on a network in memory, for tests that run in a
// testing/synctest bubble (a goroutine blocked on a real socket keeps the
// bubble's clock from moving). Its cleanup closes the server, the bus and
// the memory store.
func newBubbleEnv(t *testing.T, opts ...server.Option) *env {
	t.Helper()
	return newBubbleEnvStore(t, herald.NewMemoryStore(), opts...)
}

// newBubbleEnvStore is newBubbleEnv on st, which its cleanup closes.
func newBubbleEnvStore(t *testing.T, st herald.Store, opts ...server.Option) *env {
	t.Helper()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, opts...)
	if err != nil {
		bus.Close(context.Background())
		t.Fatal(err)
	}
	l := memnet.Listen()
	hs := &http.Server{Handler: srv}
	hs.RegisterOnShutdown(srv.EndStreams)
	go hs.Serve(l)
	tr := &http.Transport{DialContext: l.DialContext}
	t.Cleanup(func() {
		srv.EndStreams()
		tr.CloseIdleConnections()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server Close: %v", err)
		}
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus Close: %v", err)
		}
		st.Close()
	})
	return &env{t: t, store: st, bus: bus, srv: srv, url: "http://herald.test", client: &http.Client{Transport: tr}, dialer: l.DialContext}
}

// dial opens a raw connection to e's server, for a test that writes its
// own request.
func (e *env) dial() net.Conn {
	e.t.Helper()
	var c net.Conn
	var err error
	if e.dialer != nil {
		c, err = e.dialer(context.Background(), "tcp", "")
	} else {
		u, _ := url.Parse(e.url)
		c, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// handlerTransport answers each request with its handler, in the calling
// goroutine: HTTP without a network.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// answer is a decoded HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	// op is the operationId of openapi.json the answer was checked
	// against; "" when no operation matched its path.
	op string
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %.200s", a.status, err, a.body)
	}
}

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Index   *int   `json:"index"`
	} `json:"error"`
}

func (a answer) errCode(t *testing.T) apiErr {
	t.Helper()
	var e apiErr
	a.json(t, &e)
	return e
}

func (e *env) do(method, path string, body any, hdr ...string) answer {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.ContentLength > 1<<20 {
		// The server answers a body over its limit without reading it and
		// closes the connection: waiting for its go-ahead lets the client
		// read that answer rather than fail writing.
		req.Header.Set("Expect", "100-continue")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	op := e.checkContract(req, resp.StatusCode, resp.Header, b)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, op: op}
}

type published struct {
	Events []struct {
		ID        string `json:"id"`
		Position  uint64 `json:"position"`
		Duplicate bool   `json:"duplicate"`
	} `json:"events"`
}

func (e *env) publish(body any, hdr ...string) published {
	e.t.Helper()
	a := e.do("POST", "/v1/events", body, hdr...)
	if a.status != 201 && a.status != 200 {
		e.t.Fatalf("publish answered %d: %s", a.status, a.body)
	}
	var p published
	a.json(e.t, &p)
	return p
}

func (e *env) head() uint64 {
	e.t.Helper()
	h, err := e.store.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func TestPublishAndRead(t *testing.T) {
	e := newEnv(t)
	p := e.publish(map[string]any{"name": "recording.completed", "data": map[string]any{"recording_id": "r1"}, "subject": "recording/r1"})
	if len(p.Events) != 1 || p.Events[0].Position == 0 || p.Events[0].ID == "" {
		t.Fatalf("publish answer %+v", p)
	}
	id := p.Events[0].ID

	a := e.do("GET", "/v1/events/"+id, nil)
	var ev herald.Event
	a.json(t, &ev)
	if a.status != 200 || ev.Name != "recording.completed" || ev.CorrelationID != id || ev.Position != p.Events[0].Position {
		t.Fatalf("GET event: %d %+v", a.status, ev)
	}

	// Idempotent by id: 200 and the first position.
	dup := e.do("POST", "/v1/events", map[string]any{"id": id, "name": "recording.completed", "data": map[string]any{"recording_id": "r1"}, "subject": "recording/r1"})
	var dp published
	dup.json(t, &dp)
	if dup.status != 200 || dp.Events[0].Position != p.Events[0].Position || !dp.Events[0].Duplicate {
		t.Fatalf("duplicate answered %d %s", dup.status, dup.body)
	}

	// Batches: array and envelope.
	b1 := e.publish([]map[string]any{{"name": "a.one", "data": map[string]any{}}, {"name": "a.two", "data": map[string]any{}}})
	b2 := e.publish(map[string]any{"events": []map[string]any{{"name": "b.one", "data": map[string]any{"x": 1}}}})
	if len(b1.Events) != 2 || b1.Events[1].Position <= b1.Events[0].Position || len(b2.Events) != 1 {
		t.Fatalf("batches: %+v %+v", b1, b2)
	}

	// Filters and paging.
	var list struct {
		Events    []herald.Event `json:"events"`
		NextAfter uint64         `json:"next_after"`
	}
	e.do("GET", "/v1/events?name=a.*", nil).json(t, &list)
	if len(list.Events) != 2 || list.Events[0].Name != "a.one" || list.NextAfter != b1.Events[1].Position {
		t.Fatalf("name filter: %+v", list)
	}
	e.do("GET", "/v1/events?limit=1", nil).json(t, &list)
	if len(list.Events) != 1 || list.NextAfter != list.Events[0].Position {
		t.Fatalf("limit: %+v", list)
	}
	e.do("GET", "/v1/events?after="+u(list.NextAfter)+"&limit=1000", nil).json(t, &list)
	if len(list.Events) != 3 {
		t.Fatalf("after: got %d events, want 3", len(list.Events))
	}
	e.do("GET", "/v1/events?subject=recording/r1", nil).json(t, &list)
	if len(list.Events) != 1 || list.Events[0].ID != id {
		t.Fatalf("subject filter: %+v", list)
	}
	e.do("GET", "/v1/events?correlation_id="+id, nil).json(t, &list)
	if len(list.Events) != 1 {
		t.Fatalf("correlation filter: %+v", list)
	}

	// An id with a slash is reachable as it is.
	e.publish(map[string]any{"id": "ext/42", "name": "a.slash", "data": map[string]any{}})
	if a := e.do("GET", "/v1/events/ext/42", nil); a.status != 200 {
		t.Fatalf("id with a slash: %d %s", a.status, a.body)
	}

	// Unknown id.
	if a := e.do("GET", "/v1/events/nope", nil); a.status != 404 || a.errCode(t).Error.Code != "not_found" {
		t.Fatalf("unknown id: %d %s", a.status, a.body)
	}
}

func u(n uint64) string { return jsonNum(n) }

func jsonNum(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestExpectedVersion(t *testing.T) {
	e := newEnv(t)
	ev := func(name string) map[string]any {
		return map[string]any{"name": name, "subject": "order/1", "data": map[string]any{}}
	}
	e.publish(ev("order.created"), "Herald-Expected-Version", "0")
	a := e.do("POST", "/v1/events", ev("order.paid"), "Herald-Expected-Version", "0")
	if a.status != 409 || a.errCode(t).Error.Code != "conflict" {
		t.Fatalf("stale version: %d %s", a.status, a.body)
	}
	e.publish(ev("order.paid"), "Herald-Expected-Version", "1")
	if a := e.do("POST", "/v1/events", map[string]any{"name": "x.y", "data": map[string]any{}}, "Herald-Expected-Version", "0"); a.status != 400 {
		t.Fatalf("expected version without subject: %d", a.status)
	}
	if a := e.do("POST", "/v1/events", ev("order.x"), "Herald-Expected-Version", "-1"); a.status != 400 {
		t.Fatalf("bad expected version: %d", a.status)
	}
}

func TestHealthMetricsAndUnknownRoute(t *testing.T) {
	e := newEnv(t)
	if a := e.do("GET", "/healthz", nil); a.status != 200 {
		t.Fatalf("healthz %d", a.status)
	}
	if a := e.do("GET", "/readyz", nil); a.status != 200 {
		t.Fatalf("readyz %d", a.status)
	}
	e.publish(map[string]any{"name": "m.x", "data": map[string]any{}})
	a := e.do("GET", "/metrics", nil)
	for _, want := range []string{"herald_http_requests_total", `route="POST /v1/events"`, "herald_sse_streams_open", "# TYPE"} {
		if !strings.Contains(string(a.body), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if a := e.do("GET", "/v2/nothing", nil); a.status != 404 || a.errCode(t).Error.Code != "not_found" {
		t.Fatalf("unknown route: %d %s", a.status, a.body)
	}
	if a := e.do("DELETE", "/v1/events", nil); a.status != 405 && a.status != 404 {
		t.Fatalf("wrong method: %d", a.status)
	}
}

// newTestHTTP serves h on a loopback port until the test ends.
func newTestHTTP(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestCORS(t *testing.T) {
	e := newEnv(t, server.WithCORS("https://dash.example"))
	a := e.do("OPTIONS", "/v1/events", nil, "Origin", "https://dash.example", "Access-Control-Request-Method", "POST")
	if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://dash.example" ||
		!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", a.status, a.header)
	}
	a = e.do("GET", "/v1/events", nil, "Origin", "https://dash.example")
	if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Fatalf("simple request: %d %v", a.status, a.header)
	}
	a = e.do("GET", "/v1/events", nil, "Origin", "https://evil.example")
	if a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin allowed: %v", a.header)
	}
	// Without WithCORS nothing changes.
	plain := newEnv(t)
	if a := plain.do("GET", "/v1/events", nil, "Origin", "https://dash.example"); a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS without WithCORS")
	}
}
