package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/nats-io/nats.go/jetstream"
)

var _ herald.SharedStore = (*Store)(nil)

// priorityGroup is the JetStream priority group herald's shared consumers
// pull in.
const priorityGroup = "herald"

// Defaults of ConsumeOptions' zero fields.
const (
	defaultAckWait     = 30 * time.Second
	defaultMaxInFlight = 1024
)

// consumerName is the durable name of partition p of shared subscription sub.
func (s *Store) consumerName(sub string, p int) string {
	t := encodeToken(sub)
	if len(t) > 64 || strings.ContainsAny(t, "=") {
		sum := sha256.Sum256([]byte(sub))
		t = "h" + hex.EncodeToString(sum[:16])
	}
	return s.cfg.namespace + "_" + t + "_p" + strconv.Itoa(p)
}

// Consume implements herald.SharedStore with one durable JetStream pull
// consumer per partition of the log (see WithPartitions), each in a
// "pinned client" priority group: at any time one process receives a
// partition's events, so events of one subject (always in one partition)
// reach one process in log order, and the bus there keeps them in order.
// Processes that join share the partitions they win; a partition whose
// process stops pulling (it died, or its Consumer closed) moves to another
// process after the ack wait, and its unacknowledged events are delivered
// again there — only then can an event of a subject be handled after a
// later one of the same subject, the usual at-least-once redelivery.
//
// A process that joins while others hold every partition stands by until
// one is released; a closing Consumer releases its partitions at once.
func (s *Store) Consume(ctx context.Context, sub string, pattern string, start herald.Start, opts herald.ConsumeOptions) (herald.Consumer, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if sub == "" {
		return nil, fmt.Errorf("%w: empty subscription name", herald.ErrInvalidEvent)
	}
	if err := herald.ValidatePattern(pattern); err != nil {
		return nil, err
	}
	if opts.AckWait <= 0 {
		opts.AckWait = defaultAckWait
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = defaultMaxInFlight
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()

	policy, startSeq, err := s.startPolicy(rctx, start)
	if err != nil {
		return nil, err
	}
	parts := s.cfg.partitions
	perPart := max(1, (opts.MaxInFlight+parts-1)/parts)
	c := &sharedConsumer{
		s:     s,
		sub:   sub,
		msgs:  make(chan jetstream.Msg, perPart),
		done:  make(chan struct{}),
		names: make([]string, parts),
	}
	var conses []jetstream.Consumer
	for p := range parts {
		name := s.consumerName(sub, p)
		c.names[p] = name
		cfg := jetstream.ConsumerConfig{
			Durable:        name,
			Description:    "herald shared subscription " + sub,
			FilterSubject:  s.subj.partitionFilter(p, pattern),
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        opts.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  perPart,
			DeliverPolicy:  policy,
			OptStartSeq:    startSeq,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{priorityGroup},
			PinnedTTL:      opts.AckWait,
			Replicas:       0, // the stream's
			Metadata:       map[string]string{"herald_subscription": sub, "herald_pattern": pattern},
		}
		cons, err := s.events.Consumer(rctx, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			cons, err = s.events.CreateConsumer(rctx, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				cons, err = s.events.Consumer(rctx, name)
			}
		case err == nil:
			have := cons.CachedInfo().Config
			if have.FilterSubject != cfg.FilterSubject || have.AckWait != cfg.AckWait || have.MaxAckPending != cfg.MaxAckPending {
				have.FilterSubject, have.AckWait, have.MaxAckPending, have.PinnedTTL = cfg.FilterSubject, cfg.AckWait, cfg.MaxAckPending, cfg.PinnedTTL
				have.Metadata = cfg.Metadata
				cons, err = s.events.UpdateConsumer(rctx, have)
			}
		}
		if err != nil {
			return nil, s.mapErr("joining shared subscription "+sub, err)
		}
		conses = append(conses, cons)
	}
	for _, cons := range conses {
		it, err := cons.Messages(
			jetstream.PullPriorityGroup(priorityGroup),
			jetstream.PullMaxMessages(min(perPart, 256)),
			jetstream.PullExpiry(max(opts.AckWait/2, time.Second)),
		)
		if err != nil {
			c.Close()
			return nil, s.mapErr("joining shared subscription "+sub, err)
		}
		c.its = append(c.its, it)
		c.wg.Add(1)
		go c.pull(it)
	}
	s.consumers.Store(c, struct{}{})
	return c, nil
}

// startPolicy turns a herald.Start into a JetStream deliver policy.
func (s *Store) startPolicy(ctx context.Context, start herald.Start) (jetstream.DeliverPolicy, uint64, error) {
	str := start.String()
	switch {
	case str == "earliest":
		return jetstream.DeliverAllPolicy, 0, nil
	case str == "latest":
		return jetstream.DeliverNewPolicy, 0, nil
	case strings.HasPrefix(str, "position "):
		p, err := strconv.ParseUint(strings.TrimPrefix(str, "position "), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("nats store: start %q: %w", str, err)
		}
		if p <= 1 {
			return jetstream.DeliverAllPolicy, 0, nil
		}
		return jetstream.DeliverByStartSequencePolicy, p, nil
	case strings.HasPrefix(str, "time "):
		t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(str, "time "))
		if err != nil {
			return 0, 0, fmt.Errorf("nats store: start %q: %w", str, err)
		}
		for e, err := range s.Read(ctx, 0, herald.Filter{Since: t, Limit: 1}) {
			if err != nil {
				return 0, 0, err
			}
			return jetstream.DeliverByStartSequencePolicy, e.Position, nil
		}
		return jetstream.DeliverNewPolicy, 0, nil
	}
	return 0, 0, fmt.Errorf("nats store: unknown start %q", str)
}

