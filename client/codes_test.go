package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

// TestEveryCodeMapsBackThroughTheClient answers a call with each error code
// of the API, as the server writes it, and checks that the client's error
// wraps the code's sentinel (the same value as herald's), keeps the code,
// status, field, index and Retry-After.
func TestEveryCodeMapsBackThroughTheClient(t *testing.T) {
	for _, code := range api.Codes() {
		t.Run(code, func(t *testing.T) {
			status := api.Status(code)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
					w.Header().Set("Retry-After", api.FormatRetryAfter(7*time.Second))
				}
				i := 3
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: "it went wrong", Field: "name", Index: &i}})
			}))
			defer hs.Close()
			c, err := client.New(hs.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Correlation(context.Background(), "x")
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *client.Error", err)
			}
			if ce.Code != code || ce.Status != status || ce.Field != "name" || ce.Index != 3 {
				t.Errorf("got %+v", ce)
			}
			if s := api.Sentinel(code); s != nil && !errors.Is(err, s) {
				t.Errorf("errors.Is(err, %v) = false", s)
			}
			if code == api.CodeInternal && ce.Unwrap() != nil {
				t.Errorf("internal wraps %v", ce.Unwrap())
			}
			if ce.Unwrap() != nil && ce.Unwrap() != api.Sentinel(code) {
				t.Errorf("wraps %v, want %v", ce.Unwrap(), api.Sentinel(code))
			}
			wantRA := time.Duration(0)
			if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
				wantRA = 7 * time.Second
			}
			if ce.RetryAfter != wantRA {
				t.Errorf("RetryAfter %v, want %v", ce.RetryAfter, wantRA)
			}
		})
	}
}

// TestSentinelsAreHeralds pins that the client's sentinels are herald's
// own values, so code written against the bus works against the client.
func TestSentinelsAreHeralds(t *testing.T) {
	pairs := []struct{ a, h error }{
		{api.ErrInvalidEvent, herald.ErrInvalidEvent}, {api.ErrSchemaViolation, herald.ErrSchemaViolation},
		{api.ErrUnauthorized, herald.ErrUnauthorized}, {api.ErrForbidden, herald.ErrForbidden},
		{api.ErrTooLarge, herald.ErrTooLarge}, {api.ErrRateLimited, herald.ErrRateLimited},
		{api.ErrBackpressure, herald.ErrBackpressure}, {api.ErrConflict, herald.ErrConflict},
		{api.ErrNotFound, herald.ErrNotFound}, {api.ErrClosed, herald.ErrClosed},
		{api.ErrOutcomeUnknown, herald.ErrOutcomeUnknown},
	}
	for _, p := range pairs {
		if p.a != p.h {
			t.Errorf("api's %v is not herald's", p.a)
		}
	}
}
