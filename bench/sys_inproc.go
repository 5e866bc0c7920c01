package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

func registerInproc(r map[string]system) {
	r["inproc-1to1/go-channel"] = system{run: goChannelRun}
	r["inproc-fanout10/go-channel"] = system{run: goChannelRun}

	wm := system{run: func(ctx context.Context, e *env) error {
		return watermillRun(ctx, e, gochannel.Config{})
	}}
	wmBlock := system{run: func(ctx context.Context, e *env) error {
		return watermillRun(ctx, e, gochannel.Config{BlockPublishUntilSubscriberAck: true})
	}}
	r["inproc-1to1/watermill-gochannel"] = wm
	r["inproc-1to1/watermill-gochannel-block"] = wmBlock
	r["inproc-fanout10/watermill-gochannel"] = wm
	r["latency-10k/watermill-gochannel"] = system{run: watermillLatencyRun}
}

// counter counts deliveries and closes done when it reaches target.
type counter struct {
	n, target atomic.Int64
	done      chan struct{}
	once      sync.Once
}

func newCounter(target int64) *counter {
	c := &counter{done: make(chan struct{})}
	c.target.Store(target)
	return c
}

func (c *counter) add(k int64) {
	if c.n.Add(k) >= c.target.Load() {
		c.once.Do(func() { close(c.done) })
	}
}

// setTarget lowers the target (when publishing stopped early) and closes
// done if it is already reached.
func (c *counter) setTarget(t int64) {
	c.target.Store(t)
	c.add(0)
}

// wait waits for the target, at most d.
func (c *counter) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		return fmt.Errorf("only %d of %d deliveries after %s", c.n.Load(), c.target.Load(), d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func subscribers(sz size) int { return max(1, sz.subscribers) }

// goChannelRun is the limit: a bare buffered channel per subscriber.
func goChannelRun(ctx context.Context, e *env) error {
	type msg struct {
		seq     int
		payload []byte
	}
	n, subs := e.size.events, subscribers(e.size)
	payload := makePayload(0, 0)
	chans := make([]chan msg, subs)
	c := newCounter(int64(n * subs))
	for i := range chans {
		chans[i] = make(chan msg, 1024)
		go func(ch chan msg) {
			k := int64(0)
			for m := range ch {
				_ = m
				k++
				if k == 1024 {
					c.add(k)
					k = 0
				}
			}
			c.add(k)
		}(chans[i])
	}
	e.meter.begin()
	for i := range n {
		for _, ch := range chans {
			ch <- msg{seq: i, payload: payload}
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	if err := c.wait(ctx, time.Minute); err != nil {
		return err
	}
	e.meter.end(int64(n))
	return nil
}

func watermillRun(ctx context.Context, e *env, cfg gochannel.Config) error {
	n, subs := e.size.events, subscribers(e.size)
	ps := gochannel.NewGoChannel(cfg, watermill.NopLogger{})
	defer ps.Close()
	c := newCounter(int64(n * subs))
	for range subs {
		msgs, err := ps.Subscribe(ctx, "bench.event")
		if err != nil {
			return err
		}
		go func() {
			for m := range msgs {
				m.Ack()
				c.add(1)
			}
		}()
	}
	payload := makePayload(0, 0)
	e.meter.begin()
	for range n {
		if err := ps.Publish("bench.event", message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			return err
		}
	}
	if err := c.wait(ctx, 2*time.Minute); err != nil {
		return err
	}
	e.meter.end(int64(n))
	return nil
}

func watermillLatencyRun(ctx context.Context, e *env) error {
	n := e.size.events
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer ps.Close()
	e.meter.withLatency(n)
	c := newCounter(int64(n))
	msgs, err := ps.Subscribe(ctx, "bench.event")
	if err != nil {
		return err
	}
	go func() {
		for m := range msgs {
			e.meter.latencySince(m.Payload)
			m.Ack()
			c.add(1)
		}
	}()
	e.meter.begin()
	sent, err := pace(ctx, n, e.size.rate, e.size.publishers, func(seq int) error {
		return ps.Publish("bench.event", message.NewMessage(watermill.NewUUID(), makePayload(seq, time.Now().UnixNano())))
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
