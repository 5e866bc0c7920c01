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
	"github.com/heraldhq/herald/api"
)

// The error codes of the HTTP API. Every error answer carries one of them in
// {"error":{"code":...}}; the client maps them back to herald's sentinels.
// They are api's codes, where each is documented with its status and
// sentinel.
const (
	CodeInvalidJSON      = api.CodeInvalidJSON
	CodeInvalidEvent     = api.CodeInvalidEvent
	CodeSchemaViolation  = api.CodeSchemaViolation
	CodeUnauthorized     = api.CodeUnauthorized
	CodeForbidden        = api.CodeForbidden
	CodeTooLarge         = api.CodeTooLarge
	CodeRateLimited      = api.CodeRateLimited
	CodeBackpressure     = api.CodeBackpressure
	CodeOutcomeUnknown   = api.CodeOutcomeUnknown
	CodeConflict         = api.CodeConflict
	CodeIDTaken          = api.CodeIDTaken
	CodeNotFound         = api.CodeNotFound
	CodeMethodNotAllowed = api.CodeMethodNotAllowed
	CodeInternal         = api.CodeInternal
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
	// CurrentVersion is the subject's version on the 409 of a conditional
	// publish.
	CurrentVersion *uint64
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

// toAPIError maps any error to the answer the caller gets: the code of
// the sentinel it wraps (api.CodeOf) with that code's status. Errors herald
// does not know become a 500 "internal" whose message says nothing of the
// cause; the cause is kept for the log.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var de *herald.DamagedEventError
	if errors.As(err, &de) {
		return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Index: -1, cause: err,
			Message: fmt.Sprintf("the stored event at position %d is damaged and cannot be read; read on after it (after=%d)", de.Position, de.Position)}
	}
	var ve *herald.ValidationError
	if errors.As(err, &ve) {
		code := api.CodeOf(ve.Err)
		if code != CodeSchemaViolation && code != CodeTooLarge {
			code = CodeInvalidEvent
		}
		// The message leaves the index out: the body's "index" says which
		// event it is, and a single event is no "event 0".
		msg := ve.Err.Error() + ":"
		if ve.Field != "" {
			msg += " field " + ve.Field + ":"
		}
		return &apiError{Status: api.Status(code), Code: code, Field: ve.Field, Index: ve.Index,
			Message: cleanMessage(msg + " " + ve.Reason)}
	}
	code := api.CodeOf(err)
	if errors.Is(err, herald.ErrInvalidSchema) && code != CodeConflict && code != CodeNotFound && code != CodeSchemaViolation {
		code = CodeInvalidEvent
	}
	if code == CodeOutcomeUnknown {
		return &apiError{Status: api.Status(code), Code: code, Index: -1, cause: err,
			Message: "the outcome is unknown: the store did not confirm the write in time, the event may be stored; retry with the same id"}
	}
	if code != "" && code != CodeBackpressure {
		msg := cleanMessage(err.Error())
		if looksInternal(msg) {
			msg = sentinelMessage(code)
		}
		e := &apiError{Status: api.Status(code), Code: code, Message: msg, Index: -1}
		if code == CodeRateLimited {
			e.RetryAfter = time.Second
		}
		return e
	}
	switch {
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

// sentinelMessage is the message of code's sentinel, for when an error's
// own message shows too much.
func sentinelMessage(code string) string {
	if s := api.Sentinel(code); s != nil {
		return cleanMessage(s.Error())
	}
	return "internal error"
}

// cleanMessage removes herald's "herald: " prefixes from an error message.
func cleanMessage(s string) string {
	return strings.ReplaceAll(s, "herald: ", "")
}

// errorBody and errorFields are the error answer's JSON form.
type (
	errorBody   = api.ErrorBody
	errorFields = api.ErrorDetail
)

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
	body := errorBody{Error: errorFields{Code: ae.Code, Message: ae.Message, Field: ae.Field, CurrentVersion: ae.CurrentVersion}}
	if ae.Index >= 0 {
		i := ae.Index
		body.Error.Index = &i
	}
	h := w.Header()
	if ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", api.FormatRetryAfter(ae.RetryAfter))
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
