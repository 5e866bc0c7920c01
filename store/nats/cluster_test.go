package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// cluster is three JetStream servers routed together on loopback, each
// with its own folder, restartable with the same identity.
type cluster struct {
	t     *testing.T
	cfgs  []natsstore.EmbeddedConfig
	nodes []*natsstore.Embedded
	mu    sync.Mutex
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var routes []string
	ports := make([][2]int, 3)
	for i := range ports {
		ports[i] = [2]int{freePort(t), freePort(t)}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i][1]))
	}
	for i := range 3 {
		c.cfgs = append(c.cfgs, natsstore.EmbeddedConfig{
			Dir:         t.TempDir(),
			Port:        ports[i][0],
			ServerName:  fmt.Sprintf("n%d", i+1),
			ClusterName: "herald",
			ClusterPort: ports[i][1],
			Routes:      routes,
		})
	}
	c.nodes = make([]*natsstore.Embedded, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.start(i)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range 3 {
			c.stop(i)
		}
	})
	return c
}

func (c *cluster) start(i int) {
	e, err := natsstore.StartEmbedded(c.cfgs[i])
	if err != nil {
		c.t.Error(err)
		return
	}
	c.mu.Lock()
	c.nodes[i] = e
	c.mu.Unlock()
}

func (c *cluster) stop(i int) {
	c.mu.Lock()
	e := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if e != nil {
		e.Shutdown()
	}
}

func (c *cluster) urls() string { return clusterURLs(c.cfgs) }

// clusterURLs lists the client URLs of servers listening on loopback.
func clusterURLs(cfgs []natsstore.EmbeddedConfig) string {
	var us []string
	for _, cfg := range cfgs {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", cfg.Port))
	}
	return strings.Join(us, ",")
}

// open connects a store with replicas 3, retrying while the cluster forms.
func (c *cluster) open(t *testing.T) *natsstore.Store {
	t.Helper()
	return connectCluster(t, c.urls(), 30*time.Second)
}

// connectCluster connects a store with replicas 3 to urls, retrying for
// up to wait while the cluster forms; the test's cleanup closes it.
func connectCluster(t *testing.T, urls string, wait time.Duration) *natsstore.Store {
	t.Helper()
	var s *natsstore.Store
	testwait.NoError(t, wait, "a store on the cluster", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), wait/6)
		defer cancel()
		var err error
		s, err = natsstore.Connect(ctx, urls, natsstore.WithReplicas(3), natsstore.WithRequestTimeout(3*time.Second))
		return err
	})
	t.Cleanup(func() { s.Close() })
	return s
}

// leader returns the index of the events stream's leader.
func (c *cluster) leader(t *testing.T, s *natsstore.Store) int {
	t.Helper()
	js, _ := jetstream.New(s.Conn())
	leader := streamLeader(js, c.cfgs, 60*time.Second)
	if leader < 0 {
		t.Fatal("the events stream has no leader after 60s")
	}
	return leader
}

