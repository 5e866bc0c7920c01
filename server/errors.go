package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// The error codes of the HTTP API. Every error answer carries one of them in
// {"error":{"code":...}}; the client maps them back to herald's sentinels.
const (
	CodeInvalidJSON     = "invalid_json"
	CodeInvalidEvent    = "invalid_event"
	CodeSchemaViolation = "schema_violation"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeTooLarge        = "payload_too_large"
	CodeRateLimited     = "rate_limited"
	CodeBackpressure    = "backpressure"
	CodeConflict        = "conflict"
	CodeNotFound        = "not_found"
	CodeInternal        = "internal"
)

// apiError is an error answer: a status, a code of the API and a message
// meant for the caller. Its message never carries internal detail.
type apiError struct {
	Status     int
	Code       string
	Message    string
	Field      string
	Index      int // -1: none
	RetryAfter time.Duration
	// cause is logged, never sent.
	cause error
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Index: -1}
}

func badJSON(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, CodeInvalidJSON, format, args...)
}

func badRequest(field, format string, args ...any) *apiError {
	e := newError(http.StatusBadRequest, CodeInvalidEvent, format, args...)
	e.Field = field
	return e
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, CodeNotFound, format, args...)
}

// toAPIError maps any error to the answer the caller gets. Errors herald
// does not know become a 500 "internal" whose message says nothing of the
// cause; the cause is kept for the log.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ve *herald.ValidationError
	if errors.As(err, &ve) {
		e := &apiError{Status: http.StatusBadRequest, Code: CodeInvalidEvent, Field: ve.Field, Index: ve.Index,
			Message: cleanMessage(ve.Error())}
		switch {
		case errors.Is(ve.Err, herald.ErrSchemaViolation):
			e.Code = CodeSchemaViolation
		case errors.Is(ve.Err, herald.ErrTooLarge):
			e.Status, e.Code = http.StatusRequestEntityTooLarge, CodeTooLarge
		}
		return e
	}
	msg := cleanMessage(err.Error())
	if looksInternal(msg) {
		msg = sentinelMessage(err)
	}
	switch {
	case errors.Is(err, herald.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrSchemaViolation):
		return &apiError{Status: http.StatusBadRequest, Code: CodeSchemaViolation, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrInvalidEvent), errors.Is(err, herald.ErrInvalidSchema):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidEvent, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrUnauthorized):
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrForbidden):
		return &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: msg, Index: -1}
	case errors.Is(err, herald.ErrRateLimited):
		return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: msg, Index: -1, RetryAfter: time.Second}
	case errors.Is(err, herald.ErrBackpressure), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure,
			Message: "the server is busy, retry later", Index: -1, RetryAfter: time.Second, cause: err}
	case errors.Is(err, herald.ErrStoreFull):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure,
			Message: "the store is full; retry once space is freed", Index: -1, RetryAfter: 30 * time.Second, cause: err}
	case errors.Is(err, context.Canceled):
		// The caller went away; nobody reads this answer.
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure,
			Message: "the request was canceled", Index: -1, RetryAfter: time.Second}
	case errors.Is(err, herald.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure,
			Message: "the server is shutting down, retry later", Index: -1, RetryAfter: 5 * time.Second, cause: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal,
		Message: "internal error", Index: -1, cause: err}
}

// internalMarks are what a message must not show a caller: file names,
// stacks, SQL, backends' own wording.
var internalMarks = []string{".go:", "goroutine", "sqlite", "SQLITE", "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "nats:", "jetstream"}

// absPath finds something that looks like an absolute file path.
var absPath = regexp.MustCompile(`(^|[\s"'(=:])/[A-Za-z0-9._-]+/`)

// looksInternal reports whether msg shows internal detail.
func looksInternal(msg string) bool {
	for _, m := range internalMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return absPath.MatchString(msg)
}

// sentinelMessage is the message of the herald sentinel err wraps, for
// when err's own message shows too much.
func sentinelMessage(err error) string {
	for _, s := range []error{herald.ErrConflict, herald.ErrNotFound, herald.ErrSchemaViolation, herald.ErrInvalidEvent,
		herald.ErrTooLarge, herald.ErrUnauthorized, herald.ErrForbidden, herald.ErrRateLimited} {
		if errors.Is(err, s) {
			return cleanMessage(s.Error())
		}
	}
	return "internal error"
}

// cleanMessage removes herald's "herald: " prefixes from an error message.
func cleanMessage(s string) string {
	return strings.ReplaceAll(s, "herald: ", "")
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Index   *int   `json:"index,omitempty"`
}

// writeError sends err as the API's JSON error body, with Retry-After on
// 429 and 503. Internal errors are logged with their cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 && ae.cause != nil {
		lvl := slog.LevelWarn
		if ae.Code == CodeInternal {
			lvl = slog.LevelError
		}
		s.log.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", r.URL.Path, "err", ae.cause)
	}
	body := errorBody{Error: errorFields{Code: ae.Code, Message: ae.Message, Field: ae.Field}}
	if ae.Index >= 0 {
		i := ae.Index
		body.Error.Index = &i
	}
	h := w.Header()
	if ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable {
		ra := ae.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		h.Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
	}
	if ae.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="herald"`)
	}
	writeJSON(w, ae.Status, body)
}

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
