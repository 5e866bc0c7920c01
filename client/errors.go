package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
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
	// trying again (429 and 503 answers), at most api.MaxRetryAfter; 0 when
	// it did not say.
	RetryAfter time.Duration
	// CurrentVersion is, on the conflict of a publish with an expected
	// version, the subject's version when the server answered; nil
	// otherwise.
	CurrentVersion *uint64

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
	e := &Error{Status: status, Index: -1, RetryAfter: api.ParseRetryAfter(retryAfter, time.Now())}
	if d, ok := api.DecodeErrorBody(raw); ok {
		e.Code, e.Message, e.Field, e.CurrentVersion = d.Code, d.Message, d.Field, d.CurrentVersion
		if d.Index != nil {
			e.Index = *d.Index
		}
	}
	if e.Code != "" {
		e.err = api.Sentinel(e.Code)
	} else {
		e.err = api.StatusSentinel(status)
	}
	return e
}

// IsRetryable reports whether err is worth retrying later as it is: a
// rate limit, backpressure, an unknown outcome (api.ErrOutcomeUnknown:
// retry with the same event id, which Publish has set), or a server error
// (5xx).
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || errors.Is(e, api.ErrRateLimited) || errors.Is(e, api.ErrBackpressure)
	}
	return api.IsTemporary(err)
}
