package nats

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

var (
	_ herald.SharedStore     = (*Store)(nil)
	_ herald.DamagedDelivery = (*delivery)(nil)
)

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
// consumer per partition of the log (see WithPartitions).
//
// Sharing: the processes that consume one subscription register in the
// state bucket and heartbeat there; each partition belongs to one live
// process (rendezvous hashing), which alone pulls from it. When membership
// changes, a process that loses a partition stops pulling it, lets the
// deliveries it already has be finished, and then releases it.
//
// Ordering: each partition consumer is in a "pinned client" priority group,
// so JetStream delivers a partition to one process at a time, in log order;
// events of one subject are always in one partition, and the bus keeps a
// subject's events in order within the process. A process that dies keeps
// its partitions pinned for AckWait plus two seconds, by which time its
// unacknowledged deliveries are due again. The process that takes a
// partition over holds back what it receives until every outstanding
// delivery of the partition is in its hands, and then hands them out in log
// order (see pull), so it handles the dead process's events first. It does
// the same when a delivery goes astray on its way (the connection or the
// node it went through died): a later delivery of the partition is held
// back until the lost one comes again, after the ack wait.
//
// So a subject's events are first handed out in log order, across node
// failures and partitions moving, as long as the consumer's leader answers
// with its state and no process acknowledges an event while another
// process holds a delivery of it (that takes a delivery kept unsettled
// past the ack wait). Subject order can still break when a delivery is
// negatively acknowledged with a delay (a retry) and the partition moves
// meanwhile. An event whose acknowledgement was lost comes again; the
// process that acknowledged it acknowledges it again without handing it
// out when it comes within an ack wait of the acknowledgement (the usual
// case), and hands it out again otherwise (at least once).
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
	n := s.cfg.partitions
	perPart := max(1, (opts.MaxInFlight+n-1)/n)
	// Pull requests expire quickly so that stopping a partition (a
	// handover, Close) waits at most this long for the request in flight.
	expiry := time.Second
	c := &sharedConsumer{
		s:       s,
		sub:     sub,
		id:      nuid.Next(),
		msgs:    make(chan pmsg, min(opts.MaxInFlight, 4096)),
		done:    make(chan struct{}),
		parts:   make([]*partition, n),
		perPart: perPart,
		fetchN:  min(perPart, 256),
		expiry:  expiry,
		ackWait: opts.AckWait,
		hb:      min(max(opts.AckWait/4, 250*time.Millisecond), time.Second),
		out:     map[*delivery]struct{}{},

		maxBytes: opts.MaxBytes,
		room:     make(chan struct{}),
	}
	if ci := s.events.CachedInfo().Cluster; ci != nil && ci.Name != "" {
		c.clustered = true
	}
	for p := range n {
		name := s.consumerName(sub, p)
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
			PinnedTTL:      opts.AckWait + 2*expiry,
			Metadata:       map[string]string{"herald_subscription": sub, "herald_pattern": pattern},
		}
		var cons jetstream.Consumer
		// A cluster that is healing answers with transient errors: keep
		// trying until ctx ends.
		err := retryTransient(ctx, s, "joining shared subscription "+sub, func(rctx context.Context) error {
			var err error
			cons, err = s.events.Consumer(rctx, name)
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound):
				cons, err = s.events.CreateConsumer(rctx, cfg)
				if errors.Is(err, jetstream.ErrConsumerExists) {
					cons, err = s.events.Consumer(rctx, name)
				}
			case err == nil:
				have := cons.CachedInfo().Config
				if have.FilterSubject != cfg.FilterSubject || have.AckWait != cfg.AckWait || have.MaxAckPending != cfg.MaxAckPending || have.PinnedTTL != cfg.PinnedTTL {
					have.FilterSubject, have.AckWait, have.MaxAckPending, have.PinnedTTL = cfg.FilterSubject, cfg.AckWait, cfg.MaxAckPending, cfg.PinnedTTL
					have.Metadata = cfg.Metadata
					cons, err = s.events.UpdateConsumer(rctx, have)
				}
			}
			return err
		})
		if err != nil {
			return nil, s.mapErr("joining shared subscription "+sub, err)
		}
		c.parts[p] = &partition{name: name, cons: cons, pending: map[uint64]int{}, sizes: map[uint64]int{}}
	}
	// Joining may have taken longer than one request timeout: registering
	// and taking partitions retry on their own, like creating consumers.
	if err := retryTransient(ctx, s, "joining shared subscription "+sub, c.heartbeat); err != nil {
		return nil, err
	}
	if err := retryTransient(ctx, s, "joining shared subscription "+sub, c.rebalance); err != nil {
		c.Close()
		return nil, err
	}
	c.wg.Add(1)
	go c.membership()
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

