package nats

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A process that holds back a partition's events after a lost delivery
// hands them out only on a consumer state that accounts for the lost one.
// In a fault run, a node that had just restarted answered the consumer
// info request from the consumer's configuration alone (no state, no
// cluster information): taken at its word, it let 66 held events go ahead
// of the lost one.
func TestSettledByTrustsOnlyTheConsumerLeader(t *testing.T) {
	leader := &jetstream.ClusterInfo{Name: "c", Leader: "n2"}
	for _, c := range []struct {
		name string
		info jetstream.ConsumerInfo
		ours int
		last uint64
		want bool
	}{
		{"a restarted node's answer from the configuration", jetstream.ConsumerInfo{}, 66, 88, false},
		{"no leader", jetstream.ConsumerInfo{Cluster: &jetstream.ClusterInfo{Name: "c"}, Delivered: jetstream.SequenceInfo{Consumer: 88}}, 66, 88, false},
		{"a state behind the deliveries received", jetstream.ConsumerInfo{Cluster: leader, NumAckPending: 3, Delivered: jetstream.SequenceInfo{Consumer: 80}}, 66, 88, false},
		{"one delivery elsewhere", jetstream.ConsumerInfo{Cluster: leader, NumAckPending: 67, Delivered: jetstream.SequenceInfo{Consumer: 88}}, 66, 88, false},
		{"every delivery here", jetstream.ConsumerInfo{Cluster: leader, NumAckPending: 66, Delivered: jetstream.SequenceInfo{Consumer: 90}}, 66, 88, true},
		{"a fresh consumer", jetstream.ConsumerInfo{Cluster: leader}, 0, 0, true},
	} {
		if got := settledBy(&c.info, true, c.ours, c.last); got != c.want {
			t.Errorf("%s: settled %v, want %v", c.name, got, c.want)
		}
	}
	// A single server has no cluster information to give.
	if !settledBy(&jetstream.ConsumerInfo{NumAckPending: 2, Delivered: jetstream.SequenceInfo{Consumer: 5}}, false, 2, 5) {
		t.Error("a single server's consumer state was not trusted")
	}
}