// streamLeader returns the index in cfgs of the server that leads the
// event stream, or -1 when none does within d.
func streamLeader(js jetstream.JetStream, cfgs []natsstore.EmbeddedConfig, d time.Duration) int {
	leader := -1
	testwait.Until(d, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "HERALD_EVENTS")
		if err != nil || st.CachedInfo().Cluster == nil {
			return false
		}
		for i, cfg := range cfgs {
			if cfg.ServerName == st.CachedInfo().Cluster.Leader {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

type acked struct {
	id  string
	pos uint64
	pub int
}

// publishing is what publishers returns: how many events are acknowledged
// so far, and (once stop is closed) every ack.
type publishing struct {
	mu  sync.Mutex
	out []acked
	wg  sync.WaitGroup
}

func (p *publishing) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.out)
}

// progress waits until n more events are acknowledged: publishing goes on.
func (p *publishing) progress(t *testing.T, n int) {
	t.Helper()
	want := p.count() + n
	testwait.Within(t, 60*time.Second, fmt.Sprintf("%d more acknowledged events", n), func() bool { return p.count() >= want })
}

func (p *publishing) acks() []acked {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}

// publishers appends events from n goroutines until stop closes, retrying
// an event (same id) until it is acknowledged, and records every ack.
func publishers(t *testing.T, s herald.Store, n int, stop <-chan struct{}) *publishing {
	pub := &publishing{}
	mu, out, wg := &pub.mu, &pub.out, &pub.wg
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e := ev(t, "fault.event", fmt.Sprintf("pub/%d", p))
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					res, err := s.Append(ctx, []*herald.Event{again(e)}, herald.AppendOptions{})
					cancel()
					if err == nil {
						mu.Lock()
						*out = append(*out, acked{e.ID, res[0].Position, p})
						mu.Unlock()
						break
					}
					if errors.Is(err, herald.ErrClosed) {
						return
					}
					// A publisher retrying through a fault paces itself
					// on the real clock, as a real one would.
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return pub
}

func again(e *herald.Event) *herald.Event {
	c := e.Clone()
	c.Position = 0
	return c
}

// verify reads the whole log and checks that every acknowledged event is
// there exactly once, at its acknowledged position, and that each
// publisher's events are in the order it published them.
func verify(t *testing.T, s herald.Store, acks []acked) {
	t.Helper()
	var evs []*herald.Event
	testwait.NoError(t, 60*time.Second, "the log with every acknowledged event", func() error {
		evs = evs[:0]
		for e, err := range s.Read(context.Background(), 0, herald.Filter{}) {
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		if len(evs) < len(acks) {
			return fmt.Errorf("%d events, %d acknowledged", len(evs), len(acks))
		}
		return nil
	})
	at := map[string]uint64{}
	var last uint64
	for _, e := range evs {
		if e.Position <= last {
			t.Fatalf("position %d after %d", e.Position, last)
		}
		last = e.Position
		if _, dup := at[e.ID]; dup {
			t.Errorf("event %s stored twice", e.ID)
		}
		at[e.ID] = e.Position
	}
	lastOf := map[int]uint64{}
	for _, a := range acks {
		p, ok := at[a.id]
		switch {
		case !ok:
			t.Errorf("acknowledged event %s (position %d) is missing", a.id, a.pos)
		case p != a.pos:
			t.Errorf("event %s acknowledged at %d, stored at %d", a.id, a.pos, p)
		case p <= lastOf[a.pub]:
			t.Errorf("publisher %d: position %d after %d", a.pub, p, lastOf[a.pub])
		}
		lastOf[a.pub] = p
	}
	t.Logf("%d events acknowledged, %d stored", len(acks), len(evs))
}

// TestClusterFaults: publishers keep publishing to a three-node cluster
// (replicas 3) while a node is shut down and restarted and while the
// stream leader is killed; afterwards every acknowledged event is present
// exactly once and in order. The default run kills the leader once; with
// -nats.faults it also restarts a follower and kills the leader twice.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	s := c.open(t)
	stop := make(chan struct{})
	pub := publishers(t, s, 4, stop)
	// Each fault comes while publishers make progress, and the next one
	// once they make progress again.
	pub.progress(t, 50)
	rounds := 1
	if *faults {
		rounds = 2
		// A follower goes away and comes back.
		f := (c.leader(t, s) + 1) % 3
		t.Logf("stopping follower n%d", f+1)
		c.stop(f)
		pub.progress(t, 50)
		c.start(f)
		pub.progress(t, 50)
	}
	for range rounds {
		l := c.leader(t, s)
		t.Logf("killing leader n%d", l+1)
		c.stop(l)
		pub.progress(t, 50) // a new leader took over
		c.start(l)
		pub.progress(t, 50)
	}
	close(stop)
	acks := pub.acks()
	if len(acks) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	verify(t, s, acks)
}

// TestReconnectDuringPublish drops the client's connection while
// publishers run: nothing acknowledged is lost or doubled.
func TestReconnectDuringPublish(t *testing.T) {
	t.Parallel()
	srv := server(t)
	s := open(t, srv)
	stop := make(chan struct{})
	pub := publishers(t, s, 4, stop)
	rounds := 2
	if *faults {
		rounds = 10
	}
	for range rounds {
		pub.progress(t, 50)
		if err := s.Conn().ForceReconnect(); err != nil {
			t.Fatal(err)
		}
	}
	pub.progress(t, 50)
	close(stop)
	acks := pub.acks()
	if len(acks) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	verify(t, s, acks)
}

// TestClusterSharedConsumeKill: two processes share a durable subscription
// on the cluster; one is killed mid-work; every event is handled.
func TestClusterSharedConsumeKill(t *testing.T) {
	t.Parallel()
	if !*faults {
		t.Skip("with -nats.faults (the single-server failover test runs by default)")
	}
	c := newCluster(t)
	a, b := c.open(t), c.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := herald.ConsumeOptions{AckWait: 2 * time.Second, MaxInFlight: 64}
	ca, err := a.Consume(ctx, "shared", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Consume(ctx, "shared", "work.>", herald.StartEarliest, opts)
	if err != nil {
		t.Fatal(err)
	}
	log := &handled{}
	wa := &worker{name: "a", c: ca, ack: true, log: log}
	wb := &worker{name: "b", c: cb, ack: true, log: log}
	var wg sync.WaitGroup
	wg.Add(2)
	actx, acancel := context.WithCancel(ctx)
	go wa.run(actx, t, &wg)
	go wb.run(ctx, t, &wg)
	pub := publishSubjects(t, b, 300, 30)
	testwait.Within(t, 10*time.Second, "a has handled some events", func() bool { return len(wa.events()) > 20 })
	// a dies mid-work.
	acancel()
	a.Conn().Close()
	more := publishSubjects(t, b, 100, 30)
	pub = append(pub, more...)
	testwait.Within(t, 40*time.Second, "every event handled once a died", func() bool {
		ids := map[string]bool{}
		for _, e := range log.snapshot() {
			ids[e.ID] = true
		}
		return len(ids) == len(pub)
	})
	cancel()
	wg.Wait()
	cb.Close()
	t.Logf("a handled %d before it died, b handled %d", len(wa.events()), len(wb.events()))
}

func (h *handled) snapshot() []*herald.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*herald.Event(nil), h.evs...)
}

