package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/server"
)

func TestForget(t *testing.T) {
	const readerSecret = "hrld_client-test-reader"
	st := herald.NewMemoryStore()
	schemas := herald.NewSchemas()
	codec, err := sensitive.New(st, schemas)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithSchemas(schemas), herald.WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, server.WithTokens([]server.Token{
		{ID: "tok_admin", Identity: "ops", Admin: true, Hash: server.HashToken(adminSecret), Publish: []string{">"}, Subscribe: []string{">"}},
		{ID: "tok_reader", Identity: "reader", Hash: server.HashToken(readerSecret), Subscribe: []string{">"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Close()
		srv.Close(ctx)
		bus.Close(ctx)
		st.Close()
	})
	admin, err := client.New(hs.URL, client.WithToken(adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := client.New(hs.URL, client.WithToken(readerSecret))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.PutSchema(ctx, "user.joined", 1, json.RawMessage(`{"type":"object","properties":{"email":{"type":"string","x-sensitive":true}}}`)); err != nil {
		t.Fatal(err)
	}
	res, err := admin.Publish(ctx, &herald.Event{Name: "user.joined", Subject: "user/a b/1", Data: json.RawMessage(`{"email":"bob@example.com"}`)})
	if err != nil {
		t.Fatal(err)
	}
	email := func() any {
		t.Helper()
		e, err := reader.Event(ctx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		return d["email"]
	}
	if got := email(); got != "bob@example.com" {
		t.Fatalf("before forget: email = %v", got)
	}
	if err := reader.Forget(ctx, "user/a b/1"); !errors.Is(err, herald.ErrForbidden) {
		t.Errorf("forget without admin: %v, want ErrForbidden", err)
	}
	if got := email(); got != "bob@example.com" {
		t.Fatalf("after a refused forget: email = %v", got)
	}
	if err := admin.Forget(ctx, "user/a b/1"); err != nil {
		t.Fatal(err)
	}
	if got := email(); got != nil {
		t.Errorf("after forget: email = %v, want null", got)
	}
}

func TestForgetWithoutKeys(t *testing.T) {
	ts := start(t)
	if err := ts.c.Forget(context.Background(), "user/1"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("forget on a server without a codec: %v, want ErrNotFound", err)
	}
}
