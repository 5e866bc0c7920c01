package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// TestErrorCodesMapBackToSentinels checks the server's side of the code
// table: every herald sentinel becomes the code that api.Sentinel maps
// back to it (the retryable ones that have no code of their own become
// backpressure), with api.Status's status and, on 429 and 503, a
// Retry-After the client reads back.
func TestErrorCodesMapBackToSentinels(t *testing.T) {
	cases := []struct {
		err  error
		back error
	}{
		{herald.ErrInvalidEvent, herald.ErrInvalidEvent},
		{herald.ErrSchemaViolation, herald.ErrSchemaViolation},
		{herald.ErrUnauthorized, herald.ErrUnauthorized},
		{herald.ErrForbidden, herald.ErrForbidden},
		{herald.ErrTooLarge, herald.ErrTooLarge},
		{herald.ErrRateLimited, herald.ErrRateLimited},
		{herald.ErrBackpressure, herald.ErrBackpressure},
		{herald.ErrConflict, herald.ErrConflict},
		{herald.ErrNotFound, herald.ErrNotFound},
		{herald.ErrStoreFull, herald.ErrBackpressure},
		{herald.ErrClosed, herald.ErrBackpressure},
		{context.DeadlineExceeded, herald.ErrBackpressure},
		{herald.ErrOutcomeUnknown, herald.ErrOutcomeUnknown},
		{fmt.Errorf("%w (%w)", herald.ErrOutcomeUnknown, context.DeadlineExceeded), herald.ErrOutcomeUnknown},
		{herald.ErrInvalidSchema, herald.ErrInvalidEvent},
		{&herald.ValidationError{Field: "data", Reason: "x", Err: herald.ErrSchemaViolation}, herald.ErrSchemaViolation},
		{&herald.ValidationError{Reason: "x", Err: herald.ErrTooLarge}, herald.ErrTooLarge},
		{fmt.Errorf("disk on fire"), nil},
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	for _, c := range cases {
		err := fmt.Errorf("doing it: %w", c.err)
		ae := toAPIError(err)
		if got := api.Sentinel(ae.Code); got != c.back {
			t.Errorf("%v: code %q maps back to %v, want %v", c.err, ae.Code, got, c.back)
		}
		if ae.Status != api.Status(ae.Code) {
			t.Errorf("%v: status %d, code %q has %d", c.err, ae.Status, ae.Code, api.Status(ae.Code))
		}
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest(http.MethodGet, "/v1/events", nil), err)
		d, ok := api.DecodeErrorBody(rec.Body.Bytes())
		if !ok || d.Code != ae.Code || rec.Code != ae.Status {
			t.Errorf("%v: wrote %d %s", c.err, rec.Code, rec.Body)
		}
		if ra := rec.Header().Get("Retry-After"); (ra != "") != (rec.Code == 429 || rec.Code == 503) {
			t.Errorf("%v: status %d with Retry-After %q", c.err, rec.Code, ra)
		} else if ra != "" && api.ParseRetryAfter(ra, time.Now()) <= 0 {
			t.Errorf("%v: Retry-After %q does not read back", c.err, ra)
		}
	}
}
