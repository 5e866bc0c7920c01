package nats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats.go/jetstream"
)

var jepsenFaults = flag.Duration("nats.jepsen", 30*time.Second,
	"how long TestJepsen kills and restarts nodes; forming the cluster and checking the outcome take about half a minute more")

// nodeEnv, set in the environment of the test binary, makes it a
// JetStream node instead of a test run (see runNode).
const nodeEnv = "HERALD_TEST_NATS_NODE"

// runNode is the whole of a node process that TestJepsen starts: it runs
// the embedded JetStream server configured by cfgJSON (an EmbeddedConfig),
// writes "ready" on stdout once the server takes clients, and runs until
// it is killed or its standard input closes (the test ended, or died).
func runNode(cfgJSON string) int {
	var cfg natsstore.EmbeddedConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node config:", err)
		return 2
	}
	e, err := natsstore.StartEmbedded(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	e.Shutdown()
	return 0
}

// node is one JetStream server running as a child process: killed with
// SIGKILL and started again with the same name, folder and ports.
type node struct {
	cfg natsstore.EmbeddedConfig
	log string // the process's standard error, appended across restarts
	cmd *exec.Cmd
}

// procCluster is three nodes routed together on loopback. Only the test's
// goroutine starts and kills nodes.
type procCluster struct {
	t     *testing.T
	nodes []*node
}

