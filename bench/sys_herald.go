package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/sqlite"
)

func registerHerald(r map[string]system) {
	r["inproc-1to1/herald"] = system{run: func(ctx context.Context, e *env) error {
		return heraldInprocRun(ctx, e, false)
	}}
	r["inproc-1to1/herald-durable-memory"] = system{run: func(ctx context.Context, e *env) error {
		return heraldInprocRun(ctx, e, true)
	}}
	r["inproc-fanout10/herald"] = system{run: func(ctx context.Context, e *env) error {
		return heraldInprocRun(ctx, e, false)
	}}
	r["latency-10k/herald"] = system{run: func(ctx context.Context, e *env) error {
		return heraldLatencyRun(ctx, e, nil)
	}}
	r["latency-10k/herald-sqlite"] = system{run: func(ctx context.Context, e *env) error {
		st, err := openHeraldSQLite(ctx, e.dir)
		if err != nil {
			return err
		}
		defer st.Close()
		return heraldLatencyRun(ctx, e, st)
	}}
	r["durable-publish-64/herald-sqlite"] = system{run: heraldSQLitePublishRun}
	r["durable-e2e/herald-sqlite"] = system{run: func(ctx context.Context, e *env) error {
		st, err := openHeraldSQLite(ctx, e.dir)
		if err != nil {
			return err
		}
		defer st.Close()
		return heraldE2ERun(ctx, e, st)
	}}
	r["replay-1m/herald-sqlite"] = system{prepare: heraldSQLitePrepare, run: heraldSQLiteReplayRun}
	r["http-single/herald-sqlite"] = system{run: heraldHTTPRun}
	r["http-batch/herald-sqlite"] = system{run: heraldHTTPRun}
	registerHeraldNATS(r)
}

const benchEventName = "bench.event"

// newEvent is what a herald user publishes: a name and a JSON object; the
// bus fills in the id, the time and the correlation id.
func newEvent(payload []byte) *herald.Event {
	return &herald.Event{Name: benchEventName, Data: payload}
}

func newBus(st herald.Store) (*herald.Bus, error) {
	if st == nil {
		return herald.New()
	}
	return herald.New(herald.WithStore(st))
}

func closeBus(b *herald.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.Close(ctx)
}

func openHeraldSQLite(ctx context.Context, dir string) (*sqlite.Store, error) {
	return sqlite.Open(ctx, filepath.Join(dir, "herald.db"))
}

// heraldInprocRun publishes e.size.events to e.size.subscribers ephemeral
// subscribers (or one durable subscription on the default memory store).
func heraldInprocRun(ctx context.Context, e *env, durable bool) error {
	n, subs := e.size.events, subscribers(e.size)
	bus, err := herald.New()
	if err != nil {
		return err
	}
	defer closeBus(bus)
	c := newCounter(int64(n * subs))
	h := herald.HandlerFunc(func(ctx context.Context, ev *herald.Event) error {
		c.add(1)
		return nil
	})
	for i := range subs {
		var opts []herald.SubscribeOption
		if durable {
			opts = append(opts, herald.Durable(fmt.Sprintf("bench%d", i)))
		}
		if _, err := bus.Subscribe(ctx, benchEventName, h, opts...); err != nil {
			return err
		}
	}
	payload := makePayload(0, 0)
	e.meter.begin()
	for i := range n {
		if _, err := bus.Publish(ctx, newEvent(payload)); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	if err := c.wait(ctx, 2*time.Minute); err != nil {
		return err
	}
	e.meter.end(int64(n))
	return nil
}

// heraldLatencyRun paces publishing at e.size.rate and records each
// event's publish → handler latency; st nil means an ephemeral subscriber
// on the default bus, else a durable subscription on st.
func heraldLatencyRun(ctx context.Context, e *env, st herald.Store) error {
	n := e.size.events
	bus, err := newBus(st)
	if err != nil {
		return err
	}
	defer closeBus(bus)
	e.meter.withLatency(n)
	c := newCounter(int64(n))
	h := herald.HandlerFunc(func(ctx context.Context, ev *herald.Event) error {
		e.meter.latencySince(ev.Data)
		c.add(1)
		return nil
	})
	var opts []herald.SubscribeOption
	if st != nil {
		opts = append(opts, herald.Durable("bench"))
	}
	if _, err := bus.Subscribe(ctx, benchEventName, h, opts...); err != nil {
		return err
	}
	e.meter.begin()
	sent, err := pace(ctx, n, e.size.rate, e.size.publishers, func(seq int) error {
		_, err := bus.Publish(ctx, newEvent(makePayload(seq, time.Now().UnixNano())))
		return err
	})
	if err != nil {
		return err
	}
	c.setTarget(int64(sent))
	if err := c.wait(ctx, time.Minute); err != nil {
		return err
	}
	e.meter.end(int64(sent))
	return nil
}

func heraldSQLitePublishRun(ctx context.Context, e *env) error {
	st, err := openHeraldSQLite(ctx, e.dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return heraldPublishRun(ctx, e, st)
}

// heraldPublishRun: e.size.publishers goroutines each calling Publish.
func heraldPublishRun(ctx context.Context, e *env, st herald.Store) error {
	bus, err := newBus(st)
	if err != nil {
		return err
	}
	defer closeBus(bus)
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		_, err := bus.Publish(ctx, newEvent(payload))
		return err
	})
	e.meter.end(n)
	return err
}

