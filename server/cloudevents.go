package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/heraldhq/herald"
)

// The CloudEvents extension attributes herald maps to its own fields.
const (
	extCorrelation = "correlationid"
	extCausation   = "causationid"
	extDataVersion = "dataversion"
	extPriority    = "priority"
	extSequence    = "sequence"
	// extMetadata holds, as a JSON object of strings, the metadata entries
	// whose keys cannot be extension attributes of their own: keys that
	// are not 1 to 20 of [a-z0-9] ("X-Trace-Id", "tenant_id") and the
	// names of the attributes above (reservedCE). The other entries are
	// extension attributes named after their keys ("traceparent").
	// Reading a CloudEvent, herald merges both back into metadata, so the
	// metadata survives a trip through CloudEvents whole.
	extMetadata = "heraldmetadata"
)

// defaultCESource is the CloudEvents source of an event without source_plugin
// (CloudEvents requires a non-empty source).
const defaultCESource = "herald"

// decodeStructured parses one CloudEvent in structured mode (JSON).
func decodeStructured(raw []byte, index int) (*herald.Event, error) {
	if err := checkCEAttributes(raw, index); err != nil {
		return nil, err
	}
	var ce event.Event
	if err := json.Unmarshal(raw, &ce); err != nil {
		e := badRequest("", "not a valid CloudEvent: %s", ceReason(err))
		e.Index = index
		if !json.Valid(raw) {
			e.Code = CodeInvalidJSON
		}
		return nil, e
	}
	return fromCloudEvent(&ce, index)
}

// decodeBinaryCloudEvent parses a CloudEvent in binary mode: attributes in
// ce-* headers, the data in the body.
func decodeBinaryCloudEvent(ctx context.Context, h http.Header, body []byte, lim Limits) ([]*herald.Event, error) {
	if len(body) > lim.MaxEvent {
		return nil, tooLargeEvent(0, lim)
	}
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	msg := cehttp.NewMessage(unescapeCEHeaders(h), io.NopCloser(bytes.NewReader(body)))
	ce, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, badRequest("", "not a valid CloudEvent in binary mode: %s", ceReason(err))
	}
	e, err := fromCloudEvent(ce, 0)
	if err != nil {
		return nil, err
	}
	return []*herald.Event{e}, nil
}

// unescapeCEHeaders returns h with the percent-encoding of the CloudEvents
// HTTP binding undone in the ce-* headers.
func unescapeCEHeaders(h http.Header) http.Header {
	out, cloned := h, false
	for k, vs := range h {
		if len(k) < 3 || !strings.EqualFold(k[:3], "ce-") || len(vs) == 0 || !strings.Contains(vs[0], "%") {
			continue
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			continue
		}
		if !cloned {
			out, cloned = h.Clone(), true
		}
		out[k] = []string{v}
	}
	return out
}

