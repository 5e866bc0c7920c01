package sqlite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"time"
	"unsafe"

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

// bodyReader decodes a body by offsets; the first failure sticks.
type bodyReader struct {
	b   []byte
	off int
	bad bool
}

func (r *bodyReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *bodyReader) varint() int64 {
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

// span is where a string's bytes lie in the body.
type span struct{ start, end int }

func (r *bodyReader) span() span {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return span{}
	}
	sp := span{r.off, r.off + int(n)}
	r.off = sp.end
	return sp
}

// decodeBody returns the event stored as b at position pos; see decodeInto.
func decodeBody(pos uint64, b []byte) (*herald.Event, error) {
	e := new(herald.Event)
	if err := decodeInto(e, pos, b); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeInto decodes the event stored as b at position pos into e. It
// never panics, whatever b holds.
//
// The event shares b's memory instead of copying it: its text fields are
// strings over the part of b before the data, and its Data is the rest,
// capped so that appending to it cannot reach beyond. b is therefore
// taken over: nothing may write to it afterwards (callers of a store must
// not modify the events it returns, and even a write into Data leaves the
// strings as they were).
func decodeInto(e *herald.Event, pos uint64, b []byte) error {
	if len(b) == 0 || b[0] != bodyFormat {
		return errBadBody
	}
	// First pass: check the layout and find where each part lies.
	r := bodyReader{b: b, off: 1}
	var fields [6]span
	for i := range fields {
		fields[i] = r.span()
	}
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.bad = true
	}
	version := r.varint()
	priority := r.varint()
	entries := r.uvarint()
	metaStart := r.off
	if entries > 0 {
		if entries-1 > uint64(len(b)-r.off) { // every entry takes at least one byte
			r.bad = true
		}
		for i := uint64(1); i < entries && !r.bad; i++ {
			r.span()
			r.span()
		}
	}
	data := r.span()
	if r.bad || r.off != len(b) {
		return errBadBody
	}
	// Second pass: the text fields are substrings of b before the data.
	text := unsafe.String(unsafe.SliceData(b), data.start)
	str := func(sp span) string { return text[sp.start:sp.end] }
	*e = herald.Event{
		Position:      pos,
		ID:            str(fields[0]),
		Name:          str(fields[1]),
		CorrelationID: str(fields[2]),
		CausationID:   str(fields[3]),
		SourcePlugin:  str(fields[4]),
		Subject:       str(fields[5]),
		Timestamp:     time.Unix(sec, int64(nsec)).UTC(),
		Version:       int(version),
		Priority:      herald.Priority(priority),
		Data:          b[data.start:data.end:data.end],
	}
	if entries > 0 {
		e.Metadata = make(map[string]string, entries-1)
		m := bodyReader{b: b, off: metaStart}
		for i := uint64(1); i < entries; i++ {
			k := m.span()
			e.Metadata[str(k)] = str(m.span())
		}
	}
	return nil
}

// slab carves the events of a read, and copies of their bodies, out of
// blocks, so that reading an event costs no allocation of its own. Blocks
// start small and double up to slabEvents events and slabBytes bytes, so
// that a read of a few events allocates little. An event returned keeps
// its blocks in memory.
type slab struct {
	events []herald.Event
	bytes  []byte
	// nEvents and nBytes are the sizes of the last blocks.
	nEvents, nBytes int
}

const (
	slabEvents = 64
	slabBytes  = 64 << 10
)

func (a *slab) event() *herald.Event {
	if len(a.events) == 0 {
		a.nEvents = min(max(2*a.nEvents, 4), slabEvents)
		a.events = make([]herald.Event, a.nEvents)
	}
	e := &a.events[0]
	a.events = a.events[1:]
	return e
}

// copy returns a copy of b that nothing else writes to.
func (a *slab) copy(b []byte) []byte {
	if len(b) > cap(a.bytes)-len(a.bytes) {
		if len(b) > slabBytes/4 {
			return bytes.Clone(b)
		}
		a.nBytes = min(max(2*a.nBytes, 2*len(b), 1<<10), slabBytes)
		a.bytes = make([]byte, 0, a.nBytes)
	}
	n := len(a.bytes)
	a.bytes = append(a.bytes, b...)
	return a.bytes[n:len(a.bytes):len(a.bytes)]
}