// heraldE2ERun: 64 publishers and one durable subscription on st; the rate
// counts until the last published event is handled.
func heraldE2ERun(ctx context.Context, e *env, st herald.Store) error {
	bus, err := newBus(st)
	if err != nil {
		return err
	}
	defer closeBus(bus)
	c := newCounter(int64(e.size.events))
	h := herald.HandlerFunc(func(ctx context.Context, ev *herald.Event) error {
		c.add(1)
		return nil
	})
	if _, err := bus.Subscribe(ctx, benchEventName, h, herald.Durable("bench")); err != nil {
		return err
	}
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		_, err := bus.Publish(ctx, newEvent(payload))
		return err
	})
	if err != nil {
		return err
	}
	c.setTarget(n)
	if err := c.wait(ctx, 2*time.Minute); err != nil {
		return err
	}
	e.meter.end(n)
	e.meter.lat = nil // publish-call latency is not what this scenario reports
	return nil
}

// appendPrepared fills st with n events, appended in batches of 1,000.
// When ctx ends first, the error says how far it got.
func appendPrepared(ctx context.Context, st herald.Store, n int) error {
	payload := makePayload(0, 0)
	batch := make([]*herald.Event, 0, 1000)
	start := time.Now()
	for i := 0; i < n; i += 1000 {
		batch = batch[:0]
		now := time.Now()
		for j := i; j < min(i+1000, n); j++ {
			ev := newEvent(payload)
			ev.SourcePlugin = "bench"
			if err := ev.Prepare(now); err != nil {
				return err
			}
			batch = append(batch, ev)
		}
		if _, err := st.Append(ctx, batch, herald.AppendOptions{}); err != nil {
			if ctx.Err() != nil {
				d := time.Since(start)
				return fmt.Errorf("storing %d events did not finish within %s: %d stored (%.0f events/s)",
					n, d.Round(time.Second), i, float64(i)/d.Seconds())
			}
			return err
		}
	}
	return nil
}

func heraldSQLitePrepare(ctx context.Context, dir string, sz size) error {
	st, err := openHeraldSQLite(ctx, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return appendPrepared(ctx, st, sz.events)
}

func heraldSQLiteReplayRun(ctx context.Context, e *env) error {
	st, err := openHeraldSQLite(ctx, e.dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return heraldReplay(ctx, e, st)
}

// heraldReplay reads the whole log with Store.Read, herald's replay iterator.
func heraldReplay(ctx context.Context, e *env, st herald.Store) error {
	e.meter.begin()
	var n int64
	var last uint64
	for ev, err := range st.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			return err
		}
		if ev.Position <= last {
			return fmt.Errorf("position %d after %d", ev.Position, last)
		}
		last = ev.Position
		n++
	}
	e.meter.end(n)
	if n != int64(e.size.events) {
		return fmt.Errorf("read %d events, want %d", n, e.size.events)
	}
	return nil
}

// heraldHTTPRun serves herald's HTTP API over a SQLite store on a loopback
// port and POSTs events to it: one per request, or e.size.batch per request.
func heraldHTTPRun(ctx context.Context, e *env) error {
	st, err := openHeraldSQLite(ctx, e.dir)
	if err != nil {
		return err
	}
	defer st.Close()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		return err
	}
	defer closeBus(bus)
	secret := server.NewTokenSecret()
	srv, err := server.New(bus,
		server.WithLogger(slog.New(slog.DiscardHandler)),
		server.WithTokens([]server.Token{{ID: "bench", Identity: "bench", Hash: server.HashToken(secret), Publish: []string{">"}}}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		srv.Close(sctx)
	}()
	batch := max(1, e.size.batch)
	one := []byte(`{"name":"` + benchEventName + `","data":` + string(makePayload(0, 0)) + `}`)
	var body []byte
	if e.size.batch > 0 {
		body = append(body, '[')
		for i := range batch {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, one...)
		}
		body = append(body, ']')
	} else {
		body = one
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	url := "http://" + ln.Addr().String() + "/v1/events"
	calls := *e
	calls.size.events = e.size.events / batch
	e.meter.begin()
	n, err := publishLoop(ctx, &calls, func(seq int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
		}
		return nil
	})
	e.meter.end(n * int64(batch))
	return err
}