// ceReason shortens an SDK error to one line for the caller.
func ceReason(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	// The SDK's JSON parser appends the bytes around a mistake; they echo
	// the caller's input and its own internals.
	if i := strings.Index(s, ", error found in"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// fromCloudEvent maps a CloudEvent to a herald event: type→name,
// source→source_plugin, id, time→timestamp, subject, and the extensions
// correlationid, causationid, dataversion, priority. The entries of the
// heraldmetadata extension (a JSON object of strings) and the other
// extensions go to metadata. The data must be JSON (a JSON object, as for
// every event).
func fromCloudEvent(ce *event.Event, index int) (*herald.Event, error) {
	fail := func(field, format string, args ...any) error {
		return &herald.ValidationError{Index: index, Field: field, Reason: fmt.Sprintf(format, args...), Err: herald.ErrInvalidEvent}
	}
	if err := ce.Validate(); err != nil {
		e := badRequest("", "not a valid CloudEvent: %s", ceReason(err))
		e.Index = index
		return nil, e
	}
	e := &herald.Event{
		ID: ce.ID(), Name: ce.Type(), SourcePlugin: ce.Source(), Subject: ce.Subject(),
		Timestamp: ce.Time(),
	}
	if mt := ce.DataMediaType(); mt != "" && mt != ctJSON && !strings.HasSuffix(mt, "+json") {
		return nil, fail("datacontenttype", "herald events carry JSON data, not %q", mt)
	}
	data := ce.Data()
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	e.Data = json.RawMessage(bytes.Clone(data))
	for name, v := range ce.Extensions() {
		switch name {
		case extCorrelation, extCausation:
			s, err := types.ToString(v)
			if err != nil {
				return nil, fail(name, "must be a string")
			}
			if name == extCorrelation {
				e.CorrelationID = s
			} else {
				e.CausationID = s
			}
		case extDataVersion:
			n, err := ceInt(v)
			if err != nil || n < 1 {
				return nil, fail("version", "dataversion must be a positive integer")
			}
			e.Version = n
		case extPriority:
			s, err := types.ToString(v)
			if err != nil {
				return nil, fail("priority", "must be a string")
			}
			p, err := herald.ParsePriority(s)
			if err != nil {
				return nil, fail("priority", "%q is not low, normal, high or critical", s)
			}
			e.Priority = p
		case extSequence:
			// Output only: the store assigns positions.
		case extMetadata:
			s, err := types.ToString(v)
			var md map[string]string
			if err != nil || json.Unmarshal([]byte(s), &md) != nil {
				return nil, fail("metadata", "the heraldmetadata extension must be a JSON object of strings")
			}
			if e.Metadata == nil {
				e.Metadata = make(map[string]string, len(md))
			}
			for k, v := range md {
				e.Metadata[k] = v
			}
		default:
			s, err := types.Format(v)
			if err != nil {
				return nil, fail("metadata", "extension %s has an unsupported value", name)
			}
			if e.Metadata == nil {
				e.Metadata = make(map[string]string)
			}
			e.Metadata[name] = s
		}
	}
	return e, nil
}

func ceInt(v any) (int, error) {
	if s, ok := v.(string); ok {
		return strconv.Atoi(s)
	}
	n, err := types.ToInteger(v)
	return int(n), err
}

// ceAttrName reports whether k may be a CloudEvents extension name:
// 1 to 20 of [a-z0-9].
func ceAttrName(k string) bool {
	if k == "" || len(k) > 20 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// reservedCE are the attribute names metadata may not take over.
var reservedCE = map[string]bool{
	"specversion": true, "id": true, "type": true, "source": true, "time": true, "subject": true,
	"datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
	extCorrelation: true, extCausation: true, extDataVersion: true, extPriority: true, extSequence: true,
	extMetadata: true,
}

// ceExtensions calls ext for each metadata entry that is an extension
// attribute of its own, and returns the JSON of the others for the
// heraldmetadata extension ("" when there are none).
func ceExtensions(md map[string]string, ext func(k, v string)) string {
	var rest map[string]string
	for k, v := range md {
		if ceAttrName(k) && !reservedCE[k] {
			ext(k, v)
			continue
		}
		if rest == nil {
			rest = make(map[string]string)
		}
		rest[k] = v
	}
	if rest == nil {
		return ""
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return "" // a map of strings always encodes
	}
	return string(b)
}

// toCloudEvent returns e in CloudEvents structured mode (JSON).
func toCloudEvent(e *herald.Event) map[string]any {
	m := make(map[string]any, 14+len(e.Metadata))
	if rest := ceExtensions(e.Metadata, func(k, v string) { m[k] = v }); rest != "" {
		m[extMetadata] = rest
	}
	m["specversion"] = ceSpecVersion
	m["id"] = e.ID
	m["type"] = e.Name
	m["source"] = ceSource(e)
	m["time"] = e.Timestamp.UTC().Format(time.RFC3339Nano)
	if e.Subject != "" {
		m["subject"] = e.Subject
	}
	m["datacontenttype"] = ctJSON
	m["data"] = e.Data
	if e.CorrelationID != "" {
		m[extCorrelation] = e.CorrelationID
	}
	if e.CausationID != "" {
		m[extCausation] = e.CausationID
	}
	m[extDataVersion] = max(e.Version, 1)
	m[extPriority] = e.Priority.String()
	if e.Position != 0 {
		m[extSequence] = strconv.FormatUint(e.Position, 10)
	}
	return m
}

func ceSource(e *herald.Event) string {
	if e.SourcePlugin == "" {
		return defaultCESource
	}
	return e.SourcePlugin
}

// setBinaryHeaders sets the CloudEvents binary-mode headers of e on h.
func setBinaryHeaders(h http.Header, e *herald.Event) {
	h["Ce-Specversion"] = []string{ceSpecVersion}
	h["Ce-Id"] = []string{ceHeaderValue(e.ID)}
	h["Ce-Type"] = []string{e.Name}
	h["Ce-Source"] = []string{ceHeaderValue(ceSource(e))}
	h["Ce-Time"] = []string{e.Timestamp.UTC().Format(time.RFC3339Nano)}
	if e.Subject != "" {
		h["Ce-Subject"] = []string{ceHeaderValue(e.Subject)}
	}
	if e.CorrelationID != "" {
		h["Ce-Correlationid"] = []string{ceHeaderValue(e.CorrelationID)}
	}
	if e.CausationID != "" {
		h["Ce-Causationid"] = []string{ceHeaderValue(e.CausationID)}
	}
	h["Ce-Dataversion"] = []string{strconv.Itoa(max(e.Version, 1))}
	h["Ce-Priority"] = []string{e.Priority.String()}
	if e.Position != 0 {
		h["Ce-Sequence"] = []string{strconv.FormatUint(e.Position, 10)}
	}
	rest := ceExtensions(e.Metadata, func(k, v string) {
		h[http.CanonicalHeaderKey("ce-"+k)] = []string{ceHeaderValue(v)}
	})
	if rest != "" {
		h["Ce-Heraldmetadata"] = []string{ceHeaderValue(rest)}
	}
	h["Content-Type"] = []string{ctJSON}
}

// ceHeaderValue percent-encodes what the CloudEvents HTTP binding asks to
// encode in a header value: space, '"', '%' and everything outside
// printable ASCII.
func ceHeaderValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// wantsCloudEvents reports whether the Accept header asks for CloudEvents.
func wantsCloudEvents(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, ctCloudEvent) || strings.Contains(a, ctCloudBatch) || r.URL.Query().Get("format") == "cloudevents"
}

// ceStringAttributes are the CloudEvents context attributes whose JSON
// value must be a string.
var ceStringAttributes = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}

// checkCEAttributes checks the JSON types of a structured CloudEvent's
// attributes before the SDK parses it, so that a wrong type is answered in
// the specification's words rather than the parser's.
func checkCEAttributes(raw []byte, index int) error {
	var attrs map[string]json.RawMessage
	if json.Unmarshal(raw, &attrs) != nil {
		return nil // the SDK's parse reports it
	}
	for _, name := range ceStringAttributes {
		v, ok := attrs[name]
		if !ok || len(v) == 0 || v[0] == '"' || string(v) == "null" {
			continue
		}
		e := badRequest(name, "not a valid CloudEvent: attribute %q must be a string", name)
		e.Index = index
		return e
	}
	return nil
}