// partition is one partition consumer as seen by one process.
type partition struct {
	name string
	cons jetstream.Consumer
	stop chan struct{} // while this process pulls it; closed to stop
	// pending counts, by stream sequence, the deliveries pulled and not
	// yet acked or naked.
	pending map[uint64]int
	// sizes holds the bytes of each event in pending.
	sizes map[uint64]int
	// acked holds the events this process acked (see ours): each for
	// an ack wait at least, and as long as a delivery of it is held.
	acked     ackLog
	releasing bool
}

// consumeTrace is one step of a shared consumer's deliveries, reported to
// Store.trace (tests only).
type consumeTrace struct {
	At     time.Time
	Sub    string
	Member string
	Part   int
	// Kind is "recv" (a delivery came), "gap" (a delivery went astray),
	// "settle" (the consumer state was read; Note says what it showed),
	// "out" (handed to the bus), "ack", "nak", "back" (handed back),
	// "start" or "stop" (pulling).
	Kind      string
	Stream    uint64 // stream sequence
	Consumer  uint64 // consumer (delivery) sequence
	Delivered uint64 // NumDelivered
	Note      string
	// Ours lists, on a "settle" step, the events counted as this
	// process's.
	Ours []uint64
}

// report reports step t (its time, subscription and member filled in) to
// the store's trace, if any.
func (c *sharedConsumer) report(t consumeTrace) {
	if c.s.trace == nil {
		return
	}
	t.At, t.Sub, t.Member = time.Now(), c.sub, c.id
	c.s.trace(t)
}

// trace reports a step of partition p to the store's trace, if any.
func (c *sharedConsumer) trace(p int, kind string, stream, consumer, delivered uint64, note string) {
	c.report(consumeTrace{Part: p, Kind: kind, Stream: stream, Consumer: consumer, Delivered: delivered, Note: note})
}

// pmsg is a delivery pulled from partition p, with what its metadata
// says (read once, when it is pulled; mdErr when it has none).
type pmsg struct {
	m         jetstream.Msg
	p         int
	seq       uint64 // stream sequence
	delivered uint64 // deliveries of the event so far, this one included
	mdErr     error
}

type sharedConsumer struct {
	s       *Store
	sub     string
	id      string // member id
	msgs    chan pmsg
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	perPart int
	fetchN  int // messages per pull request
	expiry  time.Duration
	ackWait time.Duration
	hb      time.Duration

	// clustered: the event stream is in a JetStream cluster.
	clustered bool

	// maxBytes bounds the bytes pulled and not settled (0: no bound).
	maxBytes int64

	mu    sync.Mutex
	parts []*partition
	out   map[*delivery]struct{} // handed out, not acked or naked
	// held is the bytes of the deliveries pulled and not settled; room
	// is closed (and replaced) when some are settled while a pull waits
	// for room (roomWaited).
	held       int64
	largest    int64 // the largest delivery pulled so far, in bytes
	room       chan struct{}
	roomWaited bool
}

type member struct {
	At  int64 `json:"at"`  // unix nanoseconds of the last heartbeat
	TTL int64 `json:"ttl"` // nanoseconds after which it counts as gone
}