// TestEmbeddedCluster forms a replicated cluster from three stores that
// each run their own JetStream node (as three `herald serve
// --nats-embedded` processes would), and checks that they share one log.
func TestEmbeddedCluster(t *testing.T) {
	t.Parallel()
	var routes []string
	var cfgs []natsstore.EmbeddedConfig
	for i := range 3 {
		cp := freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cp))
		cfgs = append(cfgs, natsstore.EmbeddedConfig{Dir: t.TempDir(), ServerName: fmt.Sprintf("h%d", i+1), ClusterName: "herald", ClusterPort: cp})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	stores := make([]*natsstore.Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].Routes = routes
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = natsstore.OpenEmbedded(ctx, cfgs[i], natsstore.WithReplicas(3))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		defer stores[i].Close()
	}
	e := ev(t, "cluster.hello", "")
	appendOne(t, stores[0], e, herald.AppendOptions{})
	for i, s := range stores[1:] {
		testwait.Within(t, 60*time.Second, "the event on every node", func() bool {
			g, err := s.Get(ctx, e.ID)
			return err == nil && g.Position == 1
		})
		_ = i
	}
}

// TestNoQuorumOutcomeUnknown: with two of three nodes down, an append
// cannot be confirmed. It must not be reported as backpressure (nothing
// stored, retry as new): it is ErrOutcomeUnknown, or backpressure only
// when JetStream refused it. Retried with the same id once the cluster
// heals, the event is stored exactly once.
func TestNoQuorumOutcomeUnknown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	s := c.open(t)
	appendOne(t, s, ev(t, "quorum.before", ""), herald.AppendOptions{})
	l := c.leader(t, s)
	// Keep the leader, which takes the write but cannot commit it.
	for i := range 3 {
		if i != l {
			c.stop(i)
		}
	}
	e := ev(t, "quorum.lost", "")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	_, err := s.Append(ctx, []*herald.Event{again(e)}, herald.AppendOptions{})
	cancel()
	switch {
	case err == nil:
		t.Fatal("an append without quorum was acknowledged")
	case errors.Is(err, herald.ErrOutcomeUnknown):
		if errors.Is(err, herald.ErrBackpressure) {
			t.Errorf("%v: both outcome unknown and backpressure", err)
		}
	case errors.Is(err, herald.ErrBackpressure):
		t.Logf("refused: %v", err)
	default:
		t.Fatalf("append without quorum: %v, want ErrOutcomeUnknown", err)
	}
	t.Logf("append without quorum: %v", err)
	// Without a deadline on ctx, the store's request timeout ends the
	// wait, with the same meaning.
	_, err = s.Append(context.Background(), []*herald.Event{ev(t, "quorum.lost", "")}, herald.AppendOptions{})
	if err == nil || !errors.Is(err, herald.ErrOutcomeUnknown) && !errors.Is(err, herald.ErrBackpressure) {
		t.Fatalf("append without quorum and without a deadline: %v, want ErrOutcomeUnknown", err)
	}
	t.Logf("append without quorum and without a deadline: %v", err)
	for i := range 3 {
		if i != l {
			c.start(i)
		}
	}
	// The retry with the same id: stored once, whatever the first did.
	var res herald.AppendResult
	testwait.Within(t, 60*time.Second, "the retry acknowledged", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rs, err := s.Append(ctx, []*herald.Event{again(e)}, herald.AppendOptions{})
		if err != nil {
			return false
		}
		res = rs[0]
		return true
	})
	n := 0
	for x := range s.Read(context.Background(), 0, herald.Filter{Name: "quorum.lost"}) {
		if x != nil && x.ID == e.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("event stored %d times, want once (retry: %+v)", n, res)
	}
	t.Logf("retry: position %d, duplicate %v", res.Position, res.Duplicate)
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// oncePerOutage checks that a log says fail at most once before each ok
// line: a failure is logged when it starts, not on every retry.
func oncePerOutage(log, fail, ok string) error {
	failing := false
	for line := range strings.Lines(log) {
		switch {
		case strings.Contains(line, fail):
			if failing {
				return fmt.Errorf("%q logged again before %q", fail, ok)
			}
			failing = true
		case strings.Contains(line, ok):
			failing = false
		}
	}
	return nil
}

