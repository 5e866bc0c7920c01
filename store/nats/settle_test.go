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

// An event acked here does not count as outstanding with this process,
// whatever delivery of it the process holds or receives: the server may
// have the ack, and the delivery would then stand in for a lost delivery
// of another event, letting the later events go ahead of it. (In a fault
// run, a process acked the second delivery of an event, received its
// third 45 ms later, counted it, and handed eight events of a subject out
// ahead of a lost delivery.)
func TestSettleLeavesOutEventsAckedHere(t *testing.T) {
	const ackWait = 30 * time.Second
	part := &partition{pending: map[uint64]int{}, sizes: map[uint64]int{}}
	c := &sharedConsumer{ackWait: ackWait, parts: []*partition{part}, out: map[*delivery]struct{}{}, s: &Store{}}
	deliver := func(seq uint64) *delivery {
		t.Helper()
		if !c.received(0, seq, 0) {
			t.Fatalf("a delivery of %d was not handed out", seq)
		}
		d := &delivery{c: c, seq: seq}
		c.out[d] = struct{}{}
		return d
	}
	leader := &jetstream.ClusterInfo{Name: "c", Leader: "n1"}
	// Event 5 came twice, 6 went astray, 7 came; the first delivery of 5
	// is acked.
	now := time.Now()
	first := deliver(5)
	deliver(5)
	deliver(7)
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
	// A delivery of an acked event that comes after the ack is not
	// handed out (it is acked again).
	if c.received(0, 5, 0) {
		t.Error("a delivery of 5 after its ack was handed out")
	}
	deliver(1000).done(true)
	if c.received(0, 1000, 0) {
		t.Error("a delivery of 1000 after its ack was handed out")
	}
	// Acks of events no longer held are forgotten an ack wait later.
	part.forgetAcks(now.Add(ackWait/2), ackWait)
	if !part.acked.has(1000) {
		t.Error("the ack of 1000 was forgotten within the ack wait")
	}
	part.forgetAcks(time.Now().Add(2*ackWait), ackWait)
	if part.acked.has(1000) {
		t.Error("the ack of 1000 was kept two ack waits later, with no delivery of it held")
	}
	if !part.acked.has(5) {
		t.Error("the ack of 5 was forgotten while a delivery of it is held")
	}
	if got := part.ours(); got != 1 {
		t.Errorf("with 5 and 7 held, ours = %d, want 1", got)
	}
}

func TestAckLog(t *testing.T) {
	var l ackLog
	now := time.Now()
	for _, seq := range []uint64{0, 63, 64, 255, 256, 1 << 40} {
		if l.has(seq) {
			t.Errorf("%d before its ack", seq)
		}
		l.add(seq, now)
		if !l.has(seq) {
			t.Errorf("%d not recorded", seq)
		}
	}
	for _, seq := range []uint64{1, 62, 65, 254, 257, 1<<40 + 1} {
		if l.has(seq) {
			t.Errorf("%d recorded, never acked", seq)
		}
	}
	l.add(1000, now.Add(time.Minute))
	l.forget(now.Add(time.Minute), 30*time.Second, func(seq uint64) bool { return seq == 63 })
	// A chunk of 256 sequences goes as a whole: 0 to 255 stay with 63.
	for seq, want := range map[uint64]bool{0: true, 63: true, 64: true, 255: true, 256: false, 1 << 40: false, 1000: true} {
		if l.has(seq) != want {
			t.Errorf("after forget: has(%d) = %v, want %v", seq, !want, want)
		}
	}
}