func (c *sharedConsumer) memberPrefix() string { return "m." + encodeToken(c.sub) + "." }

// heartbeat records this process as a live member of the subscription.
func (c *sharedConsumer) heartbeat(ctx context.Context) error {
	b, _ := json.Marshal(member{At: time.Now().UnixNano(), TTL: int64(3 * c.hb)})
	if _, err := c.s.subs.Put(ctx, c.memberPrefix()+c.id, b); err != nil {
		return c.s.mapErr("joining shared subscription "+c.sub, err)
	}
	return nil
}

// rebalance reads the live members and pulls exactly the partitions this
// process owns.
func (c *sharedConsumer) rebalance(ctx context.Context) error {
	now := time.Now().UnixNano()
	members := []string{c.id}
	prefix := c.memberPrefix()
	err := c.s.scanBucket(ctx, c.s.cfg.namespace+"_subs", prefix+"*", func(key string, v []byte) error {
		id := strings.TrimPrefix(key, prefix)
		var m member
		if json.Unmarshal(v, &m) != nil || id == c.id {
			return nil
		}
		if m.At+m.TTL < now {
			_ = c.s.purgeSubject(ctx, c.s.subsStream, c.s.subsSubject(key))
			return nil
		}
		members = append(members, id)
		return nil
	})
	if err != nil {
		return err
	}
	for p := range c.parts {
		mine := owner(p, members) == c.id
		c.mu.Lock()
		part := c.parts[p]
		pulling := part.stop != nil
		c.mu.Unlock()
		switch {
		case mine && !pulling:
			if err := c.startPull(p); err != nil {
				return err
			}
		case !mine && pulling:
			c.release(p)
		}
	}
	return nil
}

// owner picks the member that owns partition p: the highest hash of the
// two (rendezvous hashing), so a membership change moves few partitions.
func owner(p int, members []string) string {
	var best string
	var bestH uint64
	for _, m := range members {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s", p, m)
		if v := h.Sum64(); best == "" || v > bestH || v == bestH && m < best {
			best, bestH = m, v
		}
	}
	return best
}

func (c *sharedConsumer) startPull(p int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.parts[p]
	if part.stop != nil || part.releasing {
		return nil
	}
	part.stop = make(chan struct{})
	c.wg.Add(1)
	go c.pull(p, part.stop)
	return nil
}

// release stops pulling partition p; once the deliveries already pulled
// from it are acknowledged or negatively acknowledged (or the ack wait has
// passed), it unpins p so that its new owner takes it at once.
func (c *sharedConsumer) release(p int) {
	c.mu.Lock()
	part := c.parts[p]
	stop := part.stop
	if stop == nil || part.releasing {
		c.mu.Unlock()
		return
	}
	part.releasing = true
	close(stop)
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		deadline := time.Now().Add(c.ackWait)
		for time.Now().Before(deadline) {
			c.mu.Lock()
			n := len(part.pending)
			pulling := part.stop == stop
			c.mu.Unlock()
			if n == 0 && !pulling {
				break
			}
			select {
			case <-c.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		ctx, cancel := context.WithTimeout(c.s.base, 5*time.Second)
		_ = c.s.events.UnpinConsumer(ctx, part.name, priorityGroup)
		cancel()
		c.mu.Lock()
		part.releasing = false
		c.mu.Unlock()
	}()
}

// membership heartbeats and rebalances until Close.
func (c *sharedConsumer) membership() {
	defer c.wg.Done()
	t := time.NewTicker(c.hb)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.s.base, 3*c.hb)
		err := c.heartbeat(ctx)
		if err == nil {
			err = c.rebalance(ctx)
		}
		cancel()
		switch {
		case err == nil:
			c.s.membershipLog.ok(c.s, "shared subscription membership")
		case !c.s.closed.Load():
			c.s.membershipLog.fail(c.s, "shared subscription membership", fmt.Errorf("subscription %s: %w", c.sub, err))
		}
	}
}

