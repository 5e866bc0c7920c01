package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/store/sqlite"
)

// TestSubscriptionTotalsSurviveRestart: a push subscription's handled,
// failed and dead-lettered counts are the store's totals, so a server
// restarted on the same SQLite file shows what it showed before instead of
// zeros; dead_letters drops after a redrive while stats.dead_lettered
// keeps counting what was ever dead-lettered.
func TestSubscriptionTotalsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	open := func(t *testing.T) *env {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return newEnvStore(t, st)
	}
	var fixed atomic.Bool
	rc := newReceiver(t, func(id, mode string, attempt int) int {
		if mode == "bad" && !fixed.Load() {
			return 400
		}
		return 200
	})
	get := func(e *env) api.PushSubscriptionInfo {
		t.Helper()
		a := e.do("GET", "/v1/subscriptions/tot", nil)
		var v api.PushSubscriptionInfo
		if err := json.Unmarshal(a.body, &v); a.status != 200 || err != nil || v.Stats == nil || v.DeadLetters == nil {
			t.Fatalf("GET subscription: %d %s", a.status, a.body)
		}
		return v
	}
	t.Run("first run", func(t *testing.T) {
		e := open(t)
		if a := e.do("PUT", "/v1/subscriptions/tot", map[string]any{"filter": "tot.*", "endpoint": rc.url + "/hook", "max_attempts": 1}); a.status != 201 {
			t.Fatalf("PUT subscription: %d %s", a.status, a.body)
		}
		for i := range 6 {
			mode := "fine"
			if i < 2 {
				mode = "bad"
			}
			e.publish(map[string]any{"name": "tot.test", "subject": fmt.Sprintf("s/%d", i), "data": map[string]any{"mode": mode}})
		}
		testwait.Within(t, 60*time.Second, "4 handled and 2 dead letters", func() bool {
			v := get(e)
			return v.Stats.Handled == 4 && *v.DeadLetters == 2
		})
	})
	e := open(t)
	v := get(e)
	if v.Stats.Handled != 4 || v.Stats.Failed != 2 || v.Stats.DeadLettered != 2 || *v.DeadLetters != 2 {
		t.Fatalf("after a restart: stats %+v, dead letters %d", *v.Stats, *v.DeadLetters)
	}
	fixed.Store(true)
	if a := e.do("POST", "/v1/dlq/redrive?subscription=tot", nil); a.status != 202 {
		t.Fatalf("redrive: %d %s", a.status, a.body)
	}
	testwait.Within(t, 60*time.Second, "the redriven events handled", func() bool {
		v := get(e)
		return v.Stats.Handled == 6 && *v.DeadLetters == 0 && v.Stats.DeadLettered == 2
	})
}
