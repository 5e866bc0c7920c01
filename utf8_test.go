package herald_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/heraldhq/herald"
)

// TestInvalidUTF8DataRefused: data that is not valid UTF-8 is an invalid
// event on every path into the log, and nothing is stored.
func TestInvalidUTF8DataRefused(t *testing.T) {
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(t.Context())
	e := &herald.Event{Name: "a.b", Data: json.RawMessage("{\"x\":\"\xff\xfe\"}")}
	if _, err := bus.Publish(t.Context(), e); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("publish: %v, want ErrInvalidEvent", err)
	}
	if _, err := bus.PublishBatch(t.Context(), []*herald.Event{{Name: "a.b", Data: json.RawMessage("{\"\xc3\":1}")}}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("batch: %v, want ErrInvalidEvent", err)
	}
	if h, _ := bus.Head(t.Context()); h != 0 {
		t.Fatalf("head %d: something was stored", h)
	}
}
