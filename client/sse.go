package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	// ID is the last event id seen on the stream so far (the SSE rule: an
	// event without an id: field keeps the previous one).
	ID string
	// Type is the event: field; empty means "message".
	Type string
	// Data is the data: lines joined with "\n".
	Data []byte
}

// errSSETooLong is returned when a line or an event's data exceeds the
// reader's bound.
var errSSETooLong = errors.New("herald client: server-sent event too long")

// sseReader decodes a text/event-stream (the WHATWG HTML "server-sent
// events" format): lines ending in "\n" or "\r\n", fields "id", "event",
// "data" and "retry", comments starting with ":", events ending at a blank
// line. Lines ending in a lone "\r" are not supported. Not safe for
// concurrent use.
type sseReader struct {
	r *bufio.Reader
	// max bounds one line and one event's data, in bytes.
	max int
	// lastID is the last id: field seen.
	lastID string
	// retry is the last retry: field seen (0 when none).
	retry time.Duration
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next event that has data. Comments (heartbeats) and
// events without data are consumed silently, but their id: still counts.
// At the end of the stream it returns io.EOF, or io.ErrUnexpectedEOF when
// the stream ends inside an event.
func (s *sseReader) next() (sseEvent, error) {
	var (
		typ     string
		data    []byte
		hasData bool
		inEvent bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && inEvent {
				return sseEvent{}, io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				return sseEvent{ID: s.lastID, Type: typ, Data: data}, nil
			}
			typ, inEvent = "", false
			continue
		}
		inEvent = true
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > s.max {
				return sseEvent{}, errSSETooLong
			}
			data = append(data, value...)
			hasData = true
		case "event":
			typ = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 32); err == nil {
				s.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

// readLine returns one line without its line ending, at most s.max bytes.
func (s *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(line)+len(frag) > s.max+2 {
			return nil, errSSETooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			line = line[:len(line)-1]
			return bytes.TrimSuffix(line, []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
