package nats

import (
	"bytes"
	"testing"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// A shared consumer pulls no more bytes than its MaxBytes allow (plus one
// delivery per partition): 24 events of 256 KiB were all
// pulled into memory at once, bounded only by the count of deliveries in
// flight, whatever the bus's read-ahead budget said.
func TestSharedConsumerBoundsBytes(t *testing.T) {
	s, err := OpenEmbedded(t.Context(), EmbeddedConfig{Dir: t.TempDir(), MaxPayload: 1 << 20}, WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blob := bytes.Repeat([]byte("x"), 256<<10)
	for i := range 24 {
		e, err := herald.NewEvent("recording.ended", map[string]any{"n": i, "blob": string(blob)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(t.Context(), []*herald.Event{e}, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const maxBytes = 2 << 20
	hc, err := s.Consume(t.Context(), "notes", ">", herald.StartEarliest, herald.ConsumeOptions{MaxInFlight: 1024, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	c := hc.(*sharedConsumer)
	held := func() (int64, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.held, c.roomWaited
	}
	// Nothing is fetched by the bus: the pull stops once the budget is
	// taken and waits for room.
	testwait.For(t, "the pull to wait for room", func() bool { _, waiting := held(); return waiting })
	n, _ := held()
	if limit := int64(maxBytes + len(c.parts)*300<<10); n > limit {
		t.Fatalf("%d bytes pulled, want at most %d", n, limit)
	}
	// Settling what was pulled lets the rest come: every event arrives.
	got := 0
	for got < 24 {
		ds, err := hc.Fetch(t.Context(), 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := d.Ack(t.Context()); err != nil {
				t.Fatal(err)
			}
			got++
		}
		if n, _ := held(); n > int64(maxBytes+len(c.parts)*300<<10) {
			t.Fatalf("after %d events, %d bytes pulled", got, n)
		}
	}
}
