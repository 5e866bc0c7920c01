package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// sameEvent fails unless b decodes to the event e encodes to with
// encoding/json.
func sameEvent(t *testing.T, e *herald.Event, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("encoded\n%s\nencoding/json\n%s", b, want)
	}
}

func TestAppendEventJSON(t *testing.T) {
	base := herald.Event{ID: "e-1", Name: "recording.ended", Timestamp: time.Date(2026, 12, 5, 1, 2, 3, 4, time.UTC),
		CorrelationID: "c", SourcePlugin: "recorder", Subject: "recording/1", Version: 2, Position: 7,
		Metadata: map[string]string{"k": `"data":null`}}
	for _, data := range []string{``, `null`, `{}`, `{"a":"<b>&</b>","n":[1,2.5e3,null,true]}`, `"\u00e9\ud83d\ude00"`, `{"data":null}`, "[1,\n 2]"} {
		e := base
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		b, err := appendEventJSON([]byte("x"), &e)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 'x' {
			t.Fatal("appendEventJSON did not append")
		}
		sameEvent(t, &e, b[1:])
	}
	// Quotes in the fields before data cannot fake the data field.
	e := base
	e.ID, e.Name = `"data":null`, `x","data":null,"y":"`
	e.Data = json.RawMessage(`{"real":true}`)
	b, err := appendEventJSON(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, &e, b)
	if !bytes.Contains(b, []byte(`"data":{"real":true}`)) {
		t.Fatalf("data not copied as stored: %s", b)
	}
}

func FuzzAppendEventJSON(f *testing.F) {
	f.Add("e-1", "a.b", `{"a":1}`, "m")
	f.Add(`"data":null`, `\"`, `"<&>"`, `"data":null`)
	f.Fuzz(func(t *testing.T, id, name, data, meta string) {
		if !json.Valid([]byte(data)) || strings.ContainsRune(data, '\uFFFD') {
			t.Skip() // stored data is valid JSON
		}
		e := &herald.Event{ID: id, Name: name, Data: json.RawMessage(data), Metadata: map[string]string{meta: meta}}
		b, err := appendEventJSON(nil, e)
		if err != nil {
			t.Skip() // encoding/json refuses it too
		}
		sameEvent(t, e, b)
	})
}

func BenchmarkEventPage(b *testing.B) {
	data, _ := json.Marshal(map[string]any{"transcript": strings.Repeat("words and more words ", 4500)})
	events := make([]*herald.Event, 100)
	for i := range events {
		events[i] = &herald.Event{ID: "e", Name: "transcription_local.completed", Data: data, Position: uint64(i + 1)}
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data) * len(events)))
		for b.Loop() {
			if _, err := json.Marshal(api.EventPage{Events: events}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("as-stored", func(b *testing.B) {
		b.SetBytes(int64(len(data) * len(events)))
		for b.Loop() {
			buf := make([]byte, 0, (len(data)+256)*len(events))
			for _, e := range events {
				buf, _ = appendEventJSON(buf, e)
			}
		}
	})
}
