package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func registerNATS(r map[string]system) {
	r["durable-publish-64/jetstream-syncalways"] = system{run: func(ctx context.Context, e *env) error {
		return jetstreamSyncPublishRun(ctx, e, true)
	}}
	r["nats-publish/nats-raw"] = system{run: natsRawPublishRun}
	r["nats-publish/nats-raw-64"] = system{run: func(ctx context.Context, e *env) error {
		return jetstreamSyncPublishRun(ctx, e, false)
	}}
	r["nats-consume/nats-raw"] = system{prepare: natsRawPrepare, run: natsRawConsumeRun}
	r["replay-1m/nats-raw"] = system{prepare: natsRawPrepare, run: natsRawReplayRun}
	r["durable-e2e/watermill-jetstream"] = system{run: watermillJetStreamE2ERun}
	r["latency-10k/watermill-jetstream"] = system{run: watermillJetStreamLatencyRun}
}

// startNATS starts an embedded JetStream server with file storage in
// dir/nats, listening on a free loopback port. syncAlways makes it fsync
// every write; otherwise it keeps the server's default sync interval.
func startNATS(dir string, syncAlways bool) (*server.Server, error) {
	opts := &server.Options{
		Host:                   "127.0.0.1",
		Port:                   -1,
		JetStream:              true,
		StoreDir:               filepath.Join(dir, "nats"),
		SyncAlways:             syncAlways,
		NoLog:                  true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		MaxPayload:             8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats-server did not start")
	}
	return s, nil
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

const (
	rawStream  = "BENCH"
	rawSubject = "bench.event"
	// wmTopic is Watermill's topic: it names the stream and its subject,
	// and a stream name may not hold a dot.
	wmTopic = "bench_event"
)

// connectRaw connects to s and makes sure the anchor's stream exists.
func connectRaw(ctx context.Context, s *server.Server) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     rawStream,
		Subjects: []string{"bench.>"},
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, st, nil
}

// openRaw starts an embedded server on dir and connects a raw client to
// its bench stream; done closes the client, then the server.
func openRaw(ctx context.Context, dir string, syncAlways bool) (jetstream.JetStream, jetstream.Stream, func(), error) {
	s, err := startNATS(dir, syncAlways)
	if err != nil {
		return nil, nil, nil, err
	}
	nc, js, st, err := connectRaw(ctx, s)
	if err != nil {
		stopNATS(s)
		return nil, nil, nil, err
	}
	return js, st, func() { nc.Close(); stopNATS(s) }, nil
}

// jetstreamSyncPublishRun: e.size.publishers goroutines each publishing
// and waiting for its ack (jetstream-syncalways, to a server that fsyncs
// every write; nats-raw-64, as many in flight as herald-nats keeps with
// its 64 publishers each waiting for their Publish).
func jetstreamSyncPublishRun(ctx context.Context, e *env, syncAlways bool) error {
	js, _, done, err := openRaw(ctx, e.dir, syncAlways)
	if err != nil {
		return err
	}
	defer done()
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		// With syncAlways every write waits for its fsync: allow far
		// more than the client's default 5 s when the disk is slow.
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := js.Publish(pctx, rawSubject, payload)
		return err
	})
	e.meter.end(n)
	return err
}

