package nats_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
)

// clusterOf asks bus for its cluster until ok accepts the answer, and
// returns that answer.
func clusterOf(t *testing.T, bus *herald.Bus, what string, ok func(*herald.ClusterStatus) bool) *herald.ClusterStatus {
	t.Helper()
	var cs *herald.ClusterStatus
	testwait.NoError(t, 60*time.Second, what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if cs, err = bus.Cluster(ctx); err != nil {
			return err
		}
		if cs == nil || !ok(cs) {
			return fmt.Errorf("the cluster is %+v", cs)
		}
		return nil
	})
	return cs
}

// TestClusterStatus: a bus on a three-node cluster tells its nodes, the
// event stream's leader and replicas and what its durable subscription
// has pending; a node that stops shows as offline.
func TestClusterStatus(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	s := c.open(t)
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()) })
	ctx := t.Context()
	gate := make(chan struct{})
	defer close(gate)
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil
	})
	if _, err := bus.Subscribe(ctx, "work.>", h, herald.Durable("w"), herald.Concurrency(1)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e, err := herald.NewEvent("work.item", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	cs := clusterOf(t, bus, "three current nodes and a leader", func(cs *herald.ClusterStatus) bool {
		if len(cs.Nodes) != 3 || cs.Leader == "" {
			return false
		}
		for _, n := range cs.Nodes {
			if !n.Current || n.Offline {
				return false
			}
		}
		// Every event is pending or delivered and not acknowledged.
		return len(cs.Consumers) == 1 && cs.Consumers[0].Pending+uint64(cs.Consumers[0].AckPending) == 5
	})
	if cs.Name != "herald" || cs.Replicas != 3 || !cs.Nodes[0].Leader || cs.Nodes[0].Name != cs.Leader ||
		cs.Consumers[0].Subscription != "w" || cs.Error != "" {
		t.Fatalf("cluster: %+v", cs)
	}

	l := c.leader(t, s)
	follower := (l + 1) % 3
	name := fmt.Sprintf("n%d", follower+1)
	c.stop(follower)
	cs = clusterOf(t, bus, name+" offline", func(cs *herald.ClusterStatus) bool {
		for _, n := range cs.Nodes {
			if n.Name == name {
				return n.Offline && !n.Leader
			}
		}
		return false
	})
	if len(cs.Nodes) != 3 || cs.Leader == "" || cs.Leader == name {
		t.Fatalf("with %s stopped: %+v", name, cs)
	}
}

// TestClusterStatusSingleNode: a server outside a cluster is its own
// leader; a store that is closed says so.
func TestClusterStatusSingleNode(t *testing.T) {
	t.Parallel()
	s, err := natsstore.OpenEmbedded(t.Context(), natsstore.EmbeddedConfig{Dir: t.TempDir(), ServerName: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := s.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cs.Name != "" || cs.Leader != "solo" || cs.Replicas != 1 || len(cs.Nodes) != 1 || !cs.Nodes[0].Leader || !cs.Nodes[0].Current {
		t.Fatalf("single node: %+v", cs)
	}
	s.Close()
	if _, err := s.Cluster(t.Context()); err != herald.ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// TestEmbeddedMonitor: EmbeddedConfig.Monitor serves nats-server's
// monitoring endpoint on the given address.
func TestEmbeddedMonitor(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir(), Monitor: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if e.MonitorAddr() != addr {
		t.Fatalf("MonitorAddr %q, want %q", e.MonitorAddr(), addr)
	}
	resp, err := http.Get("http://" + addr + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/varz: %d", resp.StatusCode)
	}
	off, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown()
	if off.MonitorAddr() != "" {
		t.Fatalf("no monitor asked, got %q", off.MonitorAddr())
	}
	if _, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir(), Monitor: "nope"}); err == nil {
		t.Fatal("a monitor address without a port was taken")
	}
}
