package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/heraldhq/herald"
)

// dataNull is how an event with no data encodes its data field. The
// fields before it (id, name, timestamp) are JSON strings, where a quote
// is always escaped, so its first occurrence is the field itself.
var dataNull = []byte(`"data":null`)

// appendEventJSON appends e encoded as encoding/json encodes it, except
// that its data is copied as stored instead of being compacted again.
// Stored data is JSON checked at publish (valid, UTF-8), so re-checking
// it on every read only costs: on pages of large events, compacting the
// data was most of the server's CPU.
func appendEventJSON(buf []byte, e *herald.Event) ([]byte, error) {
	if len(e.Data) == 0 {
		b, err := json.Marshal(e)
		return append(buf, b...), err
	}
	c := *e
	c.Data = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return buf, err
	}
	i := bytes.Index(b, dataNull)
	if i < 0 { // cannot happen while Event has a plain data field
		b, err = json.Marshal(e)
		return append(buf, b...), err
	}
	buf = append(buf, b[:i+len(`"data":`)]...)
	buf = append(buf, e.Data...)
	return append(buf, b[i+len(dataNull):]...), nil
}

// writeEventPage writes the answer of GET /v1/events: api.EventPage, with
// each event's data as stored. size is the events' encodedSize, summed.
func writeEventPage(w http.ResponseWriter, events []*herald.Event, next uint64, size int) {
	buf := make([]byte, 0, size+64)
	buf = append(buf, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendEventJSON(buf, e); err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: errorFields{Code: CodeInternal, Message: "internal error"}})
			return
		}
	}
	buf = append(buf, `],"next_after":`...)
	buf = strconv.AppendUint(buf, next, 10)
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(http.StatusOK)
	w.Write(buf)
}
