package main

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	hnats "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats-server/v2/server"
)

// registerHeraldNATS registers herald on store/nats, against the same
// embedded server, with the same settings, as the NATS anchors.
func registerHeraldNATS(r map[string]system) {
	r["durable-e2e/herald-nats"] = system{run: func(ctx context.Context, e *env) error {
		return withHeraldNATS(ctx, e.dir, func(st *hnats.Store) error { return heraldE2ERun(ctx, e, st) })
	}}
	r["nats-publish/herald-nats"] = system{run: func(ctx context.Context, e *env) error {
		return withHeraldNATS(ctx, e.dir, func(st *hnats.Store) error { return heraldPublishRun(ctx, e, st) })
	}}
	r["nats-publish/herald-nats-4096"] = system{run: func(ctx context.Context, e *env) error {
		return withHeraldNATS(ctx, e.dir, func(st *hnats.Store) error { return heraldPublishInFlightRun(ctx, e, st) })
	}}
	r["nats-consume/herald-nats"] = system{prepare: heraldNATSPrepare, run: heraldNATSConsumeRun}
	r["replay-1m/herald-nats"] = system{prepare: heraldNATSPrepare, run: func(ctx context.Context, e *env) error {
		return withHeraldNATS(ctx, e.dir, func(st *hnats.Store) error { return heraldReplay(ctx, e, st) })
	}}
}

// withHeraldNATS starts the embedded server on dir and opens herald's
// store on it for f.
func withHeraldNATS(ctx context.Context, dir string, f func(st *hnats.Store) error) error {
	s, err := startNATS(dir, false)
	if err != nil {
		return err
	}
	defer stopNATS(s)
	st, err := connectHeraldNATS(ctx, s)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}

func connectHeraldNATS(ctx context.Context, s *server.Server) (*hnats.Store, error) {
	// A store opened on a long log may re-index event ids first: give each
	// request more than the default 10 s on a busy machine.
	return hnats.Connect(ctx, s.ClientURL(), hnats.WithRequestTimeout(time.Minute))
}

func heraldNATSPrepare(ctx context.Context, dir string, sz size) error {
	return withHeraldNATS(ctx, dir, func(st *hnats.Store) error {
		return appendPrepared(ctx, st, sz.events)
	})
}

// heraldNATSConsumeRun handles the prepared events with a new durable
// subscription, from the start.
func heraldNATSConsumeRun(ctx context.Context, e *env) error {
	return withHeraldNATS(ctx, e.dir, func(st *hnats.Store) error {
		bus, err := herald.New(herald.WithStore(st))
		if err != nil {
			return err
		}
		defer closeBus(bus)
		c := newCounter(int64(e.size.events))
		h := herald.HandlerFunc(func(ctx context.Context, ev *herald.Event) error {
			c.add(1)
			return nil
		})
		e.meter.begin()
		name := fmt.Sprintf("bench%d", time.Now().UnixNano())
		if _, err := bus.Subscribe(ctx, benchEventName, h, herald.Durable(name)); err != nil {
			return err
		}
		if err := c.wait(ctx, 2*time.Minute); err != nil {
			return err
		}
		e.meter.end(c.n.Load())
		return nil
	})
}

// natsInFlight is how many events the raw anchor of nats-publish keeps in
// flight (see natsAsyncPublish).
const natsInFlight = 4096

// heraldPublishInFlightRun keeps as many events in flight as the anchor
// does, the way a herald user does it: natsInFlight goroutines each
// calling Publish and waiting for its result (Publish pipelines
// concurrent appends). herald's PublishBatch is not that API: it stores a
// batch atomically, as one JetStream atomic batch.
func heraldPublishInFlightRun(ctx context.Context, e *env, st herald.Store) error {
	wide := *e
	wide.size.publishers = natsInFlight
	return heraldPublishRun(ctx, &wide, st)
}
