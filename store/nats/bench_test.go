package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The benchmarks run herald and raw nats.go side by side on the same
// embedded server with file storage, so their ratio is what counts:
//
//	go test -run '^$' -bench . -benchtime 20000x ./store/nats/

func benchEvent(b *testing.B, subject string) *herald.Event {
	e, err := herald.NewEvent("bench.event", map[string]any{"payload": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	if err != nil {
		b.Fatal(err)
	}
	e.Subject = subject
	return e
}

// BenchmarkAppend measures herald appending single events through the
// store from 64 goroutines (as many concurrent publishers would).
func BenchmarkAppend(b *testing.B) {
	for _, subj := range []bool{false, true} {
		b.Run(fmt.Sprintf("subject=%v", subj), func(b *testing.B) {
			s := open(b, server(b))
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(*benchPublishers / max(1, runtimeProcs()))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					subject := ""
					if subj {
						subject = fmt.Sprintf("agg/%d", n.Add(1)%1000)
					}
					if _, err := s.Append(ctx, []*herald.Event{benchEvent(b, subject)}, herald.AppendOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendBatch measures atomic batches of 100 events.
func BenchmarkAppendBatch(b *testing.B) {
	s := open(b, server(b))
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		batch := make([]*herald.Event, 100)
		for i := range batch {
			batch[i] = benchEvent(b, "")
		}
		if _, err := s.Append(ctx, batch, herald.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawAsyncPublish is the anchor: nats.go JetStream async publish
// of the same payload size to a stream on the same kind of server.
func BenchmarkRawAsyncPublish(b *testing.B) {
	srv := server(b)
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	data := benchPayload(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := js.PublishAsync("raw.bench.event", data, jetstream.WithMsgID(herald.NewID())); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("acks did not arrive")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRawSyncPublish: nats.go synchronous publish, one at a time.
func BenchmarkRawSyncPublish(b *testing.B) {
	srv := server(b)
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	data := benchPayload(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := js.Publish(ctx, "raw.bench.event", data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchPayload(b *testing.B) []byte {
	data, err := json.Marshal(benchEvent(b, ""))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkConsume measures a shared durable subscription handing out
// b.N stored events with explicit acks.
func BenchmarkConsume(b *testing.B) {
	s := open(b, server(b))
	ctx := context.Background()
	fill(b, s, b.N)
	b.ResetTimer()
	c, err := s.Consume(ctx, "bench", ">", herald.StartEarliest, herald.ConsumeOptions{MaxInFlight: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for got := 0; got < b.N; {
		ds, err := c.Fetch(ctx, 256)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range ds {
			if err := d.Ack(ctx); err != nil {
				b.Fatal(err)
			}
		}
		got += len(ds)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawPullConsume is the anchor of BenchmarkConsume: a durable
// nats.go pull consumer with explicit acks on the same stream.
func BenchmarkRawPullConsume(b *testing.B) {
	s := open(b, server(b))
	ctx := context.Background()
	fill(b, s, b.N)
	js, _ := jetstream.New(s.Conn())
	b.ResetTimer()
	cons, err := js.CreateConsumer(ctx, "HERALD_EVENTS", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for range b.N {
		m, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Ack(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// fill appends n events in atomic batches of up to 1,000.
func fill(b *testing.B, s *natsstore.Store, n int) {
	b.Helper()
	ctx := context.Background()
	for n > 0 {
		k := min(n, 1000)
		batch := make([]*herald.Event, k)
		for i := range batch {
			batch[i] = benchEvent(b, fmt.Sprintf("agg/%d", i%100))
		}
		if _, err := s.Append(ctx, batch, herald.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

var _ = sync.Mutex{}

// BenchmarkBusPublish measures herald.Bus.Publish on the JetStream store
// from many goroutines: validation, encoding, the store's group commit.
func BenchmarkBusPublish(b *testing.B) {
	bus, err := herald.New(herald.WithStore(open(b, server(b))))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	b.SetParallelism(*benchPublishers / max(1, runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bus.Publish(ctx, benchEvent(b, "")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBusDurableConsume measures a durable subscription of a
// herald.Bus on the JetStream store (a shared consumer underneath) handling
// b.N stored events; compare with BenchmarkRawPullConsume.
func BenchmarkBusDurableConsume(b *testing.B) {
	s := open(b, server(b))
	fill(b, s, b.N)
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	var n atomic.Int64
	done := make(chan struct{})
	b.ResetTimer()
	_, err = bus.Subscribe(context.Background(), ">", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		if n.Add(1) == int64(b.N) {
			close(done)
		}
		return nil
	}), herald.Durable("bench"), herald.Concurrency(8))
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", n.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
