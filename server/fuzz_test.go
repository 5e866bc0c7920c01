package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// FuzzDecodeEvents feeds arbitrary bodies to the publish decoder in every
// mode. It must never panic, must reject with an API error, and what it
// accepts must respect the limits.
func FuzzDecodeEvents(f *testing.F) {
	seeds := []struct {
		mode uint8
		body string
	}{
		{0, `{"name":"a.b","data":{}}`},
		{0, `[{"name":"a.b","data":{"x":[1,2,{"y":null}]}},{"name":"c","data":{},"priority":"high"}]`},
		{0, `{"events":[{"id":"x","name":"a.b","data":{},"subject":"s/1","metadata":{"k":"v"}}]}`},
		{0, `{"name":"a.b","data":{},"timestamp":"2026-01-02T03:04:05Z","version":2}`},
		{0, `{"name":"a.b","data":"\u0000\ud800"}`},
		{0, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`},
		{1, `{"specversion":"1.0","id":"1","type":"a.b","source":"s","data":{"a":1}}`},
		{1, `{"specversion":"1.0","id":"1","type":"a.b","source":"s","data_base64":"e30="}`},
		{2, `[{"specversion":"1.0","id":"1","type":"a.b","source":"s","correlationid":"c","dataversion":3}]`},
		{3, `{"a":1}`},
		{3, ``},
	}
	for _, s := range seeds {
		f.Add(s.mode, []byte(s.body))
	}
	lim := Limits{MaxBody: 1 << 16, MaxBatch: 8, MaxEvent: 1 << 12, MaxDepth: 16}.withDefaults()
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		h := http.Header{}
		switch mode % 4 {
		case 0:
			h.Set("Content-Type", ctJSON)
		case 1:
			h.Set("Content-Type", ctCloudEvent)
		case 2:
			h.Set("Content-Type", ctCloudBatch)
		case 3:
			h.Set("Content-Type", ctJSON)
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Id", "x")
			h.Set("Ce-Type", "a.b")
			h.Set("Ce-Source", "s")
		}
		events, err := decodeEvents(context.Background(), h, body, lim)
		if err != nil {
			ae := toAPIError(err)
			if ae.Status < 400 || ae.Status >= 500 || ae.Code == CodeInternal || ae.Message == "" {
				t.Fatalf("rejection %d %q %q for %q", ae.Status, ae.Code, ae.Message, body)
			}
			return
		}
		if len(events) == 0 || len(events) > lim.MaxBatch {
			t.Fatalf("%d events accepted", len(events))
		}
		for _, e := range events {
			if e == nil {
				t.Fatal("nil event")
			}
			// What passes the decoder either prepares or is refused with a
			// validation error: never anything else.
			if err := e.Prepare(e.Timestamp); err != nil {
				var ve *herald.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Prepare: %v", err)
				}
				continue
			}
			if !json.Valid(e.Data) {
				t.Fatalf("accepted invalid data %q", e.Data)
			}
		}
	})
}

// FuzzCheckDepth compares the depth scanner with encoding/json on valid
// JSON: a document it accepts nests no deeper than the limit.
func FuzzCheckDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[[]]]`, `{"a":"[[[[\"]]]"}`, `"\\"`, `{"a":[{"b":[{}]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 4
		err := checkDepth(b, max)
		if !json.Valid(b) {
			return
		}
		if d := depthOf(t, b); (d > max) != (err != nil) {
			t.Fatalf("depth %d, limit %d, checkDepth said %v for %s", d, max, err, b)
		}
	})
}

func depthOf(t *testing.T, b []byte) int {
	dec := json.NewDecoder(bytesReader(b))
	depth, maxd := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return maxd
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			maxd = max(maxd, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzTokenRequest feeds arbitrary bodies to POST /v1/tokens's decoder and
// the token checks. It must never panic, must reject with a 4xx API error,
// and a token it accepts holds at most MaxTokenSubjects valid subject
// patterns (none on an admin) and valid name patterns.
func FuzzTokenRequest(f *testing.F) {
	for _, s := range []string{
		`{"identity":"biller","publish":["billing.>"],"subjects":["acct/*","ledger/>"]}`,
		`{"identity":"x","subjects":[""]}`,
		`{"identity":"x","subjects":["a/>/b","a*","//"]}`,
		`{"identity":"x","admin":true,"subjects":[">"]}`,
		`{"identity":"x","subjects":"acct/1"}`,
		`{"identity":"x","subjects":[1,null,{}]}`,
		`{"identity":"x","subjects":["` + strings.Repeat("a/", 300) + `"]}`,
		`{"identity":"x","subjects":[` + strings.Repeat(`"a",`, 200) + `"a"]}`,
		`{"identity":"x","subjects":["\u0000","\ud800"]}`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{cfg: config{limits: Limits{}.withDefaults()}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/tokens", bytes.NewReader(body))
		var req tokenRequest
		err := s.decodeJSON(httptest.NewRecorder(), r, &req, smallBody)
		if err == nil {
			tok := Token{Identity: req.Identity, Hash: HashToken("x"), Publish: req.Publish, Subscribe: req.Subscribe,
				Subjects: req.Subjects, Admin: req.Admin, Rate: req.Rate, Burst: req.Burst}
			if err = validateToken(&tok); err == nil {
				if len(tok.Subjects) > MaxTokenSubjects || tok.Admin && len(tok.Subjects) > 0 {
					t.Fatalf("accepted %d subject patterns (admin %v)", len(tok.Subjects), tok.Admin)
				}
				for _, p := range tok.Subjects {
					if api.ValidateSubjectPattern(p) != nil || len(p) > herald.MaxSubjectLen {
						t.Fatalf("accepted subject pattern %q", p)
					}
				}
				for _, p := range append(tok.Publish, tok.Subscribe...) {
					if herald.ValidatePattern(p) != nil {
						t.Fatalf("accepted name pattern %q", p)
					}
				}
				return
			}
		}
		ae := toAPIError(err)
		if ae.Status < 400 || ae.Status >= 500 || ae.Code == CodeInternal || ae.Message == "" {
			t.Fatalf("rejection %d %q %q for %q", ae.Status, ae.Code, ae.Message, body)
		}
	})
}
