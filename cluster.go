package herald

import (
	"context"

	"github.com/heraldhq/herald/api"
)

// ClusterStatus is what a store that runs on a cluster tells of it: its
// nodes, the event stream's leader and replicas, and how far behind the
// durable subscriptions' consumers are (see api.ClusterStatus).
type ClusterStatus = api.ClusterStatus

// ClusterNode is one node of a ClusterStatus.
type ClusterNode = api.ClusterNode

// ClusterConsumer is one durable subscription's lag in a ClusterStatus.
type ClusterConsumer = api.ClusterConsumer

// ClusterReporter is implemented by a store that runs on a cluster (NATS
// JetStream). Cluster returns the cluster as the store sees it now; while
// the cluster cannot answer (no quorum) it returns what it knows with the
// reason in ClusterStatus.Error, or an error. After Close it returns
// ErrClosed.
type ClusterReporter interface {
	Cluster(ctx context.Context) (*ClusterStatus, error)
}

// Cluster returns the cluster the bus's store runs on, or nil and no error
// when the store has none (memory, SQLite). GET /v1/status shows it.
func (b *Bus) Cluster(ctx context.Context) (*ClusterStatus, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	r, ok := b.store.(ClusterReporter)
	if !ok {
		return nil, nil
	}
	return r.Cluster(ctx)
}
