package server_test

import (
	"bytes"
	"compress/gzip"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/server"
)

var leak = regexp.MustCompile(`\.go:|goroutine|sqlite|SELECT|INSERT|panic|/(home|root|tmp|var|usr|etc|opt|srv)/`)

func TestBadInput(t *testing.T) {
	e := newEnv(t, server.WithLimits(server.Limits{MaxBody: 64 << 10, MaxBatch: 5, MaxEvent: 8 << 10, MaxDepth: 10}))
	deep := `{"name":"d.x","data":` + strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 20) + `}`
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"name":"a.b","data":{}},`, 6), ",") + "]"
	cases := []struct {
		name, ct, body string
		status         int
		code, field    string
		index          int // -1: none expected
	}{
		{"malformed", "application/json", `{not json`, 400, "invalid_json", "", -1},
		{"empty", "application/json", ``, 400, "invalid_json", "", -1},
		{"trailing garbage", "application/json", `{"name":"a.b","data":{}} x`, 400, "invalid_json", "", -1},
		{"scalar", "application/json", `42`, 400, "invalid_json", "", -1},
		{"no data", "application/json", `{"name":"a.b"}`, 400, "invalid_event", "data", 0},
		{"array data", "application/json", `{"name":"a.b","data":[1]}`, 400, "invalid_event", "data", 0},
		{"null data", "application/json", `{"name":"a.b","data":null}`, 400, "invalid_event", "data", 0},
		{"bad name", "application/json", `{"name":"Bad Name!","data":{}}`, 400, "invalid_event", "name", 0},
		{"long name", "application/json", `{"name":"` + strings.Repeat("x", 300) + `","data":{}}`, 400, "invalid_event", "name", 0},
		{"wrong type", "application/json", `{"name":5,"data":{}}`, 400, "invalid_event", "name", 0},
		{"bad priority", "application/json", `{"name":"a.b","data":{},"priority":"urgent"}`, 400, "invalid_event", "priority", 0},
		{"bad timestamp", "application/json", `{"name":"a.b","data":{},"timestamp":"yesterday"}`, 400, "invalid_event", "timestamp", 0},
		{"bad in batch", "application/json", `[{"name":"a.b","data":{}},{"name":"BAD","data":{}}]`, 400, "invalid_event", "name", 1},
		{"non-object in batch", "application/json", `[{"name":"a.b","data":{}},7]`, 400, "invalid_event", "", 1},
		{"empty batch", "application/json", `[]`, 400, "invalid_event", "", -1},
		{"too many", "application/json", many, 413, "payload_too_large", "", -1},
		{"event too large", "application/json", `{"name":"a.b","data":{"x":"` + strings.Repeat("z", 9<<10) + `"}}`, 413, "payload_too_large", "", 0},
		{"body too large", "application/json", `{"name":"a.b","data":{"x":"` + strings.Repeat("z", 70<<10) + `"}}`, 413, "payload_too_large", "", -1},
		{"too deep", "application/json", deep, 400, "invalid_json", "", -1},
		{"wrong content type", "text/plain", `{"name":"a.b","data":{}}`, 415, "invalid_json", "", -1},
		{"form content type", "application/x-www-form-urlencoded", `name=a.b`, 415, "invalid_json", "", -1},
		{"bad content type", "application/json; =", `{}`, 415, "invalid_json", "", -1},
		{"hostile id", "application/json", `{"id":"a b\u0000","name":"a.b","data":{}}`, 400, "invalid_event", "id", 0},
		{"nul in name", "application/json", `{"name":"a.b\u0000","data":{}}`, 400, "invalid_event", "name", 0},
		{"markup in name", "application/json", `{"name":"a.<script>","data":{}}`, 400, "invalid_event", "name", 0},
		{"ce without type", "application/cloudevents+json", `{"specversion":"1.0","id":"1","source":"s","data":{}}`, 400, "invalid_event", "", 0},
		{"ce bad spec", "application/cloudevents+json", `{"specversion":"9","id":"1","type":"a.b","source":"s"}`, 400, "invalid_event", "", 0},
		{"ce xml data", "application/cloudevents+json", `{"specversion":"1.0","id":"1","type":"a.b","source":"s","datacontenttype":"text/xml","data":"<a/>"}`, 400, "invalid_event", "datacontenttype", 0},
		{"ce batch not array", "application/cloudevents-batch+json", `{"specversion":"1.0"}`, 400, "invalid_json", "", -1},
	}
	before := e.head()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.do("POST", "/v1/events", c.body, "Content-Type", c.ct)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			er := a.errCode(t)
			if er.Error.Code != c.code || er.Error.Message == "" {
				t.Fatalf("code %q, want %q: %s", er.Error.Code, c.code, a.body)
			}
			if c.field != "" && er.Error.Field != c.field {
				t.Errorf("field %q, want %q", er.Error.Field, c.field)
			}
			if c.index >= 0 && (er.Error.Index == nil || *er.Error.Index != c.index) {
				t.Errorf("index %v, want %d", er.Error.Index, c.index)
			}
			if leak.Match(a.body) {
				t.Errorf("error body leaks internals: %s", a.body)
			}
		})
	}
	if h := e.head(); h != before {
		t.Fatalf("rejected input stored events: head %d, was %d", h, before)
	}
}

func TestBadQueries(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{
		"/v1/events?after=-1", "/v1/events?limit=x", "/v1/events?name=Bad..", "/v1/events?since=today",
		"/v1/stream?name=a..b", "/v1/stream?after=x",
	} {
		a := e.do("GET", path, nil)
		if a.status != 400 || a.errCode(t).Error.Code != "invalid_event" {
			t.Errorf("%s: %d %s", path, a.status, a.body)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v1/subscriptions/x", `{"filter":"a.b","endpoint":"ftp://x"}`},
		{"PUT", "/v1/subscriptions/x", `{"filter":"a..b","endpoint":"http://127.0.0.1:1/"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":"http://u:p@127.0.0.1:1/"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":"http://169.254.169.254/latest/meta-data"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":"http://0.0.0.0:80/"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":"http://127.0.0.1:1/","start":"yesterday"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":"http://127.0.0.1:1/","max_attempts":-1}`},
		{"PUT", "/v1/subscriptions/bad%20name", `{"endpoint":"http://127.0.0.1:1/"}`},
		{"PUT", "/v1/subscriptions/x", `{"endpoint":`},
		{"PUT", "/v1/schemas/a.b/0", `{}`},
		{"PUT", "/v1/schemas/a.b/1", `{"type":"nonsense"}`},
		{"PUT", "/v1/schemas/a.b/1", `{"$ref":"https://example.com/other.json"}`},
		{"POST", "/v1/tokens", `{"identity":""}`},
		{"POST", "/v1/tokens", `{"identity":"x","publish":["a..b"]}`},
	} {
		a := e.do(c.method, c.path, c.body)
		if a.status != 400 {
			t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, a.status, a.body)
		}
		if leak.Match(a.body) {
			t.Errorf("%s %s: error body leaks internals: %s", c.method, c.path, a.body)
		}
	}
}

func TestGzipBodies(t *testing.T) {
	e := newEnv(t, server.WithLimits(server.Limits{MaxBody: 64 << 10}))
	zip := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	a := e.do("POST", "/v1/events", zip(`{"name":"gz.one","data":{"a":1}}`), "Content-Encoding", "gzip")
	if a.status != 201 {
		t.Fatalf("gzip body: %d %s", a.status, a.body)
	}
	// A bomb: small packed, too large unpacked.
	bomb := zip(`{"name":"gz.bomb","data":{"x":"` + strings.Repeat("z", 1<<20) + `"}}`)
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes packed", len(bomb))
	}
	if a := e.do("POST", "/v1/events", bomb, "Content-Encoding", "gzip"); a.status != 413 {
		t.Fatalf("gzip bomb: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/events", []byte("not gzip"), "Content-Encoding", "gzip"); a.status != 400 {
		t.Fatalf("bad gzip: %d", a.status)
	}
	if a := e.do("POST", "/v1/events", `{"name":"a.b","data":{}}`, "Content-Encoding", "br"); a.status != 415 {
		t.Fatalf("brotli: %d", a.status)
	}
	if e.head() != 1 {
		t.Fatalf("head %d", e.head())
	}
}
