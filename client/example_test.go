package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/server"
)

// A client publishes to a herald server, follows its stream, and gets
// herald's own sentinel errors back.
func Example() {
	// A server on a loopback port; in real use it is `herald serve`.
	bus, _ := herald.New()
	srv, _ := server.New(bus)
	hs := httptest.NewServer(srv)
	defer func() {
		srv.EndStreams()
		hs.Close()
		srv.Close(context.Background())
		bus.Close(context.Background())
	}()

	ctx := context.Background()
	c, err := client.New(hs.URL, client.WithHTTPClient(hs.Client()))
	if err != nil {
		panic(err)
	}
	res, err := c.Publish(ctx, &herald.Event{ID: "r1-ended", Name: "recording.ended", Data: json.RawMessage(`{"recording_id":"r1"}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("stored at position", res.Position)

	s, err := c.Stream(ctx, "recording.>", client.StreamAfter(0))
	if err != nil {
		panic(err)
	}
	defer s.Close()
	e, _ := s.Next()
	fmt.Println("streamed", e.Name, e.ID)

	_, err = c.Publish(ctx, &herald.Event{Name: "Not A Name", Data: json.RawMessage(`{}`)})
	fmt.Println("invalid:", errors.Is(err, herald.ErrInvalidEvent))
	_, err = c.Event(ctx, "no-such-id")
	fmt.Println("not found:", errors.Is(err, herald.ErrNotFound))
	// Output:
	// stored at position 1
	// streamed recording.ended r1-ended
	// invalid: true
	// not found: true
}
