package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The error codes of the HTTP API. Every error answer carries one of them
// in its ErrorBody; Sentinel maps each back to herald's sentinel error and
// Status to its HTTP status.
const (
	// CodeInvalidJSON: the body is not the JSON asked for (400,
	// ErrInvalidEvent).
	CodeInvalidJSON = "invalid_json"
	// CodeInvalidEvent: an event, or a request's field, is invalid (400,
	// ErrInvalidEvent).
	CodeInvalidEvent = "invalid_event"
	// CodeSchemaViolation: an event's data does not satisfy its schema
	// (400, ErrSchemaViolation).
	CodeSchemaViolation = "schema_violation"
	// CodeUnauthorized: no valid token (401, ErrUnauthorized).
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: the token may not do this (403, ErrForbidden).
	CodeForbidden = "forbidden"
	// CodeTooLarge: an event, a batch or the body is over its limit (413,
	// ErrTooLarge).
	CodeTooLarge = "payload_too_large"
	// CodeRateLimited: the token's rate limit is exceeded; Retry-After says
	// when to come back (429, ErrRateLimited).
	CodeRateLimited = "rate_limited"
	// CodeBackpressure: the server is busy, full or shutting down;
	// Retry-After says when to come back (503, ErrBackpressure).
	CodeBackpressure = "backpressure"
	// CodeOutcomeUnknown: the event was sent to the store, which did not
	// confirm it in time (a cluster without quorum, a timeout): it may be
	// stored or not. Retry with the same event id, never a new one (504,
	// ErrOutcomeUnknown).
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeConflict: an expected subject version did not match, or the
	// request conflicts with the server's state (409, ErrConflict).
	CodeConflict = "conflict"
	// CodeIDTaken: an event's id is already stored by another identity
	// (another token's identity); the event was not stored. Publish it
	// with another id. The answer tells nothing of the stored event (409,
	// ErrConflict).
	CodeIDTaken = "id_taken"
	// CodeNotFound: no such event, subscription, dead letter, schema or
	// token (404, ErrNotFound).
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed: the path exists but not with this method; the
	// Allow header lists the methods it takes (405, no sentinel).
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeInternal: the server failed; the message says nothing more (500,
	// no sentinel).
	CodeInternal = "internal"
)

// Codes returns every error code of the API, for tests and documentation.
func Codes() []string {
	return []string{CodeInvalidJSON, CodeInvalidEvent, CodeSchemaViolation, CodeUnauthorized, CodeForbidden,
		CodeTooLarge, CodeRateLimited, CodeBackpressure, CodeOutcomeUnknown, CodeConflict, CodeIDTaken, CodeNotFound, CodeMethodNotAllowed, CodeInternal}
}

// Sentinel returns herald's sentinel error for an error code, or nil for
// CodeInternal and codes it does not know.
func Sentinel(code string) error {
	switch code {
	case CodeInvalidJSON, CodeInvalidEvent:
		return ErrInvalidEvent
	case CodeSchemaViolation:
		return ErrSchemaViolation
	case CodeUnauthorized:
		return ErrUnauthorized
	case CodeForbidden:
		return ErrForbidden
	case CodeTooLarge:
		return ErrTooLarge
	case CodeRateLimited:
		return ErrRateLimited
	case CodeBackpressure:
		return ErrBackpressure
	case CodeOutcomeUnknown:
		return ErrOutcomeUnknown
	case CodeConflict, CodeIDTaken:
		return ErrConflict
	case CodeNotFound:
		return ErrNotFound
	}
	return nil
}

// Status returns the HTTP status of an error code: 500 for CodeInternal and
// codes it does not know.
func Status(code string) int {
	switch code {
	case CodeInvalidJSON, CodeInvalidEvent, CodeSchemaViolation:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeBackpressure:
		return http.StatusServiceUnavailable
	case CodeOutcomeUnknown:
		return http.StatusGatewayTimeout
	case CodeConflict, CodeIDTaken:
		return http.StatusConflict
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// CodeOf returns the error code of the first sentinel err wraps, tested in
// this order: ErrOutcomeUnknown (nothing else about a write is certain
// then), ErrConflict, ErrNotFound, ErrSchemaViolation,
// ErrInvalidEvent, ErrTooLarge, ErrUnauthorized, ErrForbidden,
// ErrRateLimited, ErrBackpressure; then ErrStoreFull and ErrClosed, which
// a caller may retry later, are CodeBackpressure. It returns "" when err
// wraps none of them. A *ValidationError's code is that of the sentinel it
// wraps.
func CodeOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrOutcomeUnknown):
		return CodeOutcomeUnknown
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrSchemaViolation):
		return CodeSchemaViolation
	case errors.Is(err, ErrInvalidEvent):
		return CodeInvalidEvent
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrBackpressure), errors.Is(err, ErrStoreFull), errors.Is(err, ErrClosed):
		return CodeBackpressure
	}
	return ""
}

// StatusSentinel returns the sentinel error of an HTTP status, for answers
// that carry no ErrorBody (a proxy in the way, an old server), or nil.
func StatusSentinel(status int) error {
	switch status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusTooManyRequests:
		return ErrRateLimited
	case http.StatusGatewayTimeout:
		// A proxy that gave up waiting for the server: the request may
		// have been carried out.
		return ErrOutcomeUnknown
	}
	return nil
}

// ErrorBody is the body of every error answer:
//
//	{"error":{"code":"invalid_event","message":"...","field":"name","index":0}}
//	{"error":{"code":"conflict","message":"...","current_version":3}}
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Message says what went wrong, for a person; it never carries the
	// server's internal detail.
	Message string `json:"message"`
	// Field names the offending field in wire form ("name",
	// "data.duration"), when there is one.
	Field string `json:"field,omitempty"`
	// Index is the offending event's place in its batch, when there is one.
	Index *int `json:"index,omitempty"`
	// CurrentVersion is, on the 409 of a conditional publish
	// (Herald-Expected-Version), the subject's version when the server
	// answered.
	CurrentVersion *uint64 `json:"current_version,omitempty"`
}

// DecodeErrorBody reads an error answer's body. It reports false when b is
// not JSON of ErrorBody's shape (a proxy's HTML page, another JSON shape);
// the code may still be empty. A negative index is dropped.
func DecodeErrorBody(b []byte) (ErrorDetail, bool) {
	var body ErrorBody
	if err := json.Unmarshal(b, &body); err != nil {
		return ErrorDetail{}, false
	}
	if body.Error.Index != nil && *body.Error.Index < 0 {
		body.Error.Index = nil
	}
	return body.Error, true
}
