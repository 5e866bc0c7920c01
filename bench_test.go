package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchPayload is a 200-byte JSON object.
var benchPayload = func() json.RawMessage {
	p := `{"recording":"rec-000123","path":"/recordings/2026/meeting.wav","x":"`
	p += strings.Repeat("a", 200-len(p)-2) + `"}`
	return json.RawMessage(p)
}()

// latencies samples publish→handler latency (from the event's timestamp,
// which Publish sets).
type latencies struct {
	n   atomic.Int64
	buf []int64
}

func newLatencies(max int) *latencies { return &latencies{buf: make([]int64, min(max, 1<<21))} }

// add samples one event in eight, so the clock reads of the benchmark
// itself weigh little.
func (l *latencies) add(e *Event) {
	if e.Position%8 != 0 {
		return
	}
	if i := l.n.Add(1) - 1; i < int64(len(l.buf)) {
		l.buf[i] = int64(time.Since(e.Timestamp))
	}
}

func (l *latencies) report(b *testing.B) {
	n := min(int(l.n.Load()), len(l.buf))
	if n == 0 {
		return
	}
	s := slices.Clone(l.buf[:n])
	slices.Sort(s)
	b.ReportMetric(float64(s[n*50/100])/1e3, "p50-µs")
	b.ReportMetric(float64(s[min(n-1, n*99/100)])/1e3, "p99-µs")
}

// benchPublish publishes b.N events, one Publish each, to subs
// subscriptions and waits until every delivery is handled.
func benchPublish(b *testing.B, subs int, durable bool, batch int) {
	bus, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	var handled atomic.Int64
	lat := newLatencies(b.N)
	want := int64(b.N) * int64(subs)
	done := make(chan struct{})
	for i := range subs {
		opts := []SubscribeOption{}
		if durable {
			opts = append(opts, Durable(fmt.Sprintf("bench-%d", i)))
		}
		_, err := bus.Subscribe(ctx, "bench.>", HandlerFunc(func(ctx context.Context, e *Event) error {
			if i == 0 {
				lat.add(e)
			}
			if handled.Add(1) == want {
				close(done)
			}
			return nil
		}), opts...)
		if err != nil {
			b.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	if batch <= 1 {
		for range b.N {
			if _, err := bus.Publish(ctx, &Event{Name: "bench.recorded", Data: benchPayload}); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		evs := make([]*Event, 0, batch)
		for i := range b.N {
			evs = append(evs, &Event{Name: "bench.recorded", Data: benchPayload})
			if len(evs) == batch || i == b.N-1 {
				if _, err := bus.PublishBatch(ctx, evs); err != nil {
					b.Fatal(err)
				}
				evs = make([]*Event, 0, batch)
			}
		}
	}
	<-done
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	// CPU time per event (all goroutines): what the figures above would be
	// bounded by on idle cores, whatever else shares the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	lat.report(b)
}

// BenchmarkPublishHandle measures publish→handle through the memory store:
// ephemeral and durable subscriptions, 1 and 10 subscribers, 200-byte
// payloads, one Publish per event (and PublishBatch of 100).
func BenchmarkPublishHandle(b *testing.B) {
	for _, durable := range []bool{false, true} {
		kind := "ephemeral"
		if durable {
			kind = "durable"
		}
		for _, subs := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/subs=%d", kind, subs), func(b *testing.B) { benchPublish(b, subs, durable, 1) })
		}
		b.Run(fmt.Sprintf("%s/subs=1/batch=100", kind), func(b *testing.B) { benchPublish(b, 1, durable, 100) })
	}
}

// BenchmarkPublishPath measures Publish alone (no subscriber) for its
// allocations per event.
func BenchmarkPublishPath(b *testing.B) {
	bus, err := New()
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	evs := make([]Event, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		evs[i] = Event{Name: "bench.recorded", Data: benchPayload}
		if _, err := bus.Publish(ctx, &evs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChannelBaseline is the anchor: events through a bare buffered Go
// channel to one goroutine, nothing else. Compare the bus's figures with it
// in the same run.
func BenchmarkChannelBaseline(b *testing.B) {
	ch := make(chan *Event, DefaultBufferSize)
	done := make(chan struct{})
	var n atomic.Int64
	go func() {
		for range ch {
			n.Add(1)
		}
		close(done)
	}()
	e := &Event{Name: "bench.recorded", Data: benchPayload}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ch <- e
	}
	close(ch)
	<-done
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "events/s")
}

// cpuTime returns the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