// TestClusterHeals: with two of three nodes down the store is not ready
// (Ready fails) and a store opened meanwhile waits, logging one line per
// wait, instead of failing; once the nodes are back it opens and both are
// ready. (It used to ask for one line in the whole run; under load a
// later step of opening, or a heartbeat, can fail on its own while the
// cluster elects its leaders again, and is logged once too.)
func TestClusterHeals(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.open(t) // the cluster has formed
	var slogs lockedBuffer
	s, err := natsstore.Connect(context.Background(), c.urls(), natsstore.WithReplicas(3),
		natsstore.WithRequestTimeout(2*time.Second), natsstore.WithLogger(slog.New(slog.NewTextHandler(&slogs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("a healthy cluster is not ready: %v", err)
	}
	// A shared subscription heartbeats every second: during the outage
	// every heartbeat fails, and that is logged once.
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(context.Background())
	if _, err := bus.Subscribe(context.Background(), "heal.>", herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil }), herald.Durable("heal")); err != nil {
		t.Fatal(err)
	}
	l := c.leader(t, s)
	down := []int{(l + 1) % 3, (l + 2) % 3}
	for _, i := range down {
		c.stop(i)
	}
	testwait.Within(t, 60*time.Second, "Ready failing without quorum", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := s.Ready(ctx)
		return err != nil && errors.Is(err, herald.ErrBackpressure)
	})

	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	type opened struct {
		s   *natsstore.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s2, err := natsstore.Connect(ctx, c.urls(), natsstore.WithReplicas(3), natsstore.WithRequestTimeout(2*time.Second), natsstore.WithLogger(log))
		done <- opened{s2, err}
	}()
	// Opening either waits (saying so once), or, when nothing it asks for
	// needs a quorum at that moment, opens and reports itself not ready.
	var o opened
	early := false
	testwait.Within(t, 60*time.Second, "the opening store saying it waits", func() bool {
		select {
		case got := <-done:
			if got.err != nil {
				t.Fatalf("opening without quorum failed instead of waiting: %v", got.err)
			}
			o, early = got, true
			return true
		default:
		}
		return strings.Contains(logs.String(), "not available yet")
	})
	if early {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := o.s.Ready(ctx)
		cancel()
		if !errors.Is(err, herald.ErrBackpressure) {
			t.Fatalf("opened without quorum and Ready says %v", err)
		}
	}
	for _, i := range down {
		c.start(i)
	}
	if !early {
		select {
		case o = <-done:
		case <-time.After(90 * time.Second):
			t.Fatal("the store did not open after the cluster healed")
		}
		if o.err != nil {
			t.Fatalf("opening while the cluster healed: %v\n%s", o.err, logs.String())
		}
		// One line for each wait: a step of opening that meets the
		// cluster still electing its leaders once the nodes are back
		// waits again, with a line of its own.
		if err := oncePerOutage(logs.String(), "not available yet", "JetStream answered"); err != nil {
			t.Errorf("%v:\n%s", err, logs.String())
		}
	}
	defer o.s.Close()
	testwait.Within(t, 60*time.Second, "both stores ready again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return s.Ready(ctx) == nil && o.s.Ready(ctx) == nil
	})
	testwait.Within(t, 60*time.Second, "membership working again", func() bool {
		out := slogs.String()
		return !strings.Contains(out, "membership is failing") || strings.Contains(out, "membership works again")
	})
	// Once for the outage (a loaded machine may add a short one of its
	// own, before or after, logged once too).
	if err := oncePerOutage(slogs.String(), "membership is failing", "membership works again"); err != nil {
		t.Errorf("%v:\n%s", err, slogs.String())
	}
	t.Logf("the first store logged:\n%s", slogs.String())
}
