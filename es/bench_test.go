package es_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

func benchStore(b *testing.B, events int) *herald.MemoryStore {
	b.Helper()
	st := herald.NewMemoryStore()
	b.Cleanup(func() { st.Close() })
	w, err := es.NewRepository(busOn(b, st), applyAccount, es.WithCacheSize(0), es.WithSnapshotEvery(0))
	if err != nil {
		b.Fatal(err)
	}
	for i := range events {
		if _, err := w.Save(context.Background(), "account/b", uint64(i), ev(b, "account.deposited", amount{Cents: 1})); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkLoad measures a Load served from the cache, from a snapshot
// and the events after it, and from the whole stream.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	const events = 1000
	st := benchStore(b, events)
	for _, bc := range []struct {
		name string
		opts []es.Option
	}{
		{"cached", nil},
		{"snapshot-every-100", []es.Option{es.WithCacheSize(0), es.WithSnapshotEvery(100)}},
		{fmt.Sprintf("full-%d-events", events), []es.Option{es.WithCacheSize(0), es.WithSnapshotEvery(0)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := es.NewRepository(busOn(b, st), applyAccount, bc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if s, _, err := r.Load(ctx, "account/b"); err != nil || s.Balance != events {
					b.Fatal(s, err)
				}
			}
		})
	}
}

// BenchmarkSave measures a Save of one event through a warm cache.
func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	st := benchStore(b, 0)
	r, err := es.NewRepository(busOn(b, st), applyAccount)
	if err != nil {
		b.Fatal(err)
	}
	var v uint64
	for b.Loop() {
		if v, err = r.Save(ctx, "account/b", v, ev(b, "account.deposited", amount{Cents: 1})); err != nil {
			b.Fatal(err)
		}
	}
}
