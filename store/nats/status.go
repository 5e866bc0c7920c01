package nats

import (
	"cmp"
	"context"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald"
)

var _ herald.ClusterReporter = (*Store)(nil)

// Cluster implements herald.ClusterReporter from the event stream's
// information (its leader and the replicas the leader sees: current,
// offline, lag) and the store's durable consumers (what each subscription
// has pending). On a server that is not part of a cluster the one node is
// its own leader. While the event stream does not answer (no quorum) it
// returns a ClusterStatus with only Error set; after Close, herald.ErrClosed.
func (s *Store) Cluster(ctx context.Context) (*herald.ClusterStatus, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	info, err := s.events.Info(ctx)
	if err != nil {
		return &herald.ClusterStatus{Nodes: []herald.ClusterNode{}, Error: "the event stream does not answer: " + err.Error()}, nil
	}
	cs := clusterOf(info)
	if cs.Consumers, err = s.consumerLag(ctx); err != nil {
		cs.Error = "listing the subscriptions' consumers: " + err.Error()
	}
	return cs, nil
}

// clusterOf describes the nodes of the stream info's cluster: the
// leader first, then the other replicas by name.
func clusterOf(info *jetstream.StreamInfo) *herald.ClusterStatus {
	cs := &herald.ClusterStatus{Replicas: max(info.Config.Replicas, 1), Nodes: []herald.ClusterNode{}}
	c := info.Cluster
	if c == nil {
		return cs
	}
	cs.Name, cs.Leader = c.Name, c.Leader
	if c.Leader != "" {
		cs.Nodes = append(cs.Nodes, herald.ClusterNode{Name: c.Leader, Leader: true, Current: true})
	}
	var others []herald.ClusterNode
	for _, p := range c.Replicas {
		if p == nil {
			continue
		}
		others = append(others, herald.ClusterNode{Name: p.Name, Current: p.Current, Offline: p.Offline,
			Lag: p.Lag, LastSeen: herald.Duration(p.Active)})
	}
	slices.SortFunc(others, func(a, b herald.ClusterNode) int { return cmp.Compare(a.Name, b.Name) })
	cs.Nodes = append(cs.Nodes, others...)
	return cs
}

// consumerLag sums the pending counts of the event stream's consumers by
// the durable subscription they serve (their herald_subscription
// metadata), sorted by name. Consumers herald did not create are left
// out.
func (s *Store) consumerLag(ctx context.Context) ([]herald.ClusterConsumer, error) {
	l := s.events.ListConsumers(ctx)
	by := map[string]*herald.ClusterConsumer{}
	for ci := range l.Info() {
		sub, ok := ci.Config.Metadata["herald_subscription"]
		if !ok {
			continue
		}
		c := by[sub]
		if c == nil {
			c = &herald.ClusterConsumer{Subscription: sub}
			by[sub] = c
		}
		c.Pending += ci.NumPending
		c.AckPending += ci.NumAckPending
		c.Redelivered += ci.NumRedelivered
	}
	out := make([]herald.ClusterConsumer, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b herald.ClusterConsumer) int { return cmp.Compare(a.Subscription, b.Subscription) })
	return out, l.Err()
}
