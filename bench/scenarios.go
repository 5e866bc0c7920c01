package main

import (
	"context"
	"time"
)

// system is one contender in a scenario.
type system struct {
	name string
	// run measures once; nil when the system is not available, and then
	// missing says why.
	run     func(ctx context.Context, e *env) error
	missing string
	// prepare, when set, writes the data run reads into the data folder,
	// once, before the rounds.
	prepare func(ctx context.Context, dir string, sz size) error
}

// comparison is one ratio the report shows: herald's system against an
// anchor, with the target the issue sets, if any.
type comparison struct {
	herald, anchor string
	// latency compares p99 latency (anchor/herald: above 1 herald is
	// faster) instead of throughput (herald/anchor).
	latency bool
	// min is the target ratio (0: none).
	min float64
}

type scenario struct {
	name        string
	what        string
	full, quick size
	systems     []*system
	compare     []comparison
	// copyPrepared gives every round a fresh copy of the prepared data,
	// for scenarios whose runs change it.
	copyPrepared bool
}

func (s *scenario) size(quick bool) size {
	if quick {
		return s.quick
	}
	return s.full
}

func (s *scenario) system(name string) (*system, bool) {
	for _, sys := range s.systems {
		if sys.name == name {
			return sys, true
		}
	}
	return nil, false
}

func scenarioByName(name string) (*scenario, bool) {
	for _, s := range scenarios() {
		if s.name == name {
			return s, true
		}
	}
	return nil, false
}

// sys looks up the implementation of a system in a scenario.
func sys(scenarioName, name string) *system {
	impl, ok := registry()[scenarioName+"/"+name]
	if !ok {
		return &system{name: name, missing: "not built yet"}
	}
	impl.name = name
	return &impl
}

// scenarios lists every scenario with its systems, herald's first, with the
// exact names of the benchmark's specification.
func scenarios() []*scenario {
	mk := func(name, what string, full, quick size, names []string, cmp []comparison) *scenario {
		s := &scenario{name: name, what: what, full: full, quick: quick, compare: cmp}
		for _, n := range names {
			s.systems = append(s.systems, sys(name, n))
		}
		return s
	}
	consume := mk("nats-consume", "consume stored JetStream events with a durable consumer, acking each",
		size{events: 100_000}, size{events: 20_000},
		[]string{"herald-nats", "nats-raw"},
		[]comparison{{herald: "herald-nats", anchor: "nats-raw", min: 0.7}})
	consume.copyPrepared = true
	return []*scenario{
		mk("inproc-1to1", "1 publisher → 1 subscriber in one process, 200-byte events",
			size{events: 500_000}, size{events: 100_000},
			[]string{"herald", "herald-durable-memory", "watermill-gochannel", "watermill-gochannel-block", "go-channel"},
			[]comparison{
				{herald: "herald", anchor: "watermill-gochannel", min: 20},
				{herald: "herald", anchor: "watermill-gochannel-block"},
				{herald: "herald", anchor: "go-channel", min: 1.0 / 6},
				{herald: "herald-durable-memory", anchor: "watermill-gochannel"},
			}),
		mk("inproc-fanout10", "1 publisher → 10 subscribers in one process (events/s: each delivered to all 10)",
			size{events: 50_000, subscribers: 10}, size{events: 20_000, subscribers: 10},
			[]string{"herald", "watermill-gochannel", "go-channel"},
			[]comparison{
				{herald: "herald", anchor: "watermill-gochannel", min: 20},
				{herald: "herald", anchor: "go-channel"},
			}),
		mk("durable-publish-64", "64 concurrent publishers, each waiting for its event to be fsynced",
			size{events: 300_000, dur: 5 * time.Second, publishers: 64}, size{events: 30_000, dur: 1500 * time.Millisecond, publishers: 64},
			[]string{"herald-sqlite", "sqlite-raw", "jetstream-syncalways", "fsync-groupcommit"},
			[]comparison{
				{herald: "herald-sqlite", anchor: "sqlite-raw", min: 0.85},
				{herald: "herald-sqlite", anchor: "jetstream-syncalways", min: 10},
				{herald: "herald-sqlite", anchor: "fsync-groupcommit"},
			}),
		mk("durable-e2e", "64 durable publishers → 1 durable subscriber; rate until the last event is handled",
			size{events: 100_000, dur: 6 * time.Second, publishers: 64}, size{events: 10_000, dur: 2 * time.Second, publishers: 64},
			[]string{"herald-sqlite", "herald-nats", "watermill-jetstream"},
			[]comparison{
				{herald: "herald-sqlite", anchor: "watermill-jetstream", min: 3},
				{herald: "herald-nats", anchor: "watermill-jetstream"},
			}),
		mk("latency-10k", "publish → handler latency at 10,000 events/s",
			size{events: 50_000, rate: 10_000, publishers: 64}, size{events: 10_000, rate: 10_000, publishers: 64},
			[]string{"herald", "herald-sqlite", "watermill-gochannel", "watermill-jetstream"},
			[]comparison{
				{herald: "herald", anchor: "watermill-gochannel", latency: true},
				{herald: "herald-sqlite", anchor: "watermill-jetstream", latency: true},
			}),
		mk("replay-1m", "read every stored event from the start, in order",
			size{events: 1_000_000}, size{events: 100_000},
			[]string{"herald-sqlite", "herald-nats", "sqlite-raw", "nats-raw"},
			[]comparison{
				{herald: "herald-sqlite", anchor: "sqlite-raw"},
				{herald: "herald-nats", anchor: "nats-raw"},
			}),
		mk("nats-publish", "publish to JetStream (embedded server, file storage) and wait for every ack",
			size{events: 300_000, dur: 5 * time.Second, publishers: 64}, size{events: 30_000, dur: 1500 * time.Millisecond, publishers: 64},
			[]string{"herald-nats", "herald-nats-4096", "nats-raw", "nats-raw-64"},
			[]comparison{
				{herald: "herald-nats", anchor: "nats-raw", min: 0.7},
				{herald: "herald-nats-4096", anchor: "nats-raw"},
				{herald: "herald-nats", anchor: "nats-raw-64"},
			}),
		consume,
		mk("http-single", "POST one event per request to the herald server on loopback, 64 clients",
			size{events: 200_000, dur: 5 * time.Second, publishers: 64}, size{events: 20_000, dur: 1500 * time.Millisecond, publishers: 64},
			[]string{"herald-sqlite"}, nil),
		mk("http-batch", "POST batches of 100 events to the herald server on loopback, 8 clients",
			size{events: 500_000, dur: 5 * time.Second, publishers: 8, batch: 100}, size{events: 50_000, dur: 1500 * time.Millisecond, publishers: 8, batch: 100},
			[]string{"herald-sqlite"}, nil),
	}
}

// registry maps "scenario/system" to the implementations built so far,
// one family of systems after the other.
func registry() map[string]system {
	r := map[string]system{}
	registerInproc(r)
	registerSQLite(r)
	registerNATS(r)
	registerFsync(r)
	registerHerald(r)
	return r
}
