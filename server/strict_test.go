package server_test

import (
	"strings"
	"testing"
)

// TestUnknownFieldsAreErrors: a misspelt field is refused, naming the
// field, in every JSON body; nothing is stored. A typo such as "subjcet"
// or "expected_version" used to be dropped silently, so a conditional
// write went through unconditionally.
func TestUnknownFieldsAreErrors(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/subscriptions/s", map[string]any{"filter": "a.*", "endpoint": "http://127.0.0.1:1/"})
	cases := []struct {
		name, method, path string
		body               string
		field              string
	}{
		{"event", "POST", "/v1/events", `{"name":"typo.test","subjcet":"order/9","data":{}}`, "subjcet"},
		{"event camel case", "POST", "/v1/events", `{"name":"typo.test","correlationId":"abc","data":{}}`, "correlationId"},
		{"expected version in the body", "POST", "/v1/events", `{"name":"typo.test","subject":"o/1","expected_version":0,"data":{}}`, "expected_version"},
		{"array element", "POST", "/v1/events", `[{"name":"a.b","data":{}},{"name":"a.b","dta":{}}]`, "dta"},
		{"envelope", "POST", "/v1/events", `{"events":[{"name":"a.b","data":{}}],"atomic":true}`, "atomic"},
		{"envelope element", "POST", "/v1/events", `{"events":[{"name":"a.b","data":{},"prio":"high"}]}`, "prio"},
		{"subscription", "PUT", "/v1/subscriptions/t", `{"filter":"a.*","endpoint":"http://127.0.0.1:1/","concurency":4}`, "concurency"},
		{"token", "POST", "/v1/tokens", `{"identity":"ops","admin":true,"expires":"1h"}`, "expires"},
		{"replay", "POST", "/v1/subscriptions/s/replay", `{"position":0,"from":"start"}`, "from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.head()
			a := e.do(c.method, c.path, c.body)
			if a.status != 400 {
				t.Fatalf("%d %s", a.status, a.body)
			}
			ae := a.errCode(t)
			if ae.Error.Code != "invalid_json" || !strings.Contains(ae.Error.Message, `"`+c.field+`"`) {
				t.Errorf("want invalid_json naming %q: %s", c.field, a.body)
			}
			if e.head() != before {
				t.Error("something was stored")
			}
		})
	}
	// The answer fields of an event are accepted back (export, then import).
	if a := e.do("POST", "/v1/events", `{"name":"a.b","data":{},"position":7}`); a.status != 201 {
		t.Errorf("an exported event's position: %d %s", a.status, a.body)
	}
	if e.srv.AuthEnabled() {
		t.Error("a refused token request turned authentication on")
	}
}

// TestWrongMethod: a known path with the wrong method is 405 with Allow,
// not 404 "no such endpoint".
func TestWrongMethod(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/events", "GET, HEAD, POST"},
		{"PUT", "/v1/events/x", "GET, HEAD"},
		{"POST", "/v1/subscriptions/x", "DELETE, GET, HEAD, PUT"},
		{"GET", "/v1/dlq/redrive", ""}, // GET /v1/dlq/{id}: no such route either way
		{"PATCH", "/v1/tokens", "GET, HEAD, POST"},
	} {
		a := e.do(c.method, c.path, nil)
		if c.allow == "" {
			if a.status != 404 && a.status != 405 {
				t.Errorf("%s %s: %d", c.method, c.path, a.status)
			}
			continue
		}
		if a.status != 405 || a.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q: %s", c.method, c.path, a.status, a.header.Get("Allow"), c.allow, a.body)
			continue
		}
		if ae := a.errCode(t); ae.Error.Code != "method_not_allowed" {
			t.Errorf("%s %s: code %q", c.method, c.path, ae.Error.Code)
		}
	}
	if a := e.do("GET", "/v1/nothing", nil); a.status != 404 {
		t.Errorf("unknown path: %d", a.status)
	}
}

