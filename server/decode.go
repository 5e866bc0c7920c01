package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// Limits bound what the server accepts. Zero fields take the defaults
// (DefaultLimits).
type Limits struct {
	// MaxBody is the largest request body, in bytes. Default 4 MiB.
	MaxBody int64 `json:"max_body,omitempty" yaml:"max_body,omitempty"`
	// MaxBatch is the most events one request may publish. Default 1,000.
	MaxBatch int `json:"max_batch,omitempty" yaml:"max_batch,omitempty"`
	// MaxEvent is the largest encoded event, in bytes. Default 1 MiB.
	MaxEvent int `json:"max_event,omitempty" yaml:"max_event,omitempty"`
	// MaxDepth is the deepest JSON nesting accepted. Default 64.
	MaxDepth int `json:"max_depth,omitempty" yaml:"max_depth,omitempty"`
}

// DefaultLimits returns the limits the server applies unless told otherwise.
func DefaultLimits() Limits {
	return Limits{MaxBody: 4 << 20, MaxBatch: 1000, MaxEvent: herald.DefaultMaxEventSize, MaxDepth: 64}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = d.MaxBatch
	}
	if l.MaxEvent <= 0 {
		l.MaxEvent = int(min(int64(d.MaxEvent), l.MaxBody))
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// Content types the publish endpoint understands.
const (
	ctJSON         = "application/json"
	ctCloudEvent   = "application/cloudevents+json"
	ctCloudBatch   = "application/cloudevents-batch+json"
	ctEventStream  = "text/event-stream"
	ceSpecVersion  = "1.0"
	headerExpected = "Herald-Expected-Version"
)

// readBody reads a request body of at most limit bytes. The read deadline
// that the server set for the request (WithBodyReadTimeout) bounds how long
// it waits; a body cut short is a 400, and the connection is then closed.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is larger than %d bytes", limit)
	}
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		// The limit applies to the body as sent and as unpacked.
		zr, err := gzip.NewReader(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return nil, badJSON("the body is not gzip")
		}
		defer zr.Close()
		body = zr
	default:
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidJSON, Index: -1,
			Message: fmt.Sprintf("Content-Encoding %q is not supported: send gzip or nothing", enc)}
	}
	buf := make([]byte, 0, min(limit+1, max(r.ContentLength+1, 512)))
	b, err := readAllInto(buf, io.LimitReader(body, limit+1))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, badJSON("the body did not arrive in time")
		}
		return nil, badJSON("could not read the body")
	}
	if int64(len(b)) > limit {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is larger than %d bytes", limit)
	}
	// The body is in: lift the deadline, which would otherwise end the
	// request's context (net/http watches the idle connection) while the
	// handler works.
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	return b, nil
}

// readAllInto appends all of r to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// checkDepth reports an error when the JSON text b nests objects and arrays
// deeper than max. It does not validate b otherwise.
func checkDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return badJSON("JSON nested deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// wireEvent is an event as a publisher sends it. Data is kept raw so that a
// missing "data" can be told from "{}".
type wireEvent struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Timestamp     time.Time         `json:"timestamp"`
	Data          json.RawMessage   `json:"data"`
	CorrelationID string            `json:"correlation_id"`
	CausationID   string            `json:"causation_id"`
	SourcePlugin  string            `json:"source_plugin"`
	Subject       string            `json:"subject"`
	Version       int               `json:"version"`
	Priority      herald.Priority   `json:"priority"`
	Metadata      map[string]string `json:"metadata"`
	// Position is output only: accepted, so that an exported event can be
	// published again as it is, and ignored.
	Position uint64 `json:"position"`
}

// envelope is a top-level object: one event, or {"events":[...]}.
type envelope struct {
	wireEvent
	Events []json.RawMessage `json:"events"`
}

func (w *wireEvent) event(index int) (*herald.Event, error) {
	if len(w.Data) == 0 {
		return nil, &herald.ValidationError{Index: index, Field: "data", Reason: "is required (it may be {})", Err: herald.ErrInvalidEvent}
	}
	return &herald.Event{
		ID: w.ID, Name: w.Name, Timestamp: w.Timestamp, Data: w.Data,
		CorrelationID: w.CorrelationID, CausationID: w.CausationID, SourcePlugin: w.SourcePlugin,
		Subject: w.Subject, Version: w.Version, Priority: w.Priority, Metadata: w.Metadata,
	}, nil
}

// decodeEvents parses the body of POST /v1/events by its Content-Type:
// native JSON (one event, an array, or {"events":[...]}), or CloudEvents in
// structured, batch or binary mode. It enforces the batch, event and depth
// limits; the body limit is enforced while reading.
func decodeEvents(ctx context.Context, h http.Header, body []byte, lim Limits) ([]*herald.Event, error) {
	ct, err := contentType(h)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		return nil, badJSON("the body is not valid UTF-8: JSON text must be")
	}
	if h.Get("Ce-Specversion") != "" && ct != ctCloudEvent && ct != ctCloudBatch {
		return decodeBinaryCloudEvent(ctx, h, body, lim)
	}
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	switch ct {
	case ctJSON, "":
		return decodeNative(body, lim)
	case ctCloudEvent:
		if len(body) > lim.MaxEvent {
			return nil, tooLargeEvent(0, lim)
		}
		e, err := decodeStructured(body, 0)
		if err != nil {
			return nil, err
		}
		return []*herald.Event{e}, nil
	case ctCloudBatch:
		raws, err := splitArray(body, lim)
		if err != nil {
			return nil, err
		}
		events := make([]*herald.Event, len(raws))
		for i, raw := range raws {
			if events[i], err = decodeStructured(raw, i); err != nil {
				return nil, err
			}
		}
		return events, nil
	}
	return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidJSON, Index: -1,
		Message: fmt.Sprintf("Content-Type %q is not supported: send %s, %s, %s, or CloudEvents binary mode (ce-* headers)",
			ct, ctJSON, ctCloudEvent, ctCloudBatch)}
}

