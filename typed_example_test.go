package herald_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald"
)

// RecordingCompleted is the data of a recording.completed event.
type RecordingCompleted struct {
	Path    string  `json:"path"`
	Seconds float64 `json:"seconds"`
}

// recordingCompleted binds the struct to its event name and a JSON Schema.
var recordingCompleted = herald.Define[RecordingCompleted]("recording.completed",
	herald.WithJSONSchema([]byte(`{
		"type": "object",
		"properties": {"path": {"type": "string", "minLength": 1}, "seconds": {"type": "number", "minimum": 0}},
		"required": ["path"]
	}`)))

// Typed events: the handler gets a RecordingCompleted, never an any, and
// data that breaks the schema is refused before anything is stored.
func ExampleDefine() {
	ctx := context.Background()
	bus, err := herald.New()
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)

	handled := make(chan RecordingCompleted, 1)
	_, err = recordingCompleted.Subscribe(ctx, bus, func(ctx context.Context, r RecordingCompleted) error {
		handled <- r
		return nil
	}, herald.Durable("transcriber"))
	if err != nil {
		panic(err)
	}

	_, err = recordingCompleted.Publish(ctx, bus, RecordingCompleted{Path: "", Seconds: 3})
	var ve *herald.ValidationError
	fmt.Println("refused:", errors.Is(err, herald.ErrSchemaViolation), errors.As(err, &ve) && ve.Field == "data.path")

	pos, err := recordingCompleted.Publish(ctx, bus, RecordingCompleted{Path: "/rec/1.wav", Seconds: 42},
		herald.WithSubject("recording/1"))
	if err != nil {
		panic(err)
	}
	fmt.Println("published at position", pos)
	r := <-handled
	fmt.Printf("transcribing %s (%.0f s)\n", r.Path, r.Seconds)
	// Output:
	// refused: true true
	// published at position 1
	// transcribing /rec/1.wav (42 s)
}
