package nats

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	herald "github.com/heraldhq/herald"
)

// encodeEvent returns the stored form of e: exactly what encoding/json
// makes of e with its Position left out (decodeEventData reads it back).
// appendEventJSON writes the common case without reflection; anything it
// does not take goes to encoding/json. e is not modified.
func encodeEvent(e *herald.Event) ([]byte, error) {
	if b, ok := appendEventJSON(make([]byte, 0, 256+len(e.Data)), e); ok {
		return b, nil
	}
	c := *e
	c.Position = 0
	return json.Marshal(&c)
}

// appendEventJSON appends e as encoding/json would encode it without its
// Position, and reports false, having appended part of it, when e holds
// something whose encoding it leaves to encoding/json: a string that
// json.Marshal would escape (or that is not ASCII), data that is not
// compact, HTML-safe JSON, a timestamp that is not UTC or outside years
// 0-9999, or an unknown priority.
func appendEventJSON(b []byte, e *herald.Event) ([]byte, bool) {
	t := e.Timestamp
	p, err := e.Priority.MarshalText()
	if err != nil || t.Location() != time.UTC || t.Year() < 0 || t.Year() > 9999 ||
		e.Data != nil && !compactJSON(e.Data) {
		return b, false
	}
	w := jsonWriter{b: b, ok: true}
	w.str(`{"id":`, e.ID)
	w.str(`,"name":`, e.Name)
	w.b = append(w.b, `,"timestamp":"`...)
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, `","data":`...)
	if e.Data == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, e.Data...)
	}
	w.str(`,"correlation_id":`, e.CorrelationID)
	if e.CausationID != "" {
		w.str(`,"causation_id":`, e.CausationID)
	}
	w.str(`,"source_plugin":`, e.SourcePlugin)
	if e.Subject != "" {
		w.str(`,"subject":`, e.Subject)
	}
	w.b = append(w.b, `,"version":`...)
	w.b = strconv.AppendInt(w.b, int64(e.Version), 10)
	w.b = append(w.b, `,"priority":"`...)
	w.b = append(w.b, p...)
	w.b = append(w.b, '"')
	if len(e.Metadata) > 0 {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		sep := `,"metadata":{`
		for _, k := range keys {
			w.str(sep, k)
			w.str(":", e.Metadata[k])
			sep = ","
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, '}')
	return w.b, w.ok
}

// encodeOutcome returns o as encoding/json encodes it: by
// appendOutcomeJSON when it takes o, else by encoding/json.
func encodeOutcome(b []byte, o *herald.Outcome) ([]byte, error) {
	if out, ok := appendOutcomeJSON(b, o); ok {
		return out, nil
	}
	j, err := json.Marshal(o)
	return append(b, j...), err
}

// appendOutcomeJSON appends o as encoding/json would encode it, and
// reports false, having appended part of it, when o holds a string
// json.Marshal would escape (see appendPlain) or a time that is not at
// offset zero or is outside years 0-9999. An outcome without history
// (no failed attempt) costs nothing for it.
func appendOutcomeJSON(b []byte, o *herald.Outcome) ([]byte, bool) {
	w := jsonWriter{b: b, ok: true}
	w.str(`{"subscription":`, o.Subscription)
	w.str(`,"event_id":`, o.EventID)
	w.str(`,"event_name":`, o.EventName)
	w.b = append(w.b, `,"position":`...)
	w.b = strconv.AppendUint(w.b, o.Position, 10)
	w.str(`,"correlation_id":`, o.CorrelationID)
	w.str(`,"status":`, string(o.Status))
	w.b = append(w.b, `,"attempts":`...)
	w.b = strconv.AppendInt(w.b, int64(o.Attempts), 10)
	if o.LastError != "" {
		w.str(`,"last_error":`, o.LastError)
	}
	w.duration(`,"duration":`, o.Duration)
	w.time(`,"updated_at":`, o.UpdatedAt)
	if o.Redriven {
		w.b = append(w.b, `,"redriven":true`...)
	}
	if len(o.History) > 0 {
		sep := `,"history":[`
		for i := range o.History {
			ae := &o.History[i]
			w.b = append(w.b, sep...)
			w.b = append(w.b, `{"attempt":`...)
			w.b = strconv.AppendInt(w.b, int64(ae.Attempt), 10)
			w.time(`,"at":`, ae.At)
			w.duration(`,"duration":`, ae.Duration)
			w.str(`,"error":`, ae.Error)
			w.b = append(w.b, '}')
			sep = ","
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	return w.b, w.ok
}

// jsonWriter appends JSON for appendEventJSON; ok turns false at the
// first string it leaves to encoding/json.
type jsonWriter struct {
	b  []byte
	ok bool
}

// time appends prefix and t as encoding/json writes it; ok turns false
// when t is not at offset zero or is outside years 0-9999.
func (w *jsonWriter) time(prefix string, t time.Time) {
	if _, off := t.Zone(); off != 0 || t.Year() < 0 || t.Year() > 9999 {
		w.ok = false
	}
	if !w.ok {
		return
	}
	w.b = append(w.b, prefix...)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// duration appends prefix and d as encoding/json writes it: its String
// between quotes, which never needs escaping (digits, '.', '-' and unit
// letters, "µ" included, which encoding/json leaves as it is).
func (w *jsonWriter) duration(prefix string, d herald.Duration) {
	if !w.ok {
		return
	}
	w.b = append(w.b, prefix...)
	w.b = append(w.b, '"')
	w.b = append(w.b, d.String()...)
	w.b = append(w.b, '"')
}

// str appends prefix and s as a JSON string (see appendPlain).
func (w *jsonWriter) str(prefix, s string) {
	if !w.ok {
		return
	}
	w.b = append(w.b, prefix...)
	w.b, w.ok = appendPlain(w.b, s)
}

// appendPlain appends s as a JSON string when encoding/json would write
// it unchanged between quotes: printable ASCII without '"', '\\', '<',
// '>' and '&'.
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// compactJSON reports whether encoding/json writes the raw JSON data
// unchanged: data is one valid JSON value without whitespace between
// tokens, its strings valid UTF-8, and it holds neither '<', '>', '&'
// nor a byte that may start U+2028 or U+2029 (which encoding/json
// escapes).
func compactJSON(data []byte) bool {
	for _, c := range data {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return false
		}
	}
	d := fastDecoder{b: data, compact: true}
	return d.value(0) && d.i == len(data)
}