// pull moves partition p's deliveries into c.msgs, one pull request
// (Fetch) at a time, until stop or Close; every message a request brings
// is passed on or handed back, none is dropped in a client-side buffer.
//
// It starts by settling: JetStream may hand out the redeliveries of a
// previous owner out of order and mixed with new events, so pull holds back
// what it receives until every delivery the consumer has outstanding is in
// this process's hands (the consumer's ack-pending count is at most the
// events this process holds or has handed out and not settled, see ours),
// then passes them on sorted by position, and from then on streams in
// delivery order.
//
// The count stands for the set only if every event counted is outstanding
// on the server. An event this process acked may not be, whatever
// delivery of it the process still holds or receives: an ack by any
// delivery settles the event, and JetStream may have sent another delivery
// before it had the ack (it delivers an event again an ack wait after it
// delivered it). Counted, such a delivery would stand in for a lost one of
// another event. So an event this process acked in the last ack wait, or
// holds a delivery of since, does not count, and a delivery of it that
// comes is acked at once, not handed out again.
//
// It settles again when a delivery is missing: every delivery, a
// redelivery too, takes the consumer's next delivery sequence, so a gap
// means that a delivery went astray (its connection or the node it went
// through died, or a request it answered had ended). JetStream delivers it
// again once the ack wait has passed; until then the later events of the
// partition wait, so that a subject's events are still handed out in log
// order.
func (c *sharedConsumer) pull(p int, stop chan struct{}) {
	defer c.wg.Done()
	part := c.parts[p]
	c.trace(p, "start", 0, 0, 0, "")
	defer func() {
		c.mu.Lock()
		if part.stop == stop {
			part.stop = nil
		}
		c.mu.Unlock()
		c.trace(p, "stop", 0, 0, 0, "")
	}()
	var held []pmsg
	handBack := func() {
		slices.SortFunc(held, func(a, b pmsg) int { return cmp.Compare(a.seq, b.seq) })
		msgs := make([]jetstream.Msg, len(held))
		for i, h := range held {
			msgs[i] = h.m
			c.trace(p, "back", h.seq, 0, 0, "")
		}
		c.s.handBack(msgs)
		for _, h := range held {
			c.settle(p, h.seq)
		}
		held = nil
	}
	// last is the delivery sequence of the last delivery received, or,
	// once settled, at least the consumer's last delivery then.
	var last uint64
	// settled reports whether every outstanding delivery of the partition
	// is held here or handed out and not settled yet.
	settled := func() bool {
		ctx, cancel := context.WithTimeout(c.s.base, 2*time.Second)
		defer cancel()
		info, err := part.cons.Info(ctx)
		if err != nil {
			c.trace(p, "settle", 0, 0, 0, "error: "+err.Error())
			return false
		}
		c.mu.Lock()
		part.forgetAcks(time.Now(), c.ackWait)
		ours, pending := part.ours(), len(part.pending)
		var counted []uint64
		if c.s.trace != nil {
			for seq := range part.pending {
				if !part.acked.has(seq) {
					counted = append(counted, seq)
				}
			}
		}
		c.mu.Unlock()
		ok := settledBy(info, c.clustered, ours, last)
		if c.s.trace != nil {
			leader := ""
			if info.Cluster != nil {
				leader = info.Cluster.Leader
			}
			slices.Sort(counted)
			c.report(consumeTrace{Part: p, Kind: "settle", Stream: info.Delivered.Stream, Consumer: info.Delivered.Consumer, Ours: counted,
				Note: fmt.Sprintf("settled=%v leader=%s ack_pending=%d ours=%d pending=%d held=%d last=%d ack_floor=%d/%d redelivered=%d",
					ok, leader, info.NumAckPending, ours, pending, len(held), last, info.AckFloor.Stream, info.AckFloor.Consumer, info.NumRedelivered)})
		}
		if !ok {
			return false
		}
		last = info.Delivered.Consumer
		return true
	}
	settling := !settled()
	stopped := false
	for {
		select {
		case <-c.done:
			handBack()
			return
		case <-stop:
			stopped = true
		default:
		}
		if stopped {
			handBack() // still settling: not ours to hand out any more
			return
		}
		n, wait := c.fetchCount()
		if wait != nil {
			select {
			case <-wait:
			case <-stop:
			case <-c.done:
			}
			continue
		}
		batch, err := part.cons.Fetch(n, jetstream.FetchMaxWait(c.expiry), jetstream.FetchPriorityGroup(priorityGroup))
		if err != nil {
			select {
			case <-c.done:
				handBack()
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for m := range batch.Messages() {
			pm := pmsg{m: m, p: p}
			md, err := m.Metadata()
			pm.mdErr = err
			if err == nil {
				pm.seq, pm.delivered = md.Sequence.Stream, md.NumDelivered
				c.trace(p, "recv", md.Sequence.Stream, md.Sequence.Consumer, md.NumDelivered, "")
				if md.Sequence.Consumer > last+1 {
					settling = true // a delivery went astray
					c.trace(p, "gap", md.Sequence.Stream, md.Sequence.Consumer, md.NumDelivered, fmt.Sprintf("last=%d", last))
				}
				last = md.Sequence.Consumer
			}
			if !c.received(p, pm.seq, msgSize(m)) {
				// Handled here already: acked again, not handed out.
				c.trace(p, "dup", pm.seq, last, 0, "")
				_ = m.Ack()
				continue
			}
			if settling {
				held = append(held, pm)
				continue
			}
			select {
			case c.msgs <- pm:
			case <-c.done:
				held = append(held, pm) // handed back below
			}
		}
		if err := batch.Error(); err != nil {
			// No consumer leader, or a pin that moved: not at once again.
			select {
			case <-c.done:
			case <-time.After(100 * time.Millisecond):
			}
		}
		if settling && settled() {
			settling = false
			slices.SortFunc(held, func(a, b pmsg) int { return cmp.Compare(a.seq, b.seq) })
			for i, h := range held {
				select {
				case c.msgs <- h:
				case <-c.done:
					held = held[i:]
					handBack()
					return
				}
			}
			held = nil
		}
	}
}

// settledBy reports whether info shows every outstanding delivery of a
// partition in this process's hands: ours is how many distinct events it
// pulled and has not settled, last the highest delivery sequence it
// received. In a cluster, an answer from no consumer leader proves
// nothing: a node that has just started answers from the consumer's
// configuration, with an empty state and no cluster information. An
// answer behind what was received is stale.
func settledBy(info *jetstream.ConsumerInfo, clustered bool, ours int, last uint64) bool {
	if clustered && (info.Cluster == nil || info.Cluster.Leader == "") || info.Delivered.Consumer < last {
		return false
	}
	return info.NumAckPending <= ours
}

// received records a delivery of the event at stream sequence seq pulled
// from partition p, and reports whether to hand it out: not when this
// process acked the event already (see pull).
func (c *sharedConsumer) received(p int, seq uint64, size int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.parts[p]
	if part.acked.has(seq) {
		return false
	}
	part.pending[seq]++
	part.sizes[seq] = size
	c.held += int64(size)
	c.largest = max(c.largest, int64(size))
	return true
}

// msgSize is about the bytes a delivery holds: its data, subject and
// headers.
func msgSize(m jetstream.Msg) int {
	n := len(m.Data()) + len(m.Subject())
	for k, vs := range m.Headers() {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// fetchCount returns how many messages the next pull request asks for,
// or, when the deliveries pulled and not settled already take maxBytes, a
// channel closed once some are settled. With a byte bound, a partition
// asks for as many as fit its share of what is left if each is as large
// as the largest pulled so far (one at first, and at least one).
func (c *sharedConsumer) fetchCount() (int, <-chan struct{}) {
	if c.maxBytes <= 0 {
		return c.fetchN, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	free := c.maxBytes - c.held
	if free <= 0 {
		c.roomWaited = true
		return 0, c.room
	}
	if c.largest == 0 {
		return 1, nil
	}
	return int(min(max(free/int64(len(c.parts))/c.largest, 1), int64(c.fetchN))), nil
}

// settle records that partition p's delivery of the event at stream
// sequence seq was acked or naked.
func (c *sharedConsumer) settle(p int, seq uint64) {
	c.mu.Lock()
	c.unpendLocked(c.parts[p], seq)
	c.mu.Unlock()
}

// unpendLocked removes one delivery of seq from part's pending, and wakes
// the pulls waiting for room; c.mu is held.
func (c *sharedConsumer) unpendLocked(part *partition, seq uint64) {
	c.held -= int64(part.sizes[seq])
	if part.pending[seq] <= 1 {
		delete(part.pending, seq)
		delete(part.sizes, seq)
	} else {
		part.pending[seq]--
	}
	if c.roomWaited {
		close(c.room)
		c.room = make(chan struct{})
		c.roomWaited = false
	}
}

// ours is how many distinct events of the partition this process holds
// that the consumer surely counts as outstanding, for settledBy: those it
// did not ack already (see pull); c.mu is held.
func (part *partition) ours() int {
	n := 0
	for seq := range part.pending {
		if !part.acked.has(seq) {
			n++
		}
	}
	return n
}

// forgetAcks drops the acks of events no longer held that are an ack wait
// old; c.mu is held.
func (part *partition) forgetAcks(now time.Time, ackWait time.Duration) {
	part.acked.forget(now, ackWait, func(seq uint64) bool { return part.pending[seq] > 0 })
}

// Fetch implements herald.Consumer.
func (c *sharedConsumer) Fetch(ctx context.Context, n int) ([]herald.Delivery, error) {
	if n <= 0 {
		n = 1
	}
	var out []herald.Delivery
	add := func(pm pmsg) {
		d, err := newDelivery(c, pm)
		if err != nil {
			// No metadata: not a JetStream delivery at all.
			c.s.cfg.logger.Error("herald nats store: a delivery without metadata, terminated", "subscription", c.sub, "err", err)
			_ = pm.m.Term()
			c.settle(pm.p, pm.seq)
			return
		}
		c.mu.Lock()
		c.out[d] = struct{}{}
		c.mu.Unlock()
		c.trace(pm.p, "out", pm.seq, 0, uint64(d.attempt), "")
		out = append(out, d)
	}
	for len(out) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, herald.ErrClosed
		case pm := <-c.msgs:
			add(pm)
		}
	}
	for len(out) < n {
		select {
		case pm := <-c.msgs:
			add(pm)
		default:
			return out, nil
		}
	}
	return out, nil
}

// Close implements herald.Consumer: it leaves the subscription's members,
// stops pulling, hands back every delivery it pulled that was not
// acknowledged yet (see handBack: they are due again at once, even after
// the server restarts), and unpins its partitions so the remaining
// processes take them at once. An Ack after Close may be too
// late: the event may already be delivered again elsewhere.
func (c *sharedConsumer) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.wg.Wait()
		var back []jetstream.Msg
		for {
			select {
			case pm := <-c.msgs:
				back = append(back, pm.m)
				c.settle(pm.p, pm.seq)
				continue
			default:
			}
			break
		}
		c.mu.Lock()
		for d := range c.out {
			back = append(back, d.m)
		}
		clear(c.out)
		c.mu.Unlock()
		c.s.handBack(back)
		c.s.consumers.Delete(c)
		if c.s.nc.IsConnected() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = c.s.purgeSubject(ctx, c.s.subsStream, c.s.subsSubject(c.memberPrefix()+c.id))
			for _, p := range c.parts {
				_ = c.s.events.UnpinConsumer(ctx, p.name, priorityGroup)
			}
			cancel()
		}
	})
	return nil
}

