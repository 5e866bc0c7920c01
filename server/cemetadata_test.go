package server_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/url"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/heraldhq/herald"
)

// ceMetadata is metadata no CloudEvents extension name can hold as it is:
// a header-style key, an underscore, an attribute's name, the carrier's own
// name, and a value a header must percent-encode; with one plain key.
var ceMetadata = map[string]string{
	"X-Trace-Id":     "trace 42",
	"tenant_id":      "t-1",
	"priority":       "not the event's",
	"heraldmetadata": "mine",
	"note":           `a "quoted" 100% é`,
	"traceparent":    "00-abc-def-01",
}

// Every metadata entry survives CloudEvents output, read and sent back
// with the CloudEvents SDK in structured and binary mode, and a webhook
// delivery received with the SDK.
func TestCloudEventsKeepEveryMetadataKey(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.publish(map[string]any{"id": "md-1", "name": "md.event", "data": map[string]any{}, "metadata": ceMetadata})

	// Read as a CloudEvent: plain keys are extensions, the rest is in
	// heraldmetadata.
	var ce event.Event
	if err := json.Unmarshal(e.do("GET", "/v1/events/md-1?format=cloudevents", nil).body, &ce); err != nil {
		t.Fatal(err)
	}
	ext := ce.Extensions()
	if ext["traceparent"] != "00-abc-def-01" || ext["note"] != ceMetadata["note"] {
		t.Fatalf("extensions %v", ext)
	}
	var carried map[string]string
	if s, ok := ext["heraldmetadata"].(string); !ok || json.Unmarshal([]byte(s), &carried) != nil {
		t.Fatalf("heraldmetadata %v", ext["heraldmetadata"])
	}
	if _, ok := carried["traceparent"]; ok || carried["X-Trace-Id"] != "trace 42" || carried["priority"] != "not the event's" {
		t.Fatalf("heraldmetadata holds %v", carried)
	}

	// Sent back with the SDK, it gives the same metadata.
	c := sdkClient(t, e.url+"/v1/events")
	for _, mode := range []struct {
		id  string
		ctx context.Context
	}{{"md-binary", ctx}, {"md-structured", cloudevents.WithEncodingStructured(ctx)}} {
		back := ce.Clone()
		back.SetID(mode.id)
		if res := c.Send(mode.ctx, back); !cloudevents.IsACK(res) {
			t.Fatalf("%s: %v", mode.id, res)
		}
		var ev herald.Event
		e.do("GET", "/v1/events/"+mode.id, nil).json(t, &ev)
		if !maps.Equal(ev.Metadata, ceMetadata) {
			t.Fatalf("%s: metadata %v, want %v", mode.id, ev.Metadata, ceMetadata)
		}
	}

	// A webhook delivery carries it in binary mode: a receiver that undoes
	// the binding's percent-encoding, as the CloudEvents HTTP binding asks,
	// gets every entry.
	got := make(chan event.Event, 1)
	recvCtx, stop := context.WithCancel(ctx)
	defer stop()
	p, err := cehttp.New(cehttp.WithPort(0))
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.StartReceiver(recvCtx, func(ev event.Event) {
			select { // three events match; any of them will do
			case got <- ev:
			default:
			}
		})
	}()
	port := waitPort(t, p)
	if a := e.do("PUT", "/v1/subscriptions/md", map[string]any{"filter": "md.*", "endpoint": "http://127.0.0.1:" + port + "/"}); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	select {
	case ev := <-got:
		md := map[string]string{}
		for k, v := range ev.Extensions() {
			s, err := url.PathUnescape(v.(string))
			if err != nil {
				t.Fatal(err)
			}
			switch k {
			case "heraldmetadata":
				if err := json.Unmarshal([]byte(s), &md); err != nil {
					t.Fatalf("heraldmetadata %q: %v", s, err)
				}
			case "traceparent", "note":
				md[k] = s
			}
		}
		if !maps.Equal(md, ceMetadata) {
			t.Fatalf("the webhook got metadata %v, want %v", md, ceMetadata)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the SDK receiver got nothing")
	}
	e.do("DELETE", "/v1/subscriptions/md", nil)
	stop()
	<-done
}

// A heraldmetadata extension that is not a JSON object of strings is
// refused.
func TestCloudEventsBadMetadataExtension(t *testing.T) {
	e := newEnv(t)
	ce := newCE("md-bad", "md.bad")
	ce.SetExtension("heraldmetadata", `{"n":1}`)
	body, _ := json.Marshal(ce)
	a := e.do("POST", "/v1/events", body, "Content-Type", "application/cloudevents+json")
	if a.status != 400 || a.errCode(t).Error.Field != "metadata" {
		t.Fatalf("bad heraldmetadata: %d %s", a.status, a.body)
	}
}
