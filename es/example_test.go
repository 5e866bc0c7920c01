package es_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

// A counter aggregate: load its state, decide, save at the version seen.
func ExampleRepository() {
	ctx := context.Background()
	bus, err := herald.New()
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)

	type counter struct{ N int }
	repo, err := es.NewRepository(bus, func(c counter, e *herald.Event) (counter, error) {
		var d struct{ By int }
		if err := e.Decode(&d); err != nil {
			return c, err
		}
		c.N += d.By
		return c, nil
	}, es.WithSnapshotEvery(50))
	if err != nil {
		panic(err)
	}

	// Update loads, decides and saves, deciding again on a conflict.
	for range 3 {
		_, err := repo.Update(ctx, "counter/1", func(c counter, version uint64) ([]*herald.Event, error) {
			e, err := herald.NewEvent("counter.incremented", map[string]int{"by": 2})
			return []*herald.Event{e}, err
		})
		if err != nil {
			panic(err)
		}
	}
	c, version, err := repo.Load(ctx, "counter/1")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.N, version)

	// Saving at a version that is no longer current stores nothing.
	e, _ := herald.NewEvent("counter.incremented", map[string]int{"by": 1})
	_, err = repo.Save(ctx, "counter/1", 1, e)
	fmt.Println(errors.Is(err, herald.ErrConflict))
	// Output:
	// 6 3
	// true
}
