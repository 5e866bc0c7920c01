package client

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

func TestParseErrorMapsCodesToSentinels(t *testing.T) {
	cases := []struct {
		code   string
		status int
		want   error
	}{
		{"invalid_json", 400, herald.ErrInvalidEvent},
		{"invalid_event", 400, herald.ErrInvalidEvent},
		{"schema_violation", 400, herald.ErrSchemaViolation},
		{"unauthorized", 401, herald.ErrUnauthorized},
		{"forbidden", 403, herald.ErrForbidden},
		{"payload_too_large", 413, herald.ErrTooLarge},
		{"rate_limited", 429, herald.ErrRateLimited},
		{"backpressure", 503, herald.ErrBackpressure},
		{"conflict", 409, herald.ErrConflict},
		{"not_found", 404, herald.ErrNotFound},
	}
	for _, c := range cases {
		body := `{"error":{"code":"` + c.code + `","message":"it went wrong"}}`
		e := parseError(c.status, "", []byte(body))
		if !errors.Is(e, c.want) {
			t.Errorf("code %s: errors.Is(%v) = false", c.code, c.want)
		}
		if e.Code != c.code || e.Status != c.status || e.Message != "it went wrong" {
			t.Errorf("code %s: got %+v", c.code, e)
		}
		var as *Error
		if !errors.As(error(e), &as) {
			t.Errorf("code %s: not an *Error", c.code)
		}
	}
}

func TestParseErrorFields(t *testing.T) {
	e := parseError(400, "", []byte(`{"error":{"code":"invalid_event","message":"name: must not be empty","field":"name","index":2}}`))
	if e.Field != "name" || e.Index != 2 {
		t.Fatalf("field/index = %q/%d", e.Field, e.Index)
	}
	if !strings.Contains(e.Error(), "event 2 of the batch") {
		t.Errorf("message %q does not name the index", e.Error())
	}
	e = parseError(400, "", []byte(`{"error":{"code":"invalid_event","message":"bad"}}`))
	if e.Index != -1 {
		t.Errorf("absent index decoded as %d, want -1", e.Index)
	}
	if e := parseError(500, "", []byte(`{"error":{"code":"internal","message":"oops"}}`)); e.Unwrap() != nil {
		t.Errorf("internal wraps %v, want nil", e.Unwrap())
	}
	if e := parseError(400, "", []byte(`{"error":{"code":"brand_new","message":"?"}}`)); e.Unwrap() != nil {
		t.Errorf("unknown code wraps %v, want nil", e.Unwrap())
	}
}

func TestParseErrorWithoutHeraldBody(t *testing.T) {
	e := parseError(http.StatusNotFound, "", []byte("<html>404 page not found</html>"))
	if !errors.Is(e, herald.ErrNotFound) || e.Code != "" {
		t.Fatalf("plain 404: %+v", e)
	}
	if e.Error() != "not found" {
		t.Errorf("plain 404 message %q", e.Error())
	}
	if e := parseError(http.StatusBadGateway, "", nil); e.Unwrap() != nil || e.Error() != "bad gateway" {
		t.Errorf("502: %v wraps %v", e, e.Unwrap())
	}
}

func TestRetryAfter(t *testing.T) {
	// The parsing itself is api.ParseRetryAfter's (see its tests); the
	// client keeps its answer, capped.
	for in, want := range map[string]time.Duration{
		"":          0,
		"3":         3 * time.Second,
		"junk":      0,
		"999999999": api.MaxRetryAfter,
	} {
		if got := parseError(503, in, nil).RetryAfter; got != want {
			t.Errorf("Retry-After %q: RetryAfter %v, want %v", in, got, want)
		}
	}
	e := parseError(429, "2", []byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
	if e.RetryAfter != 2*time.Second || !IsRetryable(e) {
		t.Errorf("429: RetryAfter %v, retryable %v", e.RetryAfter, IsRetryable(e))
	}
	if IsRetryable(parseError(400, "", []byte(`{"error":{"code":"invalid_event"}}`))) {
		t.Error("invalid_event is retryable")
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, "", []byte(`{"error":{"code":"invalid_event","message":"m","field":"name","index":1}}`))
	f.Add(429, "5", []byte(`{"error":{"code":"rate_limited"}}`))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{"error":{"code":"backpressure"}}`))
	f.Add(404, "", []byte(`not json`))
	f.Add(409, "", []byte(`{"error":null}`))
	f.Add(400, "", []byte(`{"error":{"index":-7,"code":5}}`))
	f.Add(500, "1e9", []byte(`[]`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		e := parseError(status, retryAfter, body)
		if e == nil {
			t.Fatal("nil error")
		}
		if e.Index < -1 {
			t.Fatalf("index %d below -1", e.Index)
		}
		if e.RetryAfter < 0 || e.RetryAfter > api.MaxRetryAfter {
			t.Fatalf("RetryAfter %v from %q", e.RetryAfter, retryAfter)
		}
		if e.Code != "" {
			if s := api.Sentinel(e.Code); s != nil && !errors.Is(e, s) {
				t.Fatalf("code %q does not wrap %v", e.Code, s)
			}
		}
		_ = e.Error()
	})
}
