package nats_test

import (
	"context"
	"errors"
	"testing"

	herald "github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	natsstore "github.com/heraldhq/herald/store/nats"
	natsgo "github.com/nats-io/nats.go"
)

// damage stores, beside the events of s, a message on the stream subject
// of like (an event already stored) whose data is not an event, as a
// damaged disk or a foreign writer would leave it, with message id id. It
// returns its position.
func damage(t *testing.T, s *natsstore.Store, like uint64, id string) uint64 {
	t.Helper()
	js, st := jsStream(t, s, "HERALD_EVENTS")
	raw, err := st.GetMsg(t.Context(), like)
	if err != nil {
		t.Fatal(err)
	}
	m := natsgo.NewMsg(raw.Subject)
	m.Data = []byte(`{"id":` + "\x00\xff")
	m.Header.Set("Nats-Msg-Id", id)
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// A read that meets a message it cannot decode ends with a
// herald.DamagedEventError that names its position, id and name, and a
// read after it goes on (it ended with a plain error, which stalled every
// reader at the event before it).
func TestReadYieldsDamagedEvent(t *testing.T) {
	s := open(t, server(t))
	first := appendOne(t, s, ev(t, "recording.ended", ""), herald.AppendOptions{})
	bad := damage(t, s, first.Position, "broken-1")
	last := appendOne(t, s, ev(t, "recording.ended", ""), herald.AppendOptions{})

	var got []uint64
	var de *herald.DamagedEventError
	for e, err := range s.Read(t.Context(), 0, herald.Filter{}) {
		if err != nil {
			if !errors.As(err, &de) {
				t.Fatalf("read failed with %v, want a DamagedEventError", err)
			}
			break
		}
		got = append(got, e.Position)
	}
	if len(got) != 1 || got[0] != first.Position {
		t.Fatalf("read before the damage: %v, want [%d]", got, first.Position)
	}
	if de == nil || de.Position != bad || de.Event.ID != "broken-1" || de.Event.Name != "recording.ended" || !errors.Is(de, herald.ErrIncompatibleStore) {
		t.Fatalf("damaged event = %+v, want position %d, id broken-1, name recording.ended", de, bad)
	}
	got = got[:0]
	for e, err := range s.Read(t.Context(), bad, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
	}
	if len(got) != 1 || got[0] != last.Position {
		t.Fatalf("read after the damage: %v, want [%d]", got, last.Position)
	}
}

// A durable subscription (a shared consumer on NATS) dead-letters a
// damaged event for good without calling its handler, acknowledges it, and
// handles the events after it (it was terminated with a log line and no
// dead letter: an event gone without a trace).
func TestSharedSubscriptionDeadLettersDamagedEvent(t *testing.T) {
	s := open(t, server(t))
	first := appendOne(t, s, ev(t, "recording.ended", ""), herald.AppendOptions{})
	bad := damage(t, s, first.Position, "broken-2")
	appendOne(t, s, ev(t, "recording.ended", ""), herald.AppendOptions{})

	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()) })
	handled := make(chan uint64, 8)
	h := herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		handled <- e.Position
		return nil
	})
	if _, err := bus.Subscribe(t.Context(), "recording.ended", h, herald.Durable("notes")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if p := <-handled; p == bad {
			t.Fatalf("the handler was called with the damaged event at %d", p)
		}
	}
	var dls []herald.DeadLetter
	testwait.For(t, "the damaged event's dead letter", func() bool {
		dls, err = bus.DeadLetters(t.Context(), herald.DeadLetterQuery{Subscription: "notes"})
		return err == nil && len(dls) == 1
	})
	if d := dls[0]; !d.Permanent || d.Event.Position != bad || d.Event.ID != "broken-2" {
		t.Fatalf("dead letter = %+v, want a permanent one of position %d", d, bad)
	}
	_, st := jsStream(t, s, "HERALD_EVENTS")
	testwait.For(t, "every delivery acknowledged", func() bool {
		for ci := range st.ListConsumers(t.Context()).Info() {
			if ci.NumAckPending > 0 || ci.NumPending > 0 {
				return false
			}
		}
		return true
	})
}