func newProcCluster(t *testing.T) *procCluster {
	t.Helper()
	c := &procCluster{t: t}
	var routes []string
	ports := make([][2]int, 3)
	for i := range ports {
		ports[i] = [2]int{freePort(t), freePort(t)}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i][1]))
	}
	logs := t.TempDir()
	for i := range 3 {
		c.nodes = append(c.nodes, &node{
			cfg: natsstore.EmbeddedConfig{
				Dir:         t.TempDir(),
				Port:        ports[i][0],
				ServerName:  fmt.Sprintf("n%d", i+1),
				ClusterName: "jepsen",
				ClusterPort: ports[i][1],
				Routes:      routes,
			},
			log: fmt.Sprintf("%s/n%d.log", logs, i+1),
		})
	}
	// Registered after the folders, so it runs before they are removed.
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		if t.Failed() {
			for _, n := range c.nodes {
				if b, err := os.ReadFile(n.log); err == nil && len(b) > 0 {
					t.Logf("%s stderr:\n%s", n.cfg.ServerName, tail(string(b), 4000))
				}
			}
		}
	})
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { errs[i] = c.start(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs node i as a child process (the test binary, told by nodeEnv
// to be a node) and waits until it takes clients.
func (c *procCluster) start(i int) error {
	n := c.nodes[i]
	cfg, err := json.Marshal(n.cfg)
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(cfg))
	stderr, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	// The node runs until its standard input closes: when this process
	// dies, so do its nodes.
	if _, err := cmd.StdinPipe(); err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", n.cfg.ServerName, err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			err = fmt.Errorf("%s did not start: %q, %v", n.cfg.ServerName, line, err)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("%s did not start within 60s", n.cfg.ServerName)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	n.cmd = cmd
	return nil
}

// kill sends node i SIGKILL (kill -9) and reaps it.
func (c *procCluster) kill(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
}

func (c *procCluster) cfgs() []natsstore.EmbeddedConfig {
	var cfgs []natsstore.EmbeddedConfig
	for _, n := range c.nodes {
		cfgs = append(cfgs, n.cfg)
	}
	return cfgs
}

// publication is what one client learned about one event it published.
type publication struct {
	id      string
	client  int
	seq     int
	subject string
	pos     uint64
	acked   bool // false: its outcome was still unknown when the run ended
	dup     bool // the acknowledging attempt found it stored already
	unknown int  // attempts that failed with ErrOutcomeUnknown
	refused int  // attempts that failed with ErrBackpressure
	other   int  // attempts that failed otherwise
	first   time.Time
	ackAt   time.Time
}

// jepsenClient publishes events one at a time on its own bus and
// connection: event seq goes to subject "c<n>/s<seq mod 4>" with an id
// chosen before the first attempt (a UUIDv7 for odd clients, a string of
// its own for even ones), and a failed publish is tried again with the
// same id until its outcome is known.
type jepsenClient struct {
	n     int
	bus   *herald.Bus
	out   []publication
	errs  []string // the first few unexpected errors
	pause time.Duration
}

func (c *jepsenClient) event(seq int) (*herald.Event, error) {
	e, err := herald.NewEvent("jepsen.event", map[string]int{"client": c.n, "seq": seq})
	if err != nil {
		return nil, err
	}
	if c.n%2 == 0 {
		e.ID = fmt.Sprintf("jepsen-c%d-%07d", c.n, seq)
	}
	e.Subject = fmt.Sprintf("c%d/s%d", c.n, seq%4)
	return e, nil
}

// run publishes until stop closes, then finishes the event under way;
// when giveUp closes it leaves that event's outcome unknown.
func (c *jepsenClient) run(stop, giveUp <-chan struct{}) {
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		e, err := c.event(seq)
		if err != nil {
			c.errs = append(c.errs, err.Error())
			return
		}
		p := publication{id: e.ID, client: c.n, seq: seq, subject: e.Subject, first: time.Now()}
		for !p.acked {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var dup bool
			pos, err := c.bus.Publish(ctx, e.Clone(), herald.ReportDuplicate(&dup))
			cancel()
			switch {
			case err == nil:
				p.acked, p.dup, p.pos, p.ackAt = true, dup, pos, time.Now()
				continue
			case errors.Is(err, herald.ErrOutcomeUnknown):
				p.unknown++
			case errors.Is(err, herald.ErrBackpressure):
				p.refused++
			default:
				p.other++
				if len(c.errs) < 5 {
					c.errs = append(c.errs, err.Error())
				}
			}
			select {
			case <-giveUp:
				c.out = append(c.out, p)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.out = append(c.out, p)
		time.Sleep(c.pause)
	}
}

// handlings records every call of one durable subscription's handlers,
// across the buses that share it, and every step of the deliveries its
// stores' shared consumers made (to explain an ordering failure).
type handlings struct {
	mu    sync.Mutex
	calls []handledEvent
	ids   map[string]int // id → calls
	steps []natsstore.ConsumeTrace
}

type handledEvent struct {
	id, subject string
	pos         uint64
	at          time.Time
}

func (h *handlings) handler() herald.Handler {
	return herald.HandlerFunc(func(_ context.Context, e *herald.Event) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, handledEvent{e.ID, e.Subject, e.Position, time.Now()})
		h.ids[e.ID]++
		return nil
	})
}

func (h *handlings) trace(step natsstore.ConsumeTrace) {
	h.mu.Lock()
	h.steps = append(h.steps, step)
	h.mu.Unlock()
}

// explain returns, for a subject whose event at pos was first handled
// after the one at later, every delivery step of the subject's events
// from pos to later and every other step of their partition (gaps,
// consumer states read, pulls started and stopped) from five seconds
// before the first step of those events until pos was first handled; and
// for each consumer state that let held events go, the events counted as
// the process's whose last step before was not a delivery to it. h.mu is
// held.
func (h *handlings) explain(subject string, pos, later uint64) []string {
	inSubject := map[uint64]bool{}
	var handledAt time.Time
	for _, c := range h.calls {
		if c.subject == subject && c.pos >= pos && c.pos <= later {
			inSubject[c.pos] = true
		}
		if c.pos == pos && handledAt.IsZero() {
			handledAt = c.at
		}
	}
	part := -1
	var from time.Time
	for _, st := range h.steps {
		if inSubject[st.Stream] && st.Kind != "settle" {
			if part < 0 {
				part = st.Part
			}
			if from.IsZero() || st.At.Before(from) {
				from = st.At
			}
		}
	}
	from = from.Add(-5 * time.Second)
	line := func(st natsstore.ConsumeTrace) string {
		return fmt.Sprintf("%s %s p%d %-6s stream %d consumer %d delivered %d %s",
			st.At.Format("15:04:05.000"), st.Member[len(st.Member)-4:], st.Part, st.Kind, st.Stream, st.Consumer, st.Delivered, st.Note)
	}
	var out []string
	for i, st := range h.steps {
		ours := inSubject[st.Stream] && st.Kind != "settle"
		partStep := st.Part == part && st.Kind != "recv" && st.Kind != "out" && st.Kind != "ack" && st.Kind != "nak" &&
			!st.At.Before(from) && !st.At.After(handledAt)
		if !ours && !partStep {
			continue
		}
		if len(out) < 1500 {
			out = append(out, line(st))
		}
		if !partStep || st.Kind != "settle" || !strings.Contains(st.Note, "settled=true") {
			continue
		}
		// What each event counted as the process's last went through.
		last, acked := map[uint64]natsstore.ConsumeTrace{}, map[uint64]natsstore.ConsumeTrace{}
		for _, prev := range h.steps[:i] {
			if prev.Part == part && prev.Kind != "settle" && prev.Kind != "gap" {
				last[prev.Stream] = prev
				if prev.Kind == "ack" {
					acked[prev.Stream] = prev
				}
			}
		}
		for _, seq := range st.Ours {
			prev, ok := last[seq]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("    counted %d: no step before", seq))
			case prev.Member != st.Member || prev.Kind != "recv" && prev.Kind != "out":
				out = append(out, fmt.Sprintf("    counted %d: last step %s", seq, line(prev)))
			}
			if a, ok := acked[seq]; ok {
				out = append(out, fmt.Sprintf("    counted %d: acked before %s", seq, line(a)))
			}
		}
	}
	for _, c := range h.calls {
		if inSubject[c.pos] {
			out = append(out, fmt.Sprintf("%s handled position %d", c.at.Format("15:04:05.000"), c.pos))
		}
	}
	return out
}

