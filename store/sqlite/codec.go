package sqlite

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/heraldhq/herald"
)

// An event is stored whole in its row's body column, in the binary form
// below, so that reading one takes one column instead of one per field;
// the columns beside it (id, name, ts, ...) are copies kept for the
// indexes and filters.
//
//	byte    format (bodyFormat)
//	string  id, name, correlation_id, causation_id, source_plugin, subject
//	varint  timestamp: Unix seconds
//	uvarint timestamp: nanoseconds
//	varint  version, priority
//	uvarint metadata entries + 1 (0: no map), then key and value strings,
//	        keys sorted
//	string  data
//
// A string is its length as a uvarint, then its bytes.
const bodyFormat = 1

var errBadBody = errors.New("damaged event body")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeBody returns e's stored form.
func encodeBody(e *herald.Event) []byte {
	n := 32 + len(e.ID) + len(e.Name) + len(e.CorrelationID) + len(e.CausationID) +
		len(e.SourcePlugin) + len(e.Subject) + len(e.Data)
	for k, v := range e.Metadata {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, bodyFormat)
	for _, s := range [...]string{e.ID, e.Name, e.CorrelationID, e.CausationID, e.SourcePlugin, e.Subject} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, e.Timestamp.Unix())
	b = binary.AppendUvarint(b, uint64(e.Timestamp.Nanosecond()))
	b = binary.AppendVarint(b, int64(e.Version))
	b = binary.AppendVarint(b, int64(e.Priority))
	if e.Metadata == nil {
		b = append(b, 0)
	} else {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(b, uint64(len(keys))+1)
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, e.Metadata[k])
		}
	}
	return appendString(b, string(e.Data))
}

// bodyReader decodes a body; the first failure sticks.
type bodyReader struct {
	b   []byte
	bad bool
}

func (r *bodyReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *bodyReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *bodyReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *bodyReader) string() string { return string(r.bytes()) }

// decodeBody returns the event stored as b at position pos; its Data shares
// b's memory. It never panics, whatever b holds.
func decodeBody(pos uint64, b []byte) (*herald.Event, error) {
	if len(b) == 0 || b[0] != bodyFormat {
		return nil, errBadBody
	}
	r := bodyReader{b: b[1:]}
	e := &herald.Event{Position: pos}
	e.ID = r.string()
	e.Name = r.string()
	e.CorrelationID = r.string()
	e.CausationID = r.string()
	e.SourcePlugin = r.string()
	e.Subject = r.string()
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.bad = true
	}
	e.Timestamp = time.Unix(sec, int64(nsec)).UTC()
	e.Version = int(r.varint())
	e.Priority = herald.Priority(r.varint())
	if n := r.uvarint(); n > 0 {
		n--
		if n > uint64(len(r.b)) { // every entry takes at least one byte
			r.bad = true
		}
		if !r.bad {
			e.Metadata = make(map[string]string, n)
			for range n {
				k := r.string()
				e.Metadata[k] = r.string()
			}
		}
	}
	data := r.bytes()
	if r.bad || len(r.b) != 0 {
		return nil, errBadBody
	}
	e.Data = data
	return e, nil
}