// natsAsyncPublish publishes up to n events with PublishAsync until d has
// passed (0: no limit) and waits for every ack; it returns how many were
// acknowledged.
func natsAsyncPublish(ctx context.Context, js jetstream.JetStream, n int, d time.Duration) (int64, error) {
	payload := makePayload(0, 0)
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	futures := make([]jetstream.PubAckFuture, 0, 4096)
	var acked int64
	settle := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
				acked++
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := range n {
		if !deadline.IsZero() && i%256 == 0 && time.Now().After(deadline) {
			break
		}
		// A slow disk can hold acks back for a while: wait for room
		// instead of failing after the default 200 ms.
		f, err := js.PublishAsync(rawSubject, payload, jetstream.WithStallWait(time.Minute))
		if err != nil {
			return acked, err
		}
		futures = append(futures, f)
		if len(futures) == cap(futures) {
			if err := settle(); err != nil {
				return acked, err
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return acked, ctx.Err()
	}
	return acked, settle()
}

func natsRawPublishRun(ctx context.Context, e *env) error {
	js, _, done, err := openRaw(ctx, e.dir, false)
	if err != nil {
		return err
	}
	defer done()
	e.meter.begin()
	n, err := natsAsyncPublish(ctx, js, e.size.events, e.size.dur)
	e.meter.end(n)
	return err
}

func natsRawPrepare(ctx context.Context, dir string, sz size) error {
	js, _, done, err := openRaw(ctx, dir, false)
	if err != nil {
		return err
	}
	defer done()
	n, err := natsAsyncPublish(ctx, js, sz.events, 0)
	if err != nil {
		return err
	}
	if n != int64(sz.events) {
		return fmt.Errorf("stored %d events, want %d", n, sz.events)
	}
	return nil
}

// natsRawConsumeRun reads the prepared stream with a new durable pull
// consumer, acking each message explicitly.
func natsRawConsumeRun(ctx context.Context, e *env) error {
	_, st, done, err := openRaw(ctx, e.dir, false)
	if err != nil {
		return err
	}
	defer done()
	name := fmt.Sprintf("bench%d", time.Now().UnixNano())
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	defer st.DeleteConsumer(context.Background(), name)
	c := newCounter(int64(e.size.events))
	var ackErr atomic.Value
	e.meter.begin()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			ackErr.CompareAndSwap(nil, err)
		}
		c.add(1)
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	if err := c.wait(ctx, 2*time.Minute); err != nil {
		return err
	}
	e.meter.end(c.n.Load())
	if err, _ := ackErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// natsRawReplayRun reads the prepared stream with an ordered consumer.
func natsRawReplayRun(ctx context.Context, e *env) error {
	_, st, done, err := openRaw(ctx, e.dir, false)
	if err != nil {
		return err
	}
	defer done()
	e.meter.begin()
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	c := newCounter(int64(e.size.events))
	var last uint64
	var orderErr error
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err == nil && md.Sequence.Stream <= last && orderErr == nil {
			orderErr = fmt.Errorf("sequence %d after %d", md.Sequence.Stream, last)
		}
		if err == nil {
			last = md.Sequence.Stream
		}
		c.add(1)
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	if err := c.wait(ctx, 2*time.Minute); err != nil {
		return err
	}
	e.meter.end(c.n.Load())
	return orderErr
}

// watermillJetStream sets up Watermill's NATS JetStream publisher and a
// durable subscriber on the embedded server, as its documentation shows.
func watermillJetStream(ctx context.Context, s *server.Server) (*wmnats.Publisher, <-chan *message.Message, func(), error) {
	logger := watermill.NopLogger{}
	js := wmnats.JetStreamConfig{
		AutoProvision:    true,
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
		DurablePrefix:    "bench",
	}
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:       s.ClientURL(),
		Marshaler: &wmnats.NATSMarshaler{},
		JetStream: js,
	}, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              s.ClientURL(),
		CloseTimeout:     30 * time.Second,
		AckWaitTimeout:   30 * time.Second,
		SubscribeTimeout: 30 * time.Second,
		Unmarshaler:      &wmnats.NATSMarshaler{},
		JetStream:        js,
	}, logger)
	if err != nil {
		pub.Close()
		return nil, nil, nil, err
	}
	msgs, err := sub.Subscribe(ctx, wmTopic)
	if err != nil {
		pub.Close()
		sub.Close()
		return nil, nil, nil, err
	}
	return pub, msgs, func() { pub.Close(); sub.Close() }, nil
}

func watermillJetStreamE2ERun(ctx context.Context, e *env) error {
	s, err := startNATS(e.dir, false)
	if err != nil {
		return err
	}
	defer stopNATS(s)
	pub, msgs, closeAll, err := watermillJetStream(ctx, s)
	if err != nil {
		return err
	}
	defer closeAll()
	c := newCounter(int64(e.size.events))
	go func() {
		for m := range msgs {
			m.Ack()
			c.add(1)
		}
	}()
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		return pub.Publish(wmTopic, message.NewMessage(watermill.NewUUID(), payload))
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

func watermillJetStreamLatencyRun(ctx context.Context, e *env) error {
	s, err := startNATS(e.dir, false)
	if err != nil {
		return err
	}
	defer stopNATS(s)
	pub, msgs, closeAll, err := watermillJetStream(ctx, s)
	if err != nil {
		return err
	}
	defer closeAll()
	n := e.size.events
	e.meter.withLatency(n)
	c := newCounter(int64(n))
	go func() {
		for m := range msgs {
			e.meter.latencySince(m.Payload)
			m.Ack()
			c.add(1)
		}
	}()
	e.meter.begin()
	sent, err := pace(ctx, n, e.size.rate, e.size.publishers, func(seq int) error {
		return pub.Publish(wmTopic, message.NewMessage(watermill.NewUUID(), makePayload(seq, time.Now().UnixNano())))
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
