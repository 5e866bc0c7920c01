package herald_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// BenchmarkPublishSQLite32 publishes from 32 goroutines at once to a
// SQLite store, with no subscription and with one ephemeral subscription
// on a name nothing is published to: the second must not be slower (the
// publish path holds no lock across the append).
func BenchmarkPublishSQLite32(b *testing.B) {
	for _, name := range []string{"no-subscription", "unrelated-ephemeral"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "h.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			bus, err := herald.New(herald.WithStore(st))
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close(ctx)
			if name == "unrelated-ephemeral" {
				if _, err := bus.Subscribe(ctx, "elsewhere.>", herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil })); err != nil {
					b.Fatal(err)
				}
			}
			const publishers = 32
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range publishers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := bus.Publish(ctx, &herald.Event{Name: "bench.recorded", Data: []byte(`{"recording":"rec-000123"}`)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
