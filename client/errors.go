package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/api"
)

// Error is an error answer from a herald server. It wraps the herald
// sentinel that matches its code, so errors.Is(err, api.ErrNotFound) and
// the like work across the network as they do in-process.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the server's error code ("invalid_event", "not_found", ...);
	// empty when the answer carried no herald error body.
	Code string
	// Message says what went wrong, for a person.
	Message string
	// Field names the offending field ("name", "data.duration"), if any.
	Field string
	// Index is the offending event's place in its batch, or -1 when the
	// server named none.
	Index int
	// RetryAfter is how long the server asked the caller to wait before
	// trying again (429 and 503 answers); 0 when it did not say.
	RetryAfter time.Duration

	err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if b.Len() == 0 {
		if e.Code != "" {
			b.WriteString(strings.ReplaceAll(e.Code, "_", " "))
		} else {
			b.WriteString(strings.ToLower(http.StatusText(e.Status)))
		}
	}
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	if e.Index >= 0 && !strings.Contains(e.Message, fmt.Sprintf("event %d", e.Index)) {
		fmt.Fprintf(&b, " (event %d of the batch)", e.Index)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the herald sentinel error matching the code, or nil for
// codes that have none ("internal", unknown codes).
func (e *Error) Unwrap() error { return e.err }

// sentinel returns herald's sentinel error for an error code of the API,
// or nil for codes that have none ("internal", codes it does not know).
func sentinel(code string) error {
	switch code {
	case "invalid_json", "invalid_event":
		return api.ErrInvalidEvent
	case "schema_violation":
		return api.ErrSchemaViolation
	case "unauthorized":
		return api.ErrUnauthorized
	case "forbidden":
		return api.ErrForbidden
	case "payload_too_large":
		return api.ErrTooLarge
	case "rate_limited":
		return api.ErrRateLimited
	case "backpressure":
		return api.ErrBackpressure
	case "conflict":
		return api.ErrConflict
	case "not_found":
		return api.ErrNotFound
	}
	return nil
}

// statusSentinel returns the sentinel of a status, for answers without a
// herald error body (a proxy in the way, an old server).
func statusSentinel(status int) error {
	switch status {
	case http.StatusUnauthorized:
		return api.ErrUnauthorized
	case http.StatusForbidden:
		return api.ErrForbidden
	case http.StatusNotFound:
		return api.ErrNotFound
	case http.StatusConflict:
		return api.ErrConflict
	case http.StatusRequestEntityTooLarge:
		return api.ErrTooLarge
	case http.StatusTooManyRequests:
		return api.ErrRateLimited
	}
	return nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeError turns a non-2xx answer into an *Error. It reads at most
// maxErrorBody bytes of body.
func decodeError(status int, header http.Header, body io.Reader) *Error {
	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	return parseError(status, header.Get("Retry-After"), raw)
}

// parseError builds the *Error of an answer with the given status,
// Retry-After header value and body. It never fails: a body that is not a
// herald error body leaves Code empty and the status picks the sentinel.
func parseError(status int, retryAfter string, raw []byte) *Error {
	e := &Error{Status: status, Index: -1, RetryAfter: parseRetryAfter(retryAfter, time.Now())}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
			Index   *int   `json:"index"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Code = body.Error.Code
		e.Message = body.Error.Message
		e.Field = body.Error.Field
		if body.Error.Index != nil && *body.Error.Index >= 0 {
			e.Index = *body.Error.Index
		}
	}
	if e.Code != "" {
		e.err = sentinel(e.Code)
	} else {
		e.err = statusSentinel(status)
	}
	return e
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 24*3600 {
			n = 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// IsRetryable reports whether err is worth retrying later as it is: a
// rate limit, backpressure, or a server error (5xx).
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || errors.Is(e, api.ErrRateLimited) || errors.Is(e, api.ErrBackpressure)
	}
	return api.IsTemporary(err)
}
