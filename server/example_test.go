package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

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
	// A webhook receiver checks that a delivery comes from herald.
	secret := []byte("whsec_from_the_subscription")
	body := []byte(`{"recording_id":"r1"}`)
	header := server.Sign(secret, body) // what herald sends in Herald-Signature
	fmt.Println(server.VerifySignature(secret, body, header))
	fmt.Println(server.VerifySignature(secret, []byte(`{"forged":true}`), header))
	// Output:
	// true
	// false
}