// missing counts the ids not handled yet.
func (h *handlings) missing(ids []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, id := range ids {
		if h.ids[id] == 0 {
			n++
		}
	}
	return n
}

// TestJepsen runs a fault test in the style of Jepsen: three JetStream
// nodes, each its own process, with replicas 3; eight clients publish
// with ids they choose, two durable subscriptions (each shared by two
// buses) handle every event; every few seconds a node, the event stream's
// leader at least every third time, is killed with SIGKILL and started
// again. At the end every acknowledged id must be stored exactly once at
// the position it was acknowledged at, each subject's events in the order
// they were published, and every event handled by both subscriptions
// (duplicate handlings are counted, none may be missing), each subject's
// events first handled in log order. -nats.jepsen sets how long faults are
// injected (default 30 s).
func TestJepsen(t *testing.T) {
	t.Parallel()
	began := time.Now()
	c := newProcCluster(t)
	admin := connectCluster(t, clusterURLs(c.cfgs()), 90*time.Second)
	js, err := jetstream.New(admin.Conn())
	if err != nil {
		t.Fatal(err)
	}

	subs := map[string]*handlings{}
	for _, name := range []string{"jepsen-a", "jepsen-b"} {
		h := &handlings{ids: map[string]int{}}
		subs[name] = h
		for range 2 {
			s := connectCluster(t, clusterURLs(c.cfgs()), 90*time.Second)
			natsstore.TraceConsume(s, h.trace)
			bus := newBus(t, s)
			if _, err := bus.Subscribe(context.Background(), "jepsen.>", h.handler(), herald.Durable(name), herald.Concurrency(4), herald.Timeout(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop, giveUp := make(chan struct{}), make(chan struct{})
	clients := make([]*jepsenClient, 8)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &jepsenClient{n: i, bus: newBus(t, connectCluster(t, clusterURLs(c.cfgs()), 90*time.Second)), pause: 20 * time.Millisecond}
	}
	stopped := false
	defer func() { // on a failure below
		if !stopped {
			close(stop)
			close(giveUp)
			wg.Wait()
		}
	}()
	for _, cl := range clients {
		wg.Go(func() { cl.run(stop, giveUp) })
	}

	// The nemesis: every 2 to 5 seconds a node is killed, stays down for
	// up to 3 seconds and is started again; every third kill is the
	// stream leader's (when it has one), the others pick at random.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	start := time.Now()
	t.Logf("%.1fs: cluster formed, clients publishing; faults for %v", time.Since(began).Seconds(), *jepsenFaults)
	kills, leaderKills := 0, 0
	var firstKill time.Time
	for time.Since(start) < *jepsenFaults {
		time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
		victim, why := rng.IntN(3), "random"
		l := streamLeader(js, c.cfgs(), 5*time.Second)
		if kills%3 == 0 && l >= 0 {
			victim, why = l, "leader"
		}
		if victim == l {
			leaderKills++
			why += ", the stream leader"
		}
		if kills == 0 {
			firstKill = time.Now()
		}
		kills++
		t.Logf("%5.1fs kill -9 n%d (%s)", time.Since(start).Seconds(), victim+1, why)
		c.kill(victim)
		time.Sleep(time.Duration(200+rng.IntN(2800)) * time.Millisecond)
		if err := c.start(victim); err != nil {
			t.Fatal(err)
		}
	}
	faultsEnd := time.Now()

	// Every node is up: clients finish the event under way.
	close(stop)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	if !testwait.Until(2*time.Minute, func() bool {
		select {
		case <-finished:
			return true
		default:
			return false
		}
	}) {
		t.Errorf("clients still had no outcome 2 minutes after the faults ended")
	}
	close(giveUp)
	<-finished
	stopped = true
	t.Logf("%.1fs: faults over, every client has finished", time.Since(began).Seconds())

	var pubs []publication
	for _, cl := range clients {
		pubs = append(pubs, cl.out...)
		for _, e := range cl.errs {
			t.Logf("client %d: %s", cl.n, e)
		}
	}
	var ackedIDs []string
	for _, p := range pubs {
		if p.acked {
			ackedIDs = append(ackedIDs, p.id)
		}
	}
	if len(ackedIDs) == 0 {
		t.Fatal("nothing was acknowledged")
	}

	// The log, read until it holds every acknowledged id (a replica may
	// answer behind the leader) or a minute passes.
	var stored map[string][]uint64
	testwait.Until(time.Minute, func() bool {
		m := map[string][]uint64{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for e, err := range admin.Read(ctx, 0, herald.Filter{}) {
			if err != nil {
				return false
			}
			m[e.ID] = append(m[e.ID], e.Position)
		}
		stored = m
		for _, id := range ackedIDs {
			if len(m[id]) == 0 {
				return false
			}
		}
		return true
	})
	testwait.Until(2*time.Minute, func() bool {
		return subs["jepsen-a"].missing(ackedIDs) == 0 && subs["jepsen-b"].missing(ackedIDs) == 0
	})

	t.Logf("%.1fs: log read, subscriptions caught up", time.Since(began).Seconds())
	r := jepsenCheck(pubs, stored, subs)
	r.faults, r.kills, r.leaderKills = faultsEnd.Sub(start), kills, leaderKills
	for _, p := range pubs {
		if p.acked && p.ackAt.Before(firstKill) {
			r.healthy++
		}
	}
	r.healthyFor = firstKill.Sub(start)
	t.Log(r.String())
	for _, f := range r.failures {
		t.Error(f)
	}
}

func newBus(t *testing.T, s *natsstore.Store) *herald.Bus {
	t.Helper()
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the store's cleanup, so it runs before it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bus.Close(ctx)
	})
	return bus
}

// jepsenReport holds the figures of one run and what went wrong.
type jepsenReport struct {
	faults             time.Duration
	kills, leaderKills int

	published, acked, unresolved int
	lost, duplicated, misplaced  int
	outOfOrder                   int
	unacked                      int // stored, and the client never learned so
	unknownEvents                int // events with an unknown outcome at least once
	unknownAttempts              int
	unknownStored                int // of those, found stored by a retry
	refused, other               int // attempts
	dupFirst                     int // acknowledged as a duplicate with no failed attempt before
	maxGap, maxWait              time.Duration
	healthy                      int // acknowledged before the first kill
	healthyFor                   time.Duration
	handled                      map[string][3]int // subscription → missing, duplicate handlings, out of order
	failures                     []string
}

func jepsenCheck(pubs []publication, stored map[string][]uint64, subs map[string]*handlings) *jepsenReport {
	r := &jepsenReport{published: len(pubs), handled: map[string][3]int{}}
	fail := func(format string, args ...any) {
		if len(r.failures) < 20 {
			r.failures = append(r.failures, fmt.Sprintf(format, args...))
		}
	}
	ours := map[string]bool{}
	var acks []time.Time
	lastOf := map[string]uint64{} // subject → position of its last acknowledged event
	for _, p := range pubs {
		ours[p.id] = true
		if p.unknown > 0 {
			r.unknownEvents++
			r.unknownAttempts += p.unknown
			if p.acked && p.dup {
				r.unknownStored++
			}
		}
		r.refused += p.refused
		r.other += p.other
		if !p.acked {
			r.unresolved++
			if n := len(stored[p.id]); n > 1 {
				r.duplicated++
				fail("event %s (outcome unknown at the end) stored %d times", p.id, n)
			}
			continue
		}
		r.acked++
		acks = append(acks, p.ackAt)
		r.maxWait = max(r.maxWait, p.ackAt.Sub(p.first))
		if p.dup && p.unknown+p.other == 0 {
			r.dupFirst++
		}
		at := stored[p.id]
		switch {
		case len(at) == 0:
			r.lost++
			fail("acknowledged event %s (client %d, seq %d, position %d) is missing", p.id, p.client, p.seq, p.pos)
			continue
		case len(at) > 1:
			r.duplicated++
			fail("acknowledged event %s stored %d times, at %v", p.id, len(at), at)
		}
		if at[0] != p.pos {
			r.misplaced++
			fail("event %s acknowledged at position %d, stored at %d", p.id, p.pos, at[0])
		}
		if last := lastOf[p.subject]; at[0] <= last {
			r.outOfOrder++
			fail("subject %s: event %s (seq %d) at position %d, after an earlier event at %d", p.subject, p.id, p.seq, at[0], last)
		}
		lastOf[p.subject] = at[0]
	}
	for id := range stored {
		if !ours[id] {
			fail("event %s is stored, and no client published it", id)
		}
	}
	for _, p := range pubs {
		if !p.acked && len(stored[p.id]) > 0 {
			r.unacked++
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].Before(acks[j]) })
	for i := 1; i < len(acks); i++ {
		r.maxGap = max(r.maxGap, acks[i].Sub(acks[i-1]))
	}

	for _, name := range slices.Sorted(maps.Keys(subs)) {
		h := subs[name]
		h.mu.Lock()
		var st [3]int
		for _, p := range pubs {
			if p.acked && h.ids[p.id] == 0 {
				st[0]++
				fail("%s: acknowledged event %s (position %d) was never handled", name, p.id, p.pos)
			}
		}
		st[1] = len(h.calls) - len(h.ids)
		seen := map[string]bool{}
		last := map[string]uint64{}
		for _, c := range h.calls {
			if seen[c.id] {
				continue // a redelivery
			}
			seen[c.id] = true
			if c.pos < last[c.subject] {
				st[2]++
				fail("%s: subject %s: position %d first handled after %d; its deliveries:\n%s", name, c.subject, c.pos, last[c.subject],
					strings.Join(h.explain(c.subject, c.pos, last[c.subject]), "\n"))
			}
			last[c.subject] = max(last[c.subject], c.pos)
		}
		h.mu.Unlock()
		r.handled[name] = st
	}
	return r
}

func (r *jepsenReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "faults for %v: %d kills, %d of the stream leader; before the first, %d acknowledged in %v\n",
		r.faults.Round(time.Second), r.kills, r.leaderKills, r.healthy, r.healthyFor.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "published %d events: %d acknowledged, %d lost, %d duplicated, %d at another position, %d out of order; %d with an outcome still unknown at the end (%d of them stored)\n",
		r.published, r.acked, r.lost, r.duplicated, r.misplaced, r.outOfOrder, r.unresolved, r.unacked)
	fmt.Fprintf(&b, "outcome unknown: %d events (%d attempts), %d of them found stored by the retry; %d attempts refused (backpressure), %d failed otherwise; %d acknowledged as already stored on a first attempt\n",
		r.unknownEvents, r.unknownAttempts, r.unknownStored, r.refused, r.other, r.dupFirst)
	fmt.Fprintf(&b, "longest time without an acknowledgement %v; longest publish (first attempt to acknowledgement) %v\n",
		r.maxGap.Round(10*time.Millisecond), r.maxWait.Round(10*time.Millisecond))
	for _, name := range slices.Sorted(maps.Keys(r.handled)) {
		st := r.handled[name]
		fmt.Fprintf(&b, "%s: %d missing, %d duplicate handlings, %d out of order\n", name, st[0], st[1], st[2])
	}
	return b.String()
}