// handBackWait bounds how long handBack waits for the server to confirm.
const handBackWait = 2 * time.Second

// handBack negatively acknowledges msgs so that JetStream delivers them
// again at once, and waits (at most handBackWait) until the server has
// recorded every one. A plain Nak only queues a message for redelivery in
// the server's memory: a server that stops right after (OpenEmbedded's
// Close) would deliver it again only when the ack wait has passed since
// the delivery. A Nak with a delay moves the delivery's stored time
// instead, which a restart keeps; asking for a reply tells when the server
// has done it.
func (s *Store) handBack(msgs []jetstream.Msg) {
	if len(msgs) == 0 {
		return
	}
	if !s.nc.IsConnected() {
		for _, m := range msgs {
			_ = m.NakWithDelay(time.Nanosecond)
		}
		return
	}
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		for _, m := range msgs {
			_ = m.NakWithDelay(time.Nanosecond)
		}
		return
	}
	defer sub.Unsubscribe()
	nak := []byte(`-NAK {"delay":1}`)
	sent := 0
	for _, m := range msgs {
		if m.Reply() == "" || s.nc.PublishRequest(m.Reply(), inbox, nak) != nil {
			continue
		}
		sent++
	}
	deadline := time.Now().Add(handBackWait)
	for ; sent > 0; sent-- {
		if _, err := sub.NextMsg(time.Until(deadline)); err != nil {
			return
		}
	}
}