// deleteSharedConsumers removes the JetStream consumers of sub, if any.
func (s *Store) deleteSharedConsumers(ctx context.Context, sub string) error {
	for p := range s.cfg.partitions {
		err := s.events.DeleteConsumer(ctx, s.consumerName(sub, p))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return s.mapErr("deleting shared subscription "+sub, err)
		}
	}
	return nil
}

type sharedConsumer struct {
	s     *Store
	sub   string
	names []string
	its   []jetstream.MessagesContext
	msgs  chan jetstream.Msg
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (c *sharedConsumer) pull(it jetstream.MessagesContext) {
	defer c.wg.Done()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			select {
			case <-c.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case c.msgs <- m:
		case <-c.done:
			_ = m.Nak()
			return
		}
	}
}

// Fetch implements herald.Consumer.
func (c *sharedConsumer) Fetch(ctx context.Context, n int) ([]herald.Delivery, error) {
	if n <= 0 {
		n = 1
	}
	var out []herald.Delivery
	add := func(m jetstream.Msg) {
		d, err := newDelivery(m)
		if err != nil {
			c.s.cfg.logger.Error("herald nats store: undecodable event, terminated", "subscription", c.sub, "err", err)
			_ = m.Term()
			return
		}
		out = append(out, d)
	}
	for len(out) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, herald.ErrClosed
		case m := <-c.msgs:
			add(m)
		}
	}
	for len(out) < n {
		select {
		case m := <-c.msgs:
			add(m)
		default:
			return out, nil
		}
	}
	return out, nil
}

// Close implements herald.Consumer: it stops pulling, hands back the
// deliveries it had not given out yet, and unpins its partitions so another
// process takes them at once. Deliveries given out and not acknowledged are
// delivered again after the ack wait.
func (c *sharedConsumer) Close() error {
	c.once.Do(func() {
		close(c.done)
		for _, it := range c.its {
			it.Stop()
		}
		c.wg.Wait()
		for {
			select {
			case m := <-c.msgs:
				_ = m.Nak()
				continue
			default:
			}
			break
		}
		c.s.consumers.Delete(c)
		if !c.s.closed.Load() || c.s.nc.IsConnected() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			for _, name := range c.names {
				_ = c.s.events.UnpinConsumer(ctx, name, priorityGroup)
			}
			cancel()
		}
	})
	return nil
}

type delivery struct {
	m       jetstream.Msg
	e       *herald.Event
	attempt int
}

func newDelivery(m jetstream.Msg) (*delivery, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	e, err := decodeEventData(m.Data(), md.Sequence.Stream)
	if err != nil {
		return nil, err
	}
	return &delivery{m: m, e: e, attempt: int(md.NumDelivered)}, nil
}

func (d *delivery) Event() *herald.Event { return d.e }
func (d *delivery) Attempt() int         { return d.attempt }

// Ack implements herald.Delivery. It does not wait for the server's
// confirmation: a lost ack means one more delivery after the ack wait.
func (d *delivery) Ack(ctx context.Context) error { return d.m.Ack() }

func (d *delivery) Nak(ctx context.Context, delay time.Duration) error {
	if delay <= 0 {
		return d.m.Nak()
	}
	return d.m.NakWithDelay(delay)
}

func (d *delivery) InProgress(ctx context.Context) error { return d.m.InProgress() }
