package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func readAllSSE(t *testing.T, in string, max int) ([]sseEvent, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(in), max)
	var out []sseEvent
	for {
		ev, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEReader(t *testing.T) {
	in := ": heartbeat\n\n" +
		"id: 1\nevent: event\ndata: {\"a\":1}\n\n" +
		"data:first\r\ndata: second\r\n\r\n" +
		"id: 7\n\n" + // id only: no dispatch, but remembered
		"retry: 2500\nunknown: x\ndata: x\n\n"
	evs, err := readAllSSE(t, in, 1<<20)
	if err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := []sseEvent{
		{ID: "1", Type: "event", Data: []byte(`{"a":1}`)},
		{ID: "1", Data: []byte("first\nsecond")},
		{ID: "7", Data: []byte("x")},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events: %q", len(evs), evs)
	}
	for i := range want {
		if evs[i].ID != want[i].ID || evs[i].Type != want[i].Type || !bytes.Equal(evs[i].Data, want[i].Data) {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	r := newSSEReader(strings.NewReader(in), 1<<20)
	for range 3 {
		if _, err := r.next(); err != nil {
			t.Fatal(err)
		}
	}
	if r.retry != 2500*time.Millisecond {
		t.Errorf("retry = %v", r.retry)
	}
}

func TestSSEReaderTruncated(t *testing.T) {
	_, err := readAllSSE(t, "id: 1\ndata: {\"a\"", 1<<20)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut inside a line: %v", err)
	}
	_, err = readAllSSE(t, "id: 1\ndata: x\n", 1<<20)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut before the blank line: %v", err)
	}
}

func TestSSEReaderBounded(t *testing.T) {
	long := "data: " + strings.Repeat("z", 5000) + "\n\n"
	if _, err := readAllSSE(t, long, 1000); !errors.Is(err, errSSETooLong) {
		t.Fatalf("long line: %v", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("z", 100)+"\n", 20) + "\n"
	if _, err := readAllSSE(t, many, 1000); !errors.Is(err, errSSETooLong) {
		t.Fatalf("long event: %v", err)
	}
}

// encodeSSE writes ev the way a server would.
func encodeSSE(id, typ string, data []byte) string {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	if typ != "" {
		fmt.Fprintf(&b, "event: %s\n", typ)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		fmt.Fprintf(&b, "data: %s\n", l)
	}
	b.WriteString("\n")
	return b.String()
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\ndata: {}\n\n"))
	f.Add([]byte(": ping\n\nid: 2\nevent: event\ndata: {\"name\":\"a.b\"}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n"))
	f.Add([]byte("retry: 10\nid\ndata\n\n"))
	f.Add([]byte("data: \x00\n\n"))
	f.Add([]byte(strings.Repeat("data: x\n", 50)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newSSEReader(bytes.NewReader(in), 256)
		for range len(in) + 1 {
			ev, err := r.next()
			if err != nil {
				return
			}
			if len(ev.Data) > 256 {
				t.Fatalf("data of %d bytes passed a bound of 256", len(ev.Data))
			}
			// What was read encodes back to the same event.
			if !bytes.ContainsAny([]byte(ev.ID), "\r\n") && !strings.ContainsAny(ev.Type, "\r\n") && !bytes.Contains(ev.Data, []byte("\r")) {
				back := newSSEReader(strings.NewReader(encodeSSE(ev.ID, ev.Type, ev.Data)), 1<<20)
				got, err := back.next()
				if err != nil || got.ID != ev.ID || got.Type != ev.Type || !bytes.Equal(got.Data, ev.Data) {
					t.Fatalf("round trip of %+v gave %+v, %v", ev, got, err)
				}
			}
		}
		t.Fatal("reader made no progress")
	})
}
