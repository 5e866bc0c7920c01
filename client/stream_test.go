package client

import (
	"testing"
)

// FuzzStreamDecode feeds hostile SSE events to the stream's decoder: it
// never panics, and the positions it lets through strictly increase.
func FuzzStreamDecode(f *testing.F) {
	f.Add("1", "", []byte(`{"name":"a.b","data":{},"position":1}`))
	f.Add("2", "event", []byte(`{"name":"a.b","data":{}}`))
	f.Add("x", "", []byte(`{"name":"a.b","position":18446744073709551615}`))
	f.Add("", "ping", []byte(`{}`))
	f.Add("3", "", []byte(`{"name":""}`))
	f.Add("4", "", []byte(`not json`))
	f.Fuzz(func(t *testing.T, id, typ string, data []byte) {
		s := &Stream{}
		s.cfg.minWait, s.cfg.maxWait = 1, 2
		for range 2 {
			before := s.last
			e, ok, err := s.decode(sseEvent{ID: id, Type: typ, Data: data})
			if err != nil && ok {
				t.Fatal("an error and an event")
			}
			if ok {
				if e == nil || e.Name == "" {
					t.Fatalf("delivered %+v", e)
				}
				if e.Position != 0 && e.Position <= before {
					t.Fatalf("position %d delivered after %d", e.Position, before)
				}
			}
		}
	})
}
