package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// Under load, a graceful stop (http.Server.Shutdown, then Server.Close,
// then Bus.Close) loses no acknowledged event and waits for deliveries in
// flight.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	var inFlight, maxInFlight, delivered atomic.Int64
	hook := newReceiver(t, func(string, string, int) int { return 200 })
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		// A slow receiver, on the real clock (this test runs on a real
		// network): deliveries are in flight when the stop begins.
		time.Sleep(20 * time.Millisecond)
		hook.ServeHTTP(w, r)
		delivered.Add(1)
		inFlight.Add(-1)
	})
	recv := &http.Server{Handler: slow}
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go recv.Serve(rl)
	defer recv.Close()

	st := herald.NewMemoryStore()
	defer st.Close()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, server.WithSubscriptions([]server.PushSubscription{
		{Name: "slow", Filter: ">", Endpoint: "http://" + rl.Addr().String(), Concurrency: 4},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	hs.RegisterOnShutdown(srv.EndStreams)
	go hs.Serve(ln)
	base := "http://" + ln.Addr().String()

	// An open stream must not hold the stop up.
	sreq, _ := http.NewRequest("GET", base+"/v1/stream", nil)
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()

	var mu sync.Mutex
	acked := map[string]uint64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-%d", k, i)
				body, _ := json.Marshal(map[string]any{"id": id, "name": "load.test", "subject": fmt.Sprintf("s%d", i%16), "data": map[string]any{"i": i}})
				resp, err := client.Post(base+"/v1/events", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the server stopped accepting
				}
				var p published
				json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					acked[id] = p.Events[0].Position
					mu.Unlock()
				}
			}
		}()
	}
	// Stop while publishing is in full swing.
	testwait.For(t, "publishing to get going", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	close(stop)
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("server Close: %v", err)
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("%d deliveries still in flight after Close", n)
	}
	if err := bus.Close(ctx); err != nil {
		t.Fatalf("bus Close: %v", err)
	}
	wg.Wait()

	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	for id, pos := range acked {
		e, err := st.Get(context.Background(), id)
		if err != nil || e.Position != pos {
			t.Fatalf("acknowledged event %s at %d: %v", id, pos, err)
		}
	}
	t.Logf("%d events acknowledged and present; %d deliveries, up to %d at once", len(acked), delivered.Load(), maxInFlight.Load())
}
