package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/heraldhq/herald/api"
)

// TestCodesRoundTrip pins the code table: each code's status and sentinel,
// and that the sentinel maps back to the code (invalid_json, a kind of
// invalid event, maps back to invalid_event; internal has no sentinel).
func TestCodesRoundTrip(t *testing.T) {
	want := map[string]struct {
		status int
		err    error
		back   string
	}{
		api.CodeInvalidJSON:      {http.StatusBadRequest, api.ErrInvalidEvent, api.CodeInvalidEvent},
		api.CodeInvalidEvent:     {http.StatusBadRequest, api.ErrInvalidEvent, api.CodeInvalidEvent},
		api.CodeSchemaViolation:  {http.StatusBadRequest, api.ErrSchemaViolation, api.CodeSchemaViolation},
		api.CodeUnauthorized:     {http.StatusUnauthorized, api.ErrUnauthorized, api.CodeUnauthorized},
		api.CodeForbidden:        {http.StatusForbidden, api.ErrForbidden, api.CodeForbidden},
		api.CodeTooLarge:         {http.StatusRequestEntityTooLarge, api.ErrTooLarge, api.CodeTooLarge},
		api.CodeRateLimited:      {http.StatusTooManyRequests, api.ErrRateLimited, api.CodeRateLimited},
		api.CodeBackpressure:     {http.StatusServiceUnavailable, api.ErrBackpressure, api.CodeBackpressure},
		api.CodeConflict:         {http.StatusConflict, api.ErrConflict, api.CodeConflict},
		api.CodeIDTaken:          {http.StatusConflict, api.ErrConflict, api.CodeConflict},
		api.CodeNotFound:         {http.StatusNotFound, api.ErrNotFound, api.CodeNotFound},
		api.CodeOutcomeUnknown:   {http.StatusGatewayTimeout, api.ErrOutcomeUnknown, api.CodeOutcomeUnknown},
		api.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, nil, ""},
		api.CodeInternal:         {http.StatusInternalServerError, nil, ""},
	}
	codes := api.Codes()
	if len(codes) != len(want) {
		t.Fatalf("Codes() has %d codes, the table %d", len(codes), len(want))
	}
	for _, code := range codes {
		w, ok := want[code]
		if !ok {
			t.Errorf("code %q is not in the table", code)
			continue
		}
		if got := api.Status(code); got != w.status {
			t.Errorf("Status(%q) = %d, want %d", code, got, w.status)
		}
		if got := api.Sentinel(code); got != w.err {
			t.Errorf("Sentinel(%q) = %v, want %v", code, got, w.err)
		}
		wrapped := fmt.Errorf("context: %w", w.err)
		if got := api.CodeOf(wrapped); w.err != nil && got != w.back {
			t.Errorf("CodeOf(wrapped %v) = %q, want %q", w.err, got, w.back)
		}
		// A status without a body maps to the same sentinel where the
		// status belongs to one code only.
		if s := api.StatusSentinel(w.status); s != nil && s != w.err {
			t.Errorf("StatusSentinel(%d) = %v, code %q has %v", w.status, s, code, w.err)
		}
	}
	if api.Sentinel("brand_new") != nil || api.Status("brand_new") != http.StatusInternalServerError {
		t.Error("an unknown code has a sentinel or a status other than 500")
	}
}

func TestCodeOf(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("disk on fire"), ""},
		{&api.ValidationError{Field: "name", Reason: "bad", Err: api.ErrInvalidEvent}, api.CodeInvalidEvent},
		{&api.ValidationError{Field: "data", Reason: "bad", Err: api.ErrSchemaViolation}, api.CodeSchemaViolation},
		{&api.ValidationError{Reason: "big", Err: api.ErrTooLarge}, api.CodeTooLarge},
		{fmt.Errorf("append: %w", api.ErrStoreFull), api.CodeBackpressure},
		{fmt.Errorf("publish: %w", api.ErrClosed), api.CodeBackpressure},
		// An unknown outcome is not backpressure, even when it is a timeout.
		{fmt.Errorf("append: %w (%w)", api.ErrOutcomeUnknown, context.DeadlineExceeded), api.CodeOutcomeUnknown},
		{errors.Join(api.ErrBackpressure, api.ErrOutcomeUnknown), api.CodeOutcomeUnknown},
		// Conflict wins over what it is joined with.
		{errors.Join(api.ErrNotFound, api.ErrConflict), api.CodeConflict},
	}
	for _, c := range cases {
		if got := api.CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestDecodeErrorBody(t *testing.T) {
	d, ok := api.DecodeErrorBody([]byte(`{"error":{"code":"invalid_event","message":"m","field":"name","index":2}}`))
	if !ok || d.Code != api.CodeInvalidEvent || d.Message != "m" || d.Field != "name" || d.Index == nil || *d.Index != 2 {
		t.Fatalf("decoded %+v, %v", d, ok)
	}
	if d, ok := api.DecodeErrorBody([]byte(`{"error":{"code":"conflict","index":-3}}`)); !ok || d.Index != nil {
		t.Errorf("negative index kept: %+v", d)
	}
	for _, b := range []string{"", "<html>502</html>", `{"error":"Bad Gateway"}`, `[1]`, `{"error":{"code":5}}`} {
		if d, ok := api.DecodeErrorBody([]byte(b)); ok && d.Code != "" {
			t.Errorf("DecodeErrorBody(%q) = %+v, true", b, d)
		}
	}
}

func FuzzDecodeErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"invalid_event","message":"m","field":"name","index":1}}`,
		`{"error":{"code":"rate_limited"}}`,
		`{"error":null}`,
		`{"error":{"index":-7,"code":5}}`,
		`{"error":{"index":1e99}}`,
		`not json`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := api.DecodeErrorBody(b)
		if !ok {
			if d != (api.ErrorDetail{}) {
				t.Fatalf("not ok but decoded %+v", d)
			}
			return
		}
		if d.Index != nil && *d.Index < 0 {
			t.Fatalf("index %d below 0", *d.Index)
		}
		// What decodes re-encodes to the same detail.
		out, err := json.Marshal(api.ErrorBody{Error: d})
		if err != nil {
			t.Fatal(err)
		}
		back, ok := api.DecodeErrorBody(out)
		if !ok || back.Code != d.Code || back.Message != d.Message || back.Field != d.Field ||
			(back.Index == nil) != (d.Index == nil) || (d.Index != nil && *back.Index != *d.Index) {
			t.Fatalf("%+v re-decodes as %+v", d, back)
		}
	})
}