// TestInvalidUTF8Refused: data that is not valid UTF-8 is refused as
// invalid JSON; stored, it broke every strict reader of every page that
// held it.
func TestInvalidUTF8Refused(t *testing.T) {
	e := newEnv(t)
	for name, body := range map[string]string{
		"data":     "{\"name\":\"a.b\",\"data\":{\"x\":\"\xff\xfe\"}}",
		"key":      "{\"name\":\"a.b\",\"data\":{\"\xc3\":1}}",
		"metadata": "{\"name\":\"a.b\",\"data\":{},\"metadata\":{\"k\":\"\xed\xa0\x80\"}}",
	} {
		a := e.do("POST", "/v1/events", body)
		if a.status != 400 || a.errCode(t).Error.Code != "invalid_json" {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	a := e.do("POST", "/v1/events", "{\"x\":\"\xff\"}", "Content-Type", "application/json", "ce-specversion", "1.0",
		"ce-id", "1", "ce-source", "s", "ce-type", "a.b")
	if a.status != 400 || a.errCode(t).Error.Code != "invalid_json" {
		t.Errorf("binary CloudEvent: %d %s", a.status, a.body)
	}
	if h := e.head(); h != 0 {
		t.Errorf("head %d: something was stored", h)
	}
}

// TestHugeCursors: positions are below 2^63; a larger cursor is a 400,
// not a wrap-around to the start of the log.
func TestHugeCursors(t *testing.T) {
	e := newEnv(t)
	e.publish(map[string]any{"name": "a.b", "data": map[string]any{}})
	for _, q := range []string{"/v1/events?after=9223372036854775808", "/v1/events?after=18446744073709551615"} {
		if a := e.do("GET", q, nil); a.status != 400 || a.errCode(t).Error.Field != "after" {
			t.Errorf("%s: %d %s", q, a.status, a.body)
		}
	}
	if a := e.do("GET", "/v1/events?after=9223372036854775807", nil); a.status != 200 {
		t.Errorf("largest cursor: %d %s", a.status, a.body)
	}
	e.do("PUT", "/v1/subscriptions/s", map[string]any{"filter": "a.*", "endpoint": "http://127.0.0.1:1/"})
	if a := e.do("POST", "/v1/subscriptions/s/replay", `{"position":9223372036854775808}`); a.status != 400 {
		t.Errorf("replay to 2^63: %d %s", a.status, a.body)
	}
}

// TestErrorsSpeakHerald: error messages never echo Go's or a parser's
// internals: layouts, jsoniter's byte context, regexp's surprise at a
// lookbehind reported as "internal".
func TestErrorsSpeakHerald(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/subscriptions/s", map[string]any{"filter": "a.*", "endpoint": "http://127.0.0.1:1/"})
	a := e.do("POST", "/v1/subscriptions/s/replay", `{"time":"x"}`)
	if a.status != 400 || strings.Contains(string(a.body), "2006") || !strings.Contains(string(a.body), "RFC 3339") {
		t.Errorf("replay time: %d %s", a.status, a.body)
	}
	a = e.do("PUT", "/v1/schemas/a.b/1", `{"type":"object","properties":{"s":{"type":"string","pattern":"(?<=a)b"}}}`)
	if a.status != 400 || !strings.Contains(string(a.body), "pattern") || !strings.Contains(string(a.body), "regex") {
		t.Errorf("schema with a lookbehind: %d %s", a.status, a.body)
	}
	a = e.do("POST", "/v1/events", `{"specversion":"1.0","id":"1","source":"s","type":5}`, "Content-Type", "application/cloudevents+json")
	body := string(a.body)
	if a.status != 400 || strings.Contains(body, "ReadString") || strings.Contains(body, "byte of") || !strings.Contains(body, "type") {
		t.Errorf("CloudEvent with a numeric type: %d %s", a.status, body)
	}
}
