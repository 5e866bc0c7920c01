package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

func ExampleNew() {
	ctx := context.Background()
	bus, err := herald.New() // a memory store; herald.WithStore for SQLite
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)
	srv, err := server.New(bus)
	if err != nil {
		panic(err)
	}
	defer srv.Close(ctx)
	hs := httptest.NewServer(srv) // or an http.Server on a loopback address
	defer hs.Close()

	resp, err := http.Post(hs.URL+"/v1/events", "application/json",
		strings.NewReader(`{"name":"recording.completed","data":{"recording_id":"r1"}}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 201
}

func ExampleVerifySignature() {
	// A webhook receiver checks that a delivery comes from herald, and is
	// not a capture replayed later (Standard Webhooks).
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"recording_id":"r1"}`)
	sent := time.Unix(1_800_000_000, 0)
	h := http.Header{} // what herald sends with the delivery
	h.Set(server.HeaderWebhookID, "evt-1")
	h.Set(server.HeaderWebhookTimestamp, strconv.FormatInt(sent.Unix(), 10))
	h.Set(server.HeaderWebhookSignature, server.SignStandard(secret, "evt-1", sent, body))
	fmt.Println(server.VerifySignature(secret, h, body, sent.Add(time.Second)))
	fmt.Println(server.VerifySignature(secret, h, []byte(`{"forged":true}`), sent.Add(time.Second)))
	fmt.Println(server.VerifySignature(secret, h, body, sent.Add(time.Hour))) // replayed
	// Output:
	// true
	// false
	// false
}
