package herald_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald"
)

// A durable subscription handles recording.completed events; its handler
// publishes a response event that inherits the correlation id.
func Example() {
	ctx := context.Background()
	bus, err := herald.New(herald.WithSource("recorder"))
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)

	done := make(chan string, 1)
	_, err = bus.Subscribe(ctx, "recording.completed", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		var rec struct {
			Path string `json:"path"`
		}
		if err := e.Decode(&rec); err != nil {
			return herald.Permanent(err) // malformed: dead-letter it, never retry
		}
		// Published with the handler's ctx: a child of e.
		_, err := bus.Publish(ctx, &herald.Event{Name: "transcription.completed", Data: []byte(`{"words":42}`)})
		return err
	}), herald.Durable("transcriber"))
	if err != nil {
		panic(err)
	}
	_, err = bus.Subscribe(ctx, "transcription.*", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		ec, _ := herald.FromContext(ctx)
		done <- fmt.Sprintln("got", e.Name, "in", ec.Subscription, "caused by the recording:", e.CausationID == e.CorrelationID)
		return nil
	}), herald.Durable("notifier"))
	if err != nil {
		panic(err)
	}

	e, err := herald.NewEvent("recording.completed", map[string]string{"path": "/rec/1.wav"})
	if err != nil {
		panic(err)
	}
	pos, err := bus.Publish(ctx, e)
	if err != nil {
		panic(err)
	}
	fmt.Println("published at position", pos)
	fmt.Print(<-done) // the handlers run on their own goroutines

	_, err = bus.Publish(ctx, &herald.Event{Name: "Not A Name"})
	var ve *herald.ValidationError
	fmt.Println("invalid:", errors.As(err, &ve), ve.Field)
	// Output:
	// published at position 1
	// got transcription.completed in notifier caused by the recording: true
	// invalid: true name
}
