package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

const (
	aliceToken = "hrld_alice-secret-for-tests-only-0123456789"
	bobToken   = "hrld_bob-secret-for-tests-only-0123456789"
)

// ownerEnvs returns two servers sharing one store, with identities alice
// and bob, that do not reload the store on their own during the test: what
// one writes, the other knows only from the store.
func ownerEnvs(t *testing.T) (a, b *env, st herald.Store) {
	st = herald.NewMemoryStore()
	opts := []server.Option{
		server.WithRefresh(time.Hour),
		server.WithTokens([]server.Token{
			{Identity: "alice", Hash: server.HashToken(aliceToken), Subscribe: []string{">"}},
			{Identity: "bob", Hash: server.HashToken(bobToken), Subscribe: []string{">"}},
		}),
	}
	a = newEnvStore(t, st, opts...)
	busB, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := server.New(busB, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvB.Close(context.Background()); busB.Close(context.Background()) })
	b = &env{t: t, store: st, bus: busB, srv: srvB, url: newTestHTTP(t, srvB)}
	return a, b, st
}

func storedOwner(t *testing.T, st herald.Store, name string) server.PushSubscription {
	t.Helper()
	v, err := st.GetValue(context.Background(), server.SubscriptionBucket, name)
	if err != nil {
		t.Fatal(err)
	}
	var d server.PushSubscription
	if err := json.Unmarshal(v, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// A push subscription's owner is checked against the store, not against
// what one server has loaded: bob cannot take alice's subscription through
// a server that has not seen it yet, and alice's change through that server
// keeps her subscription's creation time and secret.
func TestPushSubscriptionOwnerAcrossServers(t *testing.T) {
	a, b, st := ownerEnvs(t)
	def := map[string]any{"filter": "orders.*", "endpoint": "http://127.0.0.1:1/"}
	if r := a.do("PUT", "/v1/subscriptions/hook", def, "Authorization", bearer(aliceToken)); r.status != 201 {
		t.Fatalf("alice's PUT: %d %s", r.status, r.body)
	}
	before := storedOwner(t, st, "hook")
	if r := b.do("PUT", "/v1/subscriptions/hook", def, "Authorization", bearer(bobToken)); r.status != 409 {
		t.Fatalf("bob's PUT of alice's subscription through the other server answered %d, want 409: %s", r.status, r.body)
	}
	if got := storedOwner(t, st, "hook"); got.Owner != "alice" || got.Secret != before.Secret {
		t.Fatalf("after bob's PUT the stored subscription is owned by %q (secret kept: %v)", got.Owner, got.Secret == before.Secret)
	}
	def["filter"] = "orders.paid"
	r := b.do("PUT", "/v1/subscriptions/hook", def, "Authorization", bearer(aliceToken))
	if r.status != 200 {
		t.Fatalf("alice's change through the other server answered %d, want 200 (a change, not a creation): %s", r.status, r.body)
	}
	got := storedOwner(t, st, "hook")
	if got.Owner != "alice" || got.Filter != "orders.paid" || got.Secret != before.Secret || !got.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("after alice's change: owner %q filter %q, secret kept %v, created_at kept %v",
			got.Owner, got.Filter, got.Secret == before.Secret, got.CreatedAt.Equal(before.CreatedAt))
	}
}

// Identities racing to create one name through two servers: exactly one
// creates it, every other is refused, and the store names the winner.
func TestPushSubscriptionOwnerRace(t *testing.T) {
	a, b, st := ownerEnvs(t)
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		def := map[string]any{"filter": ">", "endpoint": "http://127.0.0.1:1/"}
		type res struct {
			who    string
			status int
		}
		var mu sync.Mutex
		var results []res
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 8 {
			e, who, tok := a, "alice", aliceToken
			if i%2 == 1 {
				e, who, tok = b, "bob", bobToken
			}
			if i%4 >= 2 { // both identities through both servers
				e = map[*env]*env{a: b, b: a}[e]
			}
			wg.Go(func() {
				<-start
				r := e.do("PUT", "/v1/subscriptions/"+name, def, "Authorization", bearer(tok))
				mu.Lock()
				results = append(results, res{who, r.status})
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		owner := storedOwner(t, st, name).Owner
		created := 0
		for _, r := range results {
			switch {
			case r.status == 201:
				created++
				if r.who != owner {
					t.Fatalf("%s: %s got 201 but the store says %s owns it", name, r.who, owner)
				}
			case r.who == owner && r.status == 200:
			case r.who != owner && r.status == 409:
			default:
				t.Fatalf("%s: %s got %d (owner %s): %v", name, r.who, r.status, owner, results)
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d creations, want 1: %v", name, created, results)
		}
	}
}
