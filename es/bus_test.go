package es_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

// Saving through a bus validates the events, delivers them to
// subscriptions and keeps optimistic concurrency.
func TestSaveThroughBus(t *testing.T) {
	ctx := context.Background()
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(ctx)
	got := make(chan *herald.Event, 10)
	if _, err := bus.Subscribe(ctx, "account.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		got <- e
		return nil
	}), herald.Durable("audit")); err != nil {
		t.Fatal(err)
	}
	r := newRepo(t, bus.Store(), es.WithBus(bus))
	v, err := r.Save(ctx, "account/b", 0, ev(t, "account.opened", amount{Owner: "ada"}), ev(t, "account.deposited", amount{Cents: 3}))
	if err != nil || v != 2 {
		t.Fatalf("%d %v", v, err)
	}
	for _, want := range []string{"account.opened", "account.deposited"} {
		select {
		case e := <-got:
			if e.Name != want || e.Subject != "account/b" {
				t.Fatalf("delivered %s for %q, want %s", e.Name, e.Subject, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not delivered", want)
		}
	}
	if _, err := r.Save(ctx, "account/b", 1, ev(t, "account.deposited", amount{Cents: 1})); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("want ErrConflict through the bus, got %v", err)
	}
	if _, err := r.Save(ctx, "account/b", 2, &herald.Event{Name: "Not A Name"}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent from the bus, got %v", err)
	}
	s, v, err := newRepo(t, bus.Store()).Load(ctx, "account/b")
	if err != nil || s.Balance != 3 || s.Owner != "ada" || v != 2 {
		t.Fatalf("%+v@%d %v", s, v, err)
	}
}
