package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/server"
)

// A push subscription whose endpoint keeps failing pauses at its cap of
// dead letters, instead of writing a copy of every event it can read
// into the dead-letter queue; discarding them resumes it, and so does an
// admin's redrive. Before, a token that may subscribe to ">" could make
// the server copy the whole log into the queue once per subscription.
func TestPushSubscriptionPausesAtDeadLetterCap(t *testing.T) {
	synctest.Test(t, testPushSubscriptionPausesAtDeadLetterCap)
}

func testPushSubscriptionPausesAtDeadLetterCap(t *testing.T) {
	var calls atomic.Int64
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond) // on the bubble's clock: 100 failures a second
		w.WriteHeader(http.StatusInternalServerError)
	})
	const limit = 20
	e := newBubbleEnv(t, server.WithWebhookClient(&http.Client{Transport: handlerTransport{hook}}),
		server.WithPushLimits(server.PushLimits{DeadLetters: limit}))
	if a := e.do("PUT", "/v1/subscriptions/failing", map[string]any{"filter": "fail.>", "endpoint": "http://hook.test", "max_attempts": 1}); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	const events = 1000
	batch := make([]map[string]any, events)
	for i := range batch {
		batch[i] = map[string]any{"name": "fail.e", "data": map[string]any{"i": i}}
	}
	e.publish(batch)
	dead := func() int {
		t.Helper()
		n, err := e.bus.DeadLetterCounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n["failing"]
	}
	paused := func() string {
		t.Helper()
		var v struct {
			Running bool   `json:"running"`
			Paused  string `json:"paused"`
		}
		e.do("GET", "/v1/subscriptions/failing", nil).json(t, &v)
		if v.Running {
			return ""
		}
		return v.Paused
	}

	// The check runs every second: at 100 failures a second it pauses the
	// subscription about a hundred dead letters in, far from all 1,000.
	time.Sleep(5 * time.Second)
	synctest.Wait()
	if n := dead(); n < limit || n > 300 {
		t.Fatalf("%d dead letters with a cap of %d", n, limit)
	}
	if why := paused(); why != "dead_letter_cap" {
		t.Fatalf("paused = %q, want dead_letter_cap", why)
	}
	// Paused is stopped: the bus runs no subscription of that name, so
	// nothing delivers its events.
	for _, s := range e.bus.Subscriptions() {
		if s.Name == "failing" {
			t.Fatal("a paused subscription still runs in the bus")
		}
	}

	// resumes checks that the request resumes the subscription.
	resumes := func(what, method, path string, status int) {
		t.Helper()
		before := calls.Load()
		if a := e.do(method, path, nil); a.status != status {
			t.Fatalf("%s: %d %s", what, a.status, a.body)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if calls.Load() == before {
			t.Fatalf("%s did not resume the subscription", what)
		}
	}
	// Discarded below the cap, it runs again, and pauses again.
	resumes("discarding its dead letters", "DELETE", "/v1/dlq?subscription=failing", 200)
	if n, why := dead(), paused(); n < limit || n > 300 || why != "dead_letter_cap" {
		t.Fatalf("after the discard: %d dead letters, paused %q", n, why)
	}

	// An admin's redrive resumes it at once: only a running subscription
	// delivers what is redriven. Its redriven events fail again and
	// replace their dead letters (no more of them): it keeps running
	// until new events fail.
	resumes("a redrive", "POST", "/v1/dlq/redrive?subscription=failing", 202)
}
