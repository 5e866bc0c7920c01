package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/sqlite"
)

// benchEnv is a server over SQLite at full durability (every commit
// fsynced), as `herald serve` runs by default.
// With HERALD_BENCH_STORE=memory it runs over the memory store instead,
// which shows what the HTTP layer alone costs.
func benchEnv(b *testing.B, opts ...server.Option) (*httptest.Server, *herald.Bus) {
	ts, bus, _ := benchEnvStore(b, opts...)
	return ts, bus
}

// reportGroups reports the SQLite writer's mean group size: how many
// appends shared one commit (one fsync).
func reportGroups(b *testing.B, st herald.Store) {
	if s, ok := st.(*sqlite.Store); ok {
		stats := s.Stats()
		b.ReportMetric(float64(stats.Requests)/float64(max(stats.Commits, 1)), "appends/commit")
	}
}

func benchEnvStore(b *testing.B, opts ...server.Option) (*httptest.Server, *herald.Bus, herald.Store) {
	b.Helper()
	var st herald.Store = herald.NewMemoryStore()
	if os.Getenv("HERALD_BENCH_STORE") != "memory" {
		var err error
		st, err = sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "herald.db"), sqlite.WithDurability(sqlite.Full))
		if err != nil {
			b.Fatal(err)
		}
	}
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(bus, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.RegisterOnShutdown(srv.EndStreams)
	ts.Start()
	b.Cleanup(func() {
		srv.EndStreams()
		ts.CloseClientConnections()
		ts.Close()
		srv.Close(context.Background())
		bus.Close(context.Background())
		st.Close()
	})
	return ts, bus, st
}

func keepAliveClient(n int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = n
	tr.MaxConnsPerHost = n
	return &http.Client{Transport: tr}
}

func benchPost(b *testing.B, c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		b.Errorf("status %d", resp.StatusCode)
	}
}

// BenchmarkPublishSingle: one event per POST from 64 keep-alive clients.
func BenchmarkPublishSingle(b *testing.B) {
	ts, _, st := benchEnvStore(b)
	c := keepAliveClient(64)
	body := []byte(`{"name":"recording.completed","data":{"recording_id":"r1","duration":12.5}}`)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, c, ts.URL+"/v1/events", body)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	reportGroups(b, st)
}

// BenchmarkPublishBatch100: 100 events per POST from 8 keep-alive clients.
func BenchmarkPublishBatch100(b *testing.B) {
	ts, _ := benchEnv(b)
	c := keepAliveClient(8)
	events := make([]string, 100)
	for i := range events {
		events[i] = fmt.Sprintf(`{"name":"recording.completed","data":{"recording_id":"r%d","duration":12.5}}`, i)
	}
	body := []byte("[" + strings.Join(events, ",") + "]")
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, c, ts.URL+"/v1/events", body)
		}
	})
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkPublishToSSE: publish→SSE latency at 1,000 events/s with 50
// streams. The latency runs from just before the POST is sent to the
// moment each stream has read the event.
func BenchmarkPublishToSSE(b *testing.B) {
	const streams, rate = 50, 1000
	ts, _ := benchEnv(b)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	sent := sync.Map{} // position string -> time.Time (set before POST; keyed by k)
	var ready sync.WaitGroup
	var wg sync.WaitGroup
	for range streams {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/stream?name=lat.*", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			ready.Done()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if !strings.HasPrefix(line, "data: ") {
					continue
				}
				now := time.Now()
				var ev struct {
					Data struct {
						K int `json:"k"`
					} `json:"data"`
				}
				json.Unmarshal([]byte(line[6:]), &ev)
				if t0, ok := sent.Load(ev.Data.K); ok {
					mu.Lock()
					lat = append(lat, now.Sub(t0.(time.Time)))
					mu.Unlock()
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(100 * time.Millisecond)
	c := keepAliveClient(16)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	var pubs sync.WaitGroup
	acks := make([]time.Duration, b.N)
	for k := range b.N {
		<-tick.C
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			t0 := time.Now()
			sent.Store(k, t0)
			benchPost(b, c, ts.URL+"/v1/events", []byte(`{"name":"lat.x","data":{"k":`+strconv.Itoa(k)+`}}`))
			acks[k] = time.Since(t0)
		}()
	}
	pubs.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= b.N*streams {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	if len(lat) < b.N*streams {
		b.Fatalf("received %d of %d", len(lat), b.N*streams)
	}
	slices.Sort(lat)
	slices.Sort(acks)
	// The publish acknowledgement alone, to tell the store's share.
	b.ReportMetric(float64(acks[len(acks)*99/100].Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkWebhookDelivery: deliveries per second of one push subscription
// (concurrency 64, distinct subjects) to a local receiver.
func BenchmarkWebhookDelivery(b *testing.B) {
	var got atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer recv.Close()
	ts, bus := benchEnv(b)
	// Publish first, then let the subscription start from the earliest.
	batch := make([]*herald.Event, 0, 1000)
	flush := func() {
		if len(batch) > 0 {
			if _, err := bus.PublishBatch(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for i := range b.N {
		e, _ := herald.NewEvent("hook.bench", map[string]int{"i": i})
		e.Subject = "s/" + strconv.Itoa(i%1024)
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	body, _ := json.Marshal(map[string]any{"filter": "hook.*", "endpoint": recv.URL, "concurrency": 64})
	b.ResetTimer()
	start := time.Now()
	req, _ := http.NewRequest("PUT", ts.URL+"/v1/subscriptions/bench", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		b.Fatalf("PUT: %v", err)
	}
	resp.Body.Close()
	for got.Load() < int64(b.N) {
		time.Sleep(2 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkHandlerPublish: the CPU cost of one publish in the handler,
// without the network (memory store).
func BenchmarkHandlerPublish(b *testing.B) {
	bus, err := herald.New()
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close(context.Background())
	srv, err := server.New(bus)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(context.Background())
	body := []byte(`{"name":"recording.completed","data":{"recording_id":"r1","duration":12.5}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 201 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
