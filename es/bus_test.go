package es_test

import (
	"context"
	"errors"
	"fmt"
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
	r, err := es.NewRepository(bus, applyAccount)
	if err != nil {
		t.Fatal(err)
	}
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
		case <-time.After(30 * time.Second):
			t.Fatalf("%s not delivered", want)
		}
	}
	if _, err := r.Save(ctx, "account/b", 1, ev(t, "account.deposited", amount{Cents: 1})); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("want ErrConflict through the bus, got %v", err)
	}
	if _, err := r.Save(ctx, "account/b", 2, &herald.Event{Name: "Not A Name"}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent from the bus, got %v", err)
	}
	fresh, err := es.NewRepository(bus, applyAccount, es.WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := fresh.Load(ctx, "account/b")
	if err != nil || s.Balance != 3 || s.Owner != "ada" || v != 2 {
		t.Fatalf("%+v@%d %v", s, v, err)
	}
}

// The state Save folds into the cache is the state a rebuild reads: the
// events as the bus stored them, with their ids and positions.
func TestCachedFoldMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(ctx)
	type seen struct{ IDs []string }
	apply := func(s seen, e *herald.Event) (seen, error) {
		if e.ID == "" || e.Position == 0 || e.Timestamp.IsZero() {
			return s, errors.New("event not as stored")
		}
		s.IDs = append(append([]string(nil), s.IDs...), e.ID+"@"+e.Timestamp.String())
		return s, nil
	}
	r, err := es.NewRepository(bus, apply)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Load(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Save(ctx, "s", 0, &herald.Event{Name: "x.happened"}, &herald.Event{Name: "x.happened"}); err != nil {
		t.Fatal(err)
	}
	cached, _, err := r.Load(ctx, "s")
	if err != nil || r.Stats().StoreLoads != 1 {
		t.Fatalf("%v %+v", err, r.Stats())
	}
	fresh, err := es.NewRepository(bus, apply)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, _, err := fresh.Load(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(cached.IDs) != 2 || fmt.Sprint(cached.IDs) != fmt.Sprint(rebuilt.IDs) {
		t.Fatalf("cached %v, rebuilt %v", cached.IDs, rebuilt.IDs)
	}
}
