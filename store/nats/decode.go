package nats

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	herald "github.com/heraldhq/herald"
)

// decodeEventData decodes a stored event. Events are written in
// encoding/json's form (see encodeEvent); decodeEventFast reads that form
// with two allocations, and anything it does not take is left to
// encoding/json, with the same result.
func decodeEventData(data []byte, seq uint64) (*herald.Event, error) {
	e := new(herald.Event)
	if !decodeEventFast(data, e) {
		*e = herald.Event{}
		if err := json.Unmarshal(data, e); err != nil {
			return nil, fmt.Errorf("nats store: event at position %d: %w: %v", seq, herald.ErrIncompatibleStore, err)
		}
	}
	e.Position = seq
	return e, nil
}

// damagedEvent is what a reader yields for the stored message at seq
// whose data cannot be decoded (err): a herald.DamagedEventError whose
// stand-in carries what the message says outside its data — the event's
// id (its message id), name and subject (from its NATS subject,
// <ns>.ev.<partition>.<subject token>.<name>; a subject too long to be
// spelled out in its token stays unknown).
func (s *Store) damagedEvent(seq uint64, natsSubject, msgID string, err error) *herald.DamagedEventError {
	ev := &herald.Event{ID: msgID}
	if rest, ok := strings.CutPrefix(natsSubject, s.subj.ns+".ev."); ok {
		if parts := strings.SplitN(rest, ".", 3); len(parts) == 3 {
			ev.Name = parts[2]
			ev.Subject, _ = subjectOfToken(parts[1])
		}
	}
	return &herald.DamagedEventError{Position: seq, Event: ev, Err: err}
}

// decodeEventFast decodes data into e when data is a JSON object whose
// keys are the fields herald.Event encodes to, its strings hold no escape
// sequences, and its metadata is absent or null; it reports false for
// anything else (e is then partly written). What it accepts, it decodes
// exactly as encoding/json does. The strings share one copy of data, and
// e.Data aliases data itself.
func decodeEventFast(data []byte, e *herald.Event) bool {
	d := fastDecoder{b: data}
	var str string // one copy of data that the string fields point into
	sub := func(lo, hi int) string {
		if str == "" {
			str = string(data)
		}
		return str[lo:hi]
	}
	d.ws()
	if !d.eat('{') {
		return false
	}
	d.ws()
	if d.eat('}') {
		return d.end()
	}
	for {
		d.ws()
		klo, khi, ok := d.plainString()
		if !ok {
			return false
		}
		d.ws()
		if !d.eat(':') {
			return false
		}
		d.ws()
		key := data[klo:khi]
		switch string(key) {
		case "id", "name", "correlation_id", "causation_id", "source_plugin", "subject":
			lo, hi, ok := d.plainString()
			if !ok {
				return false
			}
			s := sub(lo, hi)
			switch string(key) {
			case "id":
				e.ID = s
			case "name":
				e.Name = s
			case "correlation_id":
				e.CorrelationID = s
			case "causation_id":
				e.CausationID = s
			case "source_plugin":
				e.SourcePlugin = s
			default:
				e.Subject = s
			}
		case "timestamp":
			lo, hi, ok := d.plainString()
			if !ok || e.Timestamp.UnmarshalText(data[lo:hi]) != nil {
				return false
			}
		case "data":
			lo := d.i
			if !d.value(0) {
				return false
			}
			e.Data = data[lo:d.i:d.i]
		case "version":
			lo, hi, ok := d.integer()
			if !ok {
				return false
			}
			v, err := strconv.Atoi(string(data[lo:hi]))
			if err != nil {
				return false
			}
			e.Version = v
		case "position":
			lo, hi, ok := d.integer()
			if !ok || data[lo] == '-' {
				return false
			}
			v, err := strconv.ParseUint(string(data[lo:hi]), 10, 64)
			if err != nil {
				return false
			}
			e.Position = v
		case "priority":
			lo, hi, ok := d.plainString()
			if !ok || e.Priority.UnmarshalText(data[lo:hi]) != nil {
				return false
			}
		case "metadata":
			if !d.literal("null") {
				return false
			}
			e.Metadata = nil
		default:
			return false
		}
		d.ws()
		if d.eat('}') {
			return d.end()
		}
		if !d.eat(',') {
			return false
		}
	}
}

// fastDecoder scans JSON for decodeEventFast, and for compactJSON.
type fastDecoder struct {
	b []byte
	i int
	// compact refuses whitespace between tokens.
	compact bool
}

func (d *fastDecoder) ws() {
	for !d.compact && d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *fastDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *fastDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// plainString reads a string without escapes and of valid UTF-8, and
// returns the bounds of its contents.
func (d *fastDecoder) plainString() (lo, hi int, ok bool) {
	if !d.eat('"') {
		return 0, 0, false
	}
	lo = d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			hi = d.i
			d.i++
			if !ascii && !utf8.Valid(d.b[lo:hi]) {
				return 0, 0, false
			}
			return lo, hi, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= 0x80:
			ascii = false
		}
		d.i++
	}
	return 0, 0, false
}

// integer reads a JSON number without fraction or exponent.
func (d *fastDecoder) integer() (lo, hi int, ok bool) {
	lo = d.i
	d.eat('-')
	start := d.i
	n := d.digits()
	if n == 0 || n > 1 && d.b[start] == '0' {
		return 0, 0, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, 0, false
	}
	return lo, d.i, true
}

// maxDepth bounds nesting in value, as encoding/json does (10,000).
const maxDepth = 10000

// value skips one JSON value, checking that it is valid JSON (strings may
// hold escapes here, and must be valid UTF-8 for the value to be taken
// as is).
func (d *fastDecoder) value(depth int) bool {
	if depth > maxDepth || d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		d.ws()
		if d.eat('}') {
			return true
		}
		for {
			d.ws()
			if !d.str() {
				return false
			}
			d.ws()
			if !d.eat(':') {
				return false
			}
			d.ws()
			if !d.value(depth + 1) {
				return false
			}
			d.ws()
			if d.eat('}') {
				return true
			}
			if !d.eat(',') {
				return false
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.eat(']') {
			return true
		}
		for {
			d.ws()
			if !d.value(depth + 1) {
				return false
			}
			d.ws()
			if d.eat(']') {
				return true
			}
			if !d.eat(',') {
				return false
			}
		}
	case c == '"':
		return d.str()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return false
}

// str skips a JSON string, escapes allowed; invalid UTF-8 is refused
// (encoding/json would replace it, so the bytes would not be kept as is).
func (d *fastDecoder) str() bool {
	if !d.eat('"') {
		return false
	}
	lo := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return ascii || utf8.Valid(d.b[lo:d.i-1])
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				if len(d.b)-d.i < 5 {
					return false
				}
				for _, h := range d.b[d.i+1 : d.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				d.i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			if c >= 0x80 {
				ascii = false
			}
			d.i++
		}
	}
	return false
}

// number skips a JSON number.
func (d *fastDecoder) number() bool {
	d.eat('-')
	if !d.eat('0') && d.digits() == 0 {
		return false
	}
	if d.eat('.') && d.digits() == 0 {
		return false
	}
	if d.eat('e') || d.eat('E') {
		if !d.eat('+') {
			d.eat('-')
		}
		if d.digits() == 0 {
			return false
		}
	}
	return true
}

// digits skips decimal digits and returns how many.
func (d *fastDecoder) digits() int {
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}
