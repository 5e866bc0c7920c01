package nats_test

import (
	"context"
	"errors"
	"testing"

	herald "github.com/heraldhq/herald"
)

// Size is the bytes of herald's streams, and grows as events are appended.
func TestSize(t *testing.T) {
	ctx := context.Background()
	s := open(t, server(t))
	before, err := s.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		appendOne(t, s, ev(t, "size.test", "s-1"), herald.AppendOptions{})
	}
	after, err := s.Size(ctx)
	if err != nil || after <= before {
		t.Fatalf("Size after 20 events = %d (was %d), %v", after, before, err)
	}
	s.Close()
	if _, err := s.Size(ctx); !errors.Is(err, herald.ErrClosed) {
		t.Errorf("Size after Close: %v", err)
	}
}
