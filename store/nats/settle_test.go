package nats

import (
	"testing"
	"time"

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

// An event acked here while another delivery of it is held does not count
// as outstanding with this process: the server may have the ack, and the
// held delivery would then stand in for a lost delivery of another event,
// letting the later events go ahead of it. (A fault run held a partition
// back for over a minute after a lost delivery, holding second deliveries
// of events acked meanwhile, and handed 15 events of a subject out ahead
// of the lost one.)
func TestSettleLeavesOutEventsAckedHere(t *testing.T) {
	const ackWait = 30 * time.Second
	part := &partition{pending: map[uint64]int{}, acked: map[uint64]time.Time{}}
	c := &sharedConsumer{ackWait: ackWait, parts: []*partition{part}, out: map[*delivery]struct{}{}, s: &Store{}}
	deliver := func(seq uint64, at time.Time) *delivery {
		t.Helper()
		if !c.received(0, seq) {
			t.Fatalf("a delivery of %d was not handed out", seq)
		}
		d := &delivery{c: c, seq: seq, at: at}
		c.out[d] = struct{}{}
		return d
	}
	leader := &jetstream.ClusterInfo{Name: "c", Leader: "n1"}
	// Event 5 came twice (the second delivery an ack wait after the
	// first), 6 went astray, 7 came; the first delivery of 5 is acked.
	now := time.Now()
	first := deliver(5, now)
	deliver(5, now)
	deliver(7, now)
	if !first.done(true) {
		t.Fatal("the first delivery of 5 was not outstanding")
	}
	// The server holds 6 and 7 outstanding: 6 is not here.
	info := &jetstream.ConsumerInfo{Cluster: leader, NumAckPending: 2, Delivered: jetstream.SequenceInfo{Consumer: 9}}
	if got := part.ours(); got != 1 {
		t.Errorf("ours = %d, want 1 (7; 5 was acked here)", got)
	}
	if settledBy(info, true, part.ours(), 9) {
		t.Error("settled with event 6 outstanding elsewhere")
	}
	// However long the second delivery of 5 is held.
	part.forgetAcks(now.Add(10*ackWait), ackWait)
	if got := part.ours(); got != 1 {
		t.Errorf("ten ack waits later, ours = %d, want 1", got)
	}
	// A later delivery of 5 is not handed out (it is acked again).
	if c.received(0, 5) {
		t.Error("a delivery of 5 after its ack was handed out")
	}

	// A delivery acked half an ack wait after it came may have been
	// delivered again meanwhile: its ack is remembered too.
	late := deliver(11, now.Add(-ackWait))
	late.done(true)
	if c.received(0, 11) {
		t.Error("a delivery of 11 after its late ack was handed out")
	}
	// A prompt ack with no other delivery of the event here is not.
	prompt := deliver(13, now)
	prompt.done(true)
	if _, ok := part.acked[13]; ok {
		t.Error("a prompt ack of a single delivery was remembered")
	}
	// Acks of events no longer held are forgotten an ack wait later.
	part.forgetAcks(now.Add(2*ackWait), ackWait)
	if _, ok := part.acked[11]; ok {
		t.Error("the ack of 11 was kept two ack waits after, with no delivery of it held")
	}
	if _, ok := part.acked[5]; !ok {
		t.Error("the ack of 5 was forgotten while a delivery of it is held")
	}
}