// contentType returns the media type of h's Content-Type, lower case and
// without parameters; "" when there is none.
func contentType(h http.Header) (string, error) {
	v := h.Get("Content-Type")
	switch v {
	case "":
		return "", nil
	case ctJSON, ctCloudEvent, ctCloudBatch:
		return v, nil
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return "", &apiError{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidJSON, Index: -1,
			Message: "the Content-Type header is malformed"}
	}
	return mt, nil
}

func tooLargeEvent(i int, lim Limits) error {
	return &herald.ValidationError{Index: i, Reason: fmt.Sprintf("the event is larger than %d bytes", lim.MaxEvent), Err: herald.ErrTooLarge}
}

func decodeNative(body []byte, lim Limits) ([]*herald.Event, error) {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return nil, badJSON("the body is empty: send an event, an array of events or {\"events\":[...]}")
	}
	var raws []json.RawMessage
	switch t[0] {
	case '[':
		return decodeNativeArray(body, lim)
	case '{':
		var env envelope
		if err := strictUnmarshal(body, &env); err != nil {
			return nil, jsonError(err, 0)
		}
		if env.Events == nil {
			if len(body) > lim.MaxEvent {
				return nil, tooLargeEvent(0, lim)
			}
			e, err := env.wireEvent.event(0)
			if err != nil {
				return nil, err
			}
			return []*herald.Event{e}, nil
		}
		if env.Name != "" {
			return nil, badRequest("events", "a body has either an event or \"events\", not both")
		}
		if err := checkBatch(len(env.Events), lim); err != nil {
			return nil, err
		}
		raws = env.Events
	default:
		return nil, badJSON("the body must be a JSON object or array")
	}
	events := make([]*herald.Event, len(raws))
	for i, raw := range raws {
		if len(raw) > lim.MaxEvent {
			return nil, tooLargeEvent(i, lim)
		}
		var w wireEvent
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, jsonError(err, i)
		}
		e, err := w.event(i)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	return events, nil
}

// decodeNativeArray decodes a JSON array of events in one pass, checking
// the batch and event limits as it goes.
func decodeNativeArray(body []byte, lim Limits) ([]*herald.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err, -1)
	}
	var events []*herald.Event
	for i := 0; dec.More(); i++ {
		if i >= lim.MaxBatch {
			return nil, checkBatch(i+1, lim)
		}
		start := dec.InputOffset()
		var w wireEvent
		if err := dec.Decode(&w); err != nil {
			return nil, jsonError(err, i)
		}
		if dec.InputOffset()-start > int64(lim.MaxEvent) {
			return nil, tooLargeEvent(i, lim)
		}
		e, err := w.event(i)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, jsonError(err, -1)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badJSON("the body has data after the array")
	}
	if err := checkBatch(len(events), lim); err != nil {
		return nil, err
	}
	return events, nil
}

// splitArray parses a JSON array of objects into its raw elements,
// checking the batch limits.
func splitArray(body []byte, lim Limits) ([]json.RawMessage, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, badJSON("the body must be a JSON array of events")
		}
		return nil, jsonError(err, -1)
	}
	if err := checkBatch(len(raws), lim); err != nil {
		return nil, err
	}
	return raws, nil
}

func checkBatch(n int, lim Limits) error {
	if n == 0 {
		return badRequest("events", "the batch is empty")
	}
	if n > lim.MaxBatch {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "a batch holds at most %d events, this one has %d", lim.MaxBatch, n)
	}
	return nil
}

// strictUnmarshal is json.Unmarshal that refuses fields v does not have: a
// misspelt field ("subjcet", "expected_version") is an error, never
// dropped silently.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// unknownField returns the field an encoding/json "unknown field" error
// names.
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	f, uerr := strconv.Unquote(msg[len(prefix):])
	return f, uerr == nil
}

// jsonError turns an encoding/json error into an API error: invalid_json
// for syntax and unknown fields, invalid_event naming the field for a
// wrong type.
func jsonError(err error, index int) error {
	if f, ok := unknownField(err); ok {
		e := badJSON("unknown field %q: see the API reference for the fields of an event", f)
		e.Field = f
		e.Index = index
		return e
	}
	var ve *herald.ValidationError
	if errors.As(err, &ve) {
		ve.Index = max(index, 0)
		return ve
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := strings.TrimPrefix(te.Field, "wireEvent.")
		var e *apiError
		if field == "" {
			e = badRequest("", "an event must be a JSON object")
		} else {
			e = badRequest(field, "field %s must be a JSON %s", field, jsonKind(te.Type.Kind().String()))
		}
		e.Index = index
		return e
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		e := badRequest("timestamp", "timestamp must be an RFC 3339 time")
		e.Index = index
		return e
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		e := badJSON("the body is not valid JSON (at byte %d)", se.Offset)
		e.Index = index
		return e
	}
	e := badJSON("the body is not valid JSON")
	e.Index = index
	return e
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "integer"
	case k == "map", k == "struct":
		return "object"
	case k == "slice":
		return "array"
	}
	return k
}
