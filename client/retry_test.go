package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
)

// TestPublishChoosesTheIDBeforeTheFirstAttempt: an event published
// without an id gets one from the client before the request, in the event
// itself, so that publishing it again after an answer of unknown outcome
// sends the same id and the server stores it at most once.
func TestPublishChoosesTheIDBeforeTheFirstAttempt(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	requests := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var batch api.EventBatch
		var one api.Event
		var ids []string
		if json.Unmarshal(b, &batch) == nil && len(batch.Events) > 0 {
			for _, e := range batch.Events {
				ids = append(ids, e.ID)
			}
		} else if err := json.Unmarshal(b, &one); err == nil {
			ids = append(ids, one.ID)
		}
		mu.Lock()
		requests++
		first := requests%2 == 1 // every first attempt: the outcome is unknown
		seen = append(seen, ids...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if first {
			w.WriteHeader(api.Status(api.CodeOutcomeUnknown))
			json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeOutcomeUnknown, Message: "outcome unknown"}})
			return
		}
		var ans api.PublishAnswer
		for i, id := range ids {
			ans.Events = append(ans.Events, api.PublishResult{ID: id, Position: uint64(i + 1)})
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(ans)
	}))
	defer hs.Close()
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := &herald.Event{Name: "a.b", Data: json.RawMessage(`{}`)}
	_, err = c.Publish(ctx, e)
	if !errors.Is(err, herald.ErrOutcomeUnknown) || errors.Is(err, herald.ErrBackpressure) {
		t.Fatalf("first attempt: %v, want ErrOutcomeUnknown", err)
	}
	if !client.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false", err)
	}
	if e.ID == "" {
		t.Fatal("the event has no id after the first attempt")
	}
	res, err := c.Publish(ctx, e)
	if err != nil || res.ID != e.ID {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	if len(seen) != 2 || seen[0] != e.ID || seen[1] != e.ID {
		t.Fatalf("the server saw ids %q, want %q twice", seen, e.ID)
	}

	// A batch: every event without an id gets its own.
	seen = seen[:0]
	b := []*herald.Event{{Name: "a.b", Data: json.RawMessage(`{}`)}, {ID: "mine", Name: "a.b", Data: json.RawMessage(`{}`)}}
	if _, err := c.PublishBatch(ctx, b); !errors.Is(err, herald.ErrOutcomeUnknown) {
		t.Fatalf("batch: %v", err)
	}
	if b[0].ID == "" || b[1].ID != "mine" || b[0].ID == b[1].ID {
		t.Fatalf("batch ids %q, %q", b[0].ID, b[1].ID)
	}
	if _, err := c.PublishBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if want := []string{b[0].ID, "mine", b[0].ID, "mine"}; !slices.Equal(seen, want) {
		t.Fatalf("the server saw %q, want %q", seen, want)
	}
}
