package herald_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heraldhq/herald"
)

// The cost typed events and schemas add to publishing and handling.

func BenchmarkTypedPublish(b *testing.B) {
	bus, err := herald.New(herald.WithStore(herald.NewMemoryStore(herald.WithMemoryMaxEvents(0))))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	data := recordingEnded{RecordingID: "r1", Path: "/recordings/r1.wav", Duration: 12.5}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := noiseReducedType.Publish(ctx, bus, noiseReduced{RecordingID: data.RecordingID, CleanPath: data.Path}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTypedPublishWithSchema(b *testing.B) {
	bus, err := herald.New(herald.WithStore(herald.NewMemoryStore(herald.WithMemoryMaxEvents(0))))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	data := recordingEnded{RecordingID: "r1", Path: "/recordings/r1.wav", Duration: 12.5}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := recordingEndedType.Publish(ctx, bus, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTypedDecode(b *testing.B) {
	e := &herald.Event{ID: "x", Name: "recording.ended", Data: json.RawMessage(`{"recording_id":"r1","path":"/recordings/r1.wav","duration":12.5}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := recordingEndedType.Decode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSchemasValidate(b *testing.B) {
	s := herald.NewSchemas()
	if err := recordingEndedType.Register(s); err != nil {
		b.Fatal(err)
	}
	e := &herald.Event{ID: "x", Name: "recording.ended", Version: 1, Data: json.RawMessage(`{"recording_id":"r1","path":"/recordings/r1.wav","duration":12.5}`)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Validate(e); err != nil {
			b.Fatal(err)
		}
	}
}
