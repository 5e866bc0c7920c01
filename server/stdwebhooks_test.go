package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhq/herald/server"
)

// Deliveries are signed as Standard Webhooks specifies: the reference
// library verifies them with the subscription's whsec_ secret, refuses a
// delivery whose body or headers were altered, and refuses a captured
// delivery replayed after its timestamp went stale.
func TestWebhookSignaturesFollowStandardWebhooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var hdr http.Header
		var body []byte
		hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			hdr, body = r.Header.Clone(), b
			mu.Unlock()
		})
		e := newBubbleEnv(t, server.WithWebhookClient(&http.Client{Transport: handlerTransport{hook}}))
		key := make([]byte, 32)
		rand.Read(key)
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		if a := e.do("PUT", "/v1/subscriptions/signed", map[string]any{"filter": "sig.*", "endpoint": "http://hook.test",
			"secret": secret}); a.status != 201 {
			t.Fatalf("PUT: %d %s", a.status, a.body)
		}
		p := e.publish(map[string]any{"name": "sig.x", "data": map[string]any{"amount": 42}})
		for {
			synctest.Wait()
			mu.Lock()
			got := hdr != nil
			mu.Unlock()
			if got {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if hdr.Get("webhook-id") != p.Events[0].ID {
			t.Errorf("webhook-id %q, want the event id %q", hdr.Get("webhook-id"), p.Events[0].ID)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, hdr); err != nil {
			t.Fatalf("the reference library refuses a delivery: %v (headers %v)", err, hdr)
		}
		if !server.VerifySignature(secret, hdr, body, time.Now()) {
			t.Error("server.VerifySignature refuses a delivery")
		}
		// Altered body, altered timestamp: refused.
		if err := wh.Verify([]byte(`{"amount":1}`), hdr); err == nil {
			t.Error("an altered body verified")
		}
		moved := hdr.Clone()
		moved.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix()+1, 10))
		if err := wh.Verify(body, moved); err == nil {
			t.Error("an altered timestamp verified")
		}
		// The same capture replayed ten minutes later: too old.
		time.Sleep(10 * time.Minute)
		if err := wh.Verify(body, hdr); !errors.Is(err, standardwebhooks.ErrMessageTooOld) {
			t.Errorf("a stale replay: %v, want ErrMessageTooOld", err)
		}
		if server.VerifySignature(secret, hdr, body, time.Now()) {
			t.Error("server.VerifySignature accepts a stale replay")
		}
	})
}