type delivery struct {
	c       *sharedConsumer
	p       int
	seq     uint64 // stream sequence
	m       jetstream.Msg
	e       *herald.Event
	attempt int
	damaged *herald.DamagedEventError // the data could not be decoded; e stands in
}

func newDelivery(c *sharedConsumer, pm pmsg) (*delivery, error) {
	if pm.mdErr != nil {
		return nil, pm.mdErr
	}
	d := &delivery{c: c, p: pm.p, seq: pm.seq, m: pm.m, attempt: int(pm.delivered)}
	var err error
	d.e, err = decodeEventData(pm.m.Data(), pm.seq)
	if err != nil {
		d.damaged = c.s.damagedEvent(pm.seq, pm.m.Subject(), pm.m.Headers().Get(hdrMsgID), err)
		d.e = d.damaged.Event
		d.e.Position = pm.seq
	}
	return d, nil
}

func (d *delivery) Event() *herald.Event { return d.e }
func (d *delivery) Attempt() int         { return d.attempt }

// Damaged implements herald.DamagedDelivery: the event's stored data could
// not be decoded, and the bus dead-letters it without a handler.
func (d *delivery) Damaged() *herald.DamagedEventError { return d.damaged }

// done removes d from the outstanding deliveries, recording an ack; it
// reports false when d was already settled (or handed back by Close).
func (d *delivery) done(ack bool) bool {
	d.c.mu.Lock()
	_, ok := d.c.out[d]
	if ok {
		delete(d.c.out, d)
		part := d.c.parts[d.p]
		d.c.unpendLocked(part, d.seq)
		if ack {
			now := time.Now()
			part.acked.add(d.seq, now)
			if part.acked.adds >= 4096 {
				part.forgetAcks(now, d.c.ackWait)
			}
		}
	}
	d.c.mu.Unlock()
	if ok {
		kind := "nak"
		if ack {
			kind = "ack"
		}
		d.c.trace(d.p, kind, d.seq, 0, uint64(d.attempt), "")
	}
	return ok
}

// Ack implements herald.Delivery. It does not wait for the server's
// confirmation: a lost ack means one more delivery after the ack wait,
// which pull acks again without handing it out (see ours).
func (d *delivery) Ack(ctx context.Context) error {
	if !d.done(true) {
		return herald.ErrClosed
	}
	return d.m.Ack()
}

// Nak implements herald.Delivery.
func (d *delivery) Nak(ctx context.Context, delay time.Duration) error {
	if !d.done(false) {
		return herald.ErrClosed
	}
	if delay <= 0 {
		return d.m.Nak()
	}
	return d.m.NakWithDelay(delay)
}

// InProgress implements herald.Delivery.
func (d *delivery) InProgress(ctx context.Context) error { return d.m.InProgress() }
