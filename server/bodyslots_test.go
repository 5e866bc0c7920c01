package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

// One identity sending publish bodies slowly holds at most its share of
// the body slots: its next publish waits a second for one of them and is
// refused (429), and another identity still publishes at once. Before,
// one token's slow bodies took every slot, and every other publisher got
// 503 for as long as they lasted.
//
// It runs in a bubble, on a network in memory: "at once" is measured on
// the bubble's clock, where a publish that waits for a slot takes the
// server's slot wait (a second) and one that does not takes no time,
// however loaded the machine.
func TestBodyReadsCappedPerIdentity(t *testing.T) {
	synctest.Test(t, testBodyReadsCappedPerIdentity)
}

func testBodyReadsCappedPerIdentity(t *testing.T) {
	const slow = "hrld_slow-secret-for-tests-only-0123456789"
	e := newBubbleEnv(t, server.WithMaxBodyReads(4), server.WithMaxBodyReadsPerIdentity(2), server.WithTokens([]server.Token{
		{Identity: "slow", Hash: server.HashToken(slow), Publish: []string{"recording.>"}},
		{Identity: "stingy", Hash: server.HashToken(stingyToken), Publish: []string{"recording.>"}},
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
	}))
	for range 2 {
		c := holdBody(t, e, slow)
		defer c.Close()
	}
	synctest.Wait() // the server reads both bodies, each holding a slot
	start := time.Now()
	a := e.do("POST", "/v1/events", budgetEvents, "Authorization", bearer(slow))
	if took := time.Since(start); took < time.Second {
		t.Errorf("the identity's third publish was refused after %v, before the slot wait ended", took)
	}
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("a third publish while 2 of the identity's bodies are held (cap 2 per identity) answered %d: %s", a.status, a.body)
	}
	if a.header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %s", a.body)
	}
	start = time.Now()
	if a := e.do("POST", "/v1/events", budgetEvents, "Authorization", bearer(stingyToken)); a.status != http.StatusCreated {
		t.Fatalf("another identity's publish answered %d: %s", a.status, a.body)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("another identity's publish waited %v for a slot", took)
	}
}

// A burst of one identity's publishes beyond its share of the body slots
// is served in turn: a publish waiting for one of the identity's slots
// takes the first that ends. Before, it was refused at once (429), so 64
// goroutines publishing with one service token got 429s.
func TestBodyReadsPerIdentityWaitTheirTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slow = "hrld_slow-secret-for-tests-only-0123456789"
		e := newBubbleEnv(t, server.WithMaxBodyReads(4), server.WithMaxBodyReadsPerIdentity(2), server.WithTokens([]server.Token{
			{Identity: "slow", Hash: server.HashToken(slow), Publish: []string{"recording.>"}},
		}))
		held := holdBody(t, e, slow)
		defer held.Close()
		other := holdBody(t, e, slow)
		defer other.Close()
		synctest.Wait() // both bodies hold the identity's two slots
		start := time.Now()
		status := make(chan int, 1)
		go func() { status <- e.do("POST", "/v1/events", budgetEvents, "Authorization", bearer(slow)).status }()
		synctest.Wait() // the third waits for a slot
		held.Close()    // its body never comes: its slot ends
		if s := <-status; s != http.StatusCreated {
			t.Fatalf("the publish waiting for the identity's slot answered %d, want 201", s)
		}
		if took := time.Since(start); took >= time.Second {
			t.Fatalf("the waiting publish took %v: it waited out the slot wait instead of taking the freed slot", took)
		}
	})
}

// A small publish gives its body slot back once its body is decoded, not
// once its events are stored: with one slot in all, a publish waiting for
// the store (here for a full ephemeral subscription) no longer holds off
// the next one. Before, every publish held its slot until its events were
// stored, so 64 clients of one token had at most 16 publishes in the
// store's group commit, a third fewer events per second than before the
// slots.
func TestSmallBodyFreesItsSlotBeforeStoring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newBubbleEnv(t, server.WithMaxBodyReads(1))
		gate := make(chan struct{})
		sub, err := e.bus.Subscribe(t.Context(), "blocked.>", herald.HandlerFunc(func(ctx context.Context, ev *herald.Event) error {
			<-gate
			return nil
		}), herald.BufferSize(1))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close(context.Background())
		defer close(gate)
		for range 2 { // one in the handler, one in the buffer
			if _, err := e.bus.Publish(t.Context(), &herald.Event{Name: "blocked.e", Data: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		stuck := make(chan int, 1)
		go func() { stuck <- e.do("POST", "/v1/events", `[{"name":"blocked.e","data":{}}]`).status }()
		synctest.Wait() // the publish waits for room in the subscription
		start := time.Now()
		if a := e.do("POST", "/v1/events", budgetEvents); a.status != http.StatusCreated {
			t.Fatalf("a publish while another waits for the store answered %d: %s", a.status, a.body)
		}
		if took := time.Since(start); took > 0 {
			t.Fatalf("the publish waited %v for the slot of one waiting for the store", took)
		}
		gate <- struct{}{}
		if s := <-stuck; s != http.StatusCreated {
			t.Fatalf("the waiting publish answered %d", s)
		}
	})
}
