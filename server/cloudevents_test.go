package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

func sdkClient(t *testing.T, target string) cloudevents.Client {
	t.Helper()
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(target))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCE(id, typ string) event.Event {
	ce := cloudevents.NewEvent()
	ce.SetID(id)
	ce.SetType(typ)
	ce.SetSource("recorder")
	ce.SetSubject("recording/42")
	ce.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ce.SetExtension("correlationid", "corr-1")
	ce.SetExtension("causationid", "cause-1")
	ce.SetExtension("dataversion", 2)
	ce.SetExtension("priority", "critical")
	ce.SetExtension("traceparent", "00-trace-01")
	if err := ce.SetData(cloudevents.ApplicationJSON, map[string]any{"recording_id": "42"}); err != nil {
		panic(err)
	}
	return ce
}

func TestCloudEventsWithTheSDK(t *testing.T) {
	e := newEnv(t)
	c := sdkClient(t, e.url+"/v1/events")
	ctx := t.Context()

	// Binary mode (the SDK's default) and structured mode.
	if res := c.Send(ctx, newCE("ce-binary", "recording.completed")); !cloudevents.IsACK(res) {
		t.Fatalf("binary send: %v", res)
	}
	sctx := cloudevents.WithEncodingStructured(ctx)
	if res := c.Send(sctx, newCE("ce-structured", "recording.completed")); !cloudevents.IsACK(res) {
		t.Fatalf("structured send: %v", res)
	}
	// Sending again is idempotent.
	if res := c.Send(ctx, newCE("ce-binary", "recording.completed")); !cloudevents.IsACK(res) {
		t.Fatalf("binary resend: %v", res)
	}
	// An invalid one is refused with a 400.
	bad := newCE("ce-bad", "Not A Name")
	res := c.Send(ctx, bad)
	var hr *cehttp.Result
	if cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &hr) || hr.StatusCode != 400 {
		t.Fatalf("invalid CloudEvent: %v", res)
	}

	for _, id := range []string{"ce-binary", "ce-structured"} {
		var ev herald.Event
		e.do("GET", "/v1/events/"+id, nil).json(t, &ev)
		if ev.Name != "recording.completed" || ev.SourcePlugin != "recorder" || ev.Subject != "recording/42" ||
			ev.CorrelationID != "corr-1" || ev.CausationID != "cause-1" || ev.Version != 2 ||
			ev.Priority != herald.PriorityCritical || ev.Metadata["traceparent"] != "00-trace-01" ||
			!ev.Timestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || string(ev.Data) != `{"recording_id":"42"}` {
			t.Fatalf("%s stored as %+v", id, ev)
		}
	}
	if e.head() != 2 {
		t.Fatalf("head %d, want 2", e.head())
	}

	// Batch mode.
	batch := []event.Event{newCE("ce-b1", "batch.one"), newCE("ce-b2", "batch.two")}
	body, _ := json.Marshal(batch)
	a := e.do("POST", "/v1/events", body, "Content-Type", "application/cloudevents-batch+json")
	if a.status != 201 {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}

	// Reading endpoints answer CloudEvents when asked; the SDK reads them.
	a = e.do("GET", "/v1/events/ce-b1", nil, "Accept", "application/cloudevents+json")
	if ct := a.header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var one event.Event
	if err := json.Unmarshal(a.body, &one); err != nil || one.Validate() != nil {
		t.Fatalf("not a CloudEvent: %v %s", err, a.body)
	}
	if one.Type() != "batch.one" || one.Extensions()["sequence"] != "3" || one.Extensions()["correlationid"] != "corr-1" {
		t.Fatalf("read back: %s", one)
	}
	a = e.do("GET", "/v1/events?after=0", nil, "Accept", "application/cloudevents-batch+json")
	var all []event.Event
	if err := json.Unmarshal(a.body, &all); err != nil || len(all) != 4 {
		t.Fatalf("batch read: %v %d %s", err, len(all), a.body)
	}
	if a.header.Get("Herald-Next-After") != "4" {
		t.Fatalf("Herald-Next-After %q", a.header.Get("Herald-Next-After"))
	}
	a = e.do("GET", "/v1/correlations/corr-1", nil, "Accept", "application/cloudevents-batch+json")
	var chain []event.Event
	if err := json.Unmarshal(a.body, &chain); err != nil || len(chain) != 4 || chain[0].ID() != "ce-binary" {
		t.Fatalf("correlation as CloudEvents: %v %s", err, a.body)
	}

	// A webhook receiver written with the SDK reads herald's deliveries.
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
		rcv.StartReceiver(recvCtx, func(ev event.Event) { got <- ev })
	}()
	port := waitPort(t, p)
	a = e.do("PUT", "/v1/subscriptions/sdk", map[string]any{"filter": "sdk.*", "endpoint": "http://127.0.0.1:" + port + "/", "start": "latest"})
	if a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	e.publish(map[string]any{"id": "to-sdk", "name": "sdk.hello", "data": map[string]any{"hi": true}, "subject": "x/1"})
	select {
	case ev := <-got:
		var d map[string]any
		if ev.ID() != "to-sdk" || ev.Type() != "sdk.hello" || ev.Subject() != "x/1" || ev.DataAs(&d) != nil || d["hi"] != true {
			t.Fatalf("the SDK received %s", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the SDK receiver got nothing")
	}
	e.do("DELETE", "/v1/subscriptions/sdk", nil)
	stop()
	<-done
}

func waitPort(t *testing.T, p *cehttp.Protocol) string {
	t.Helper()
	testwait.For(t, "the SDK receiver to listen", func() bool { return p.GetListeningPort() > 0 })
	return strings.TrimSpace(itoa(p.GetListeningPort()))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// The binary-mode decoder also reads what binding.ToEvent reads from a raw request.
func TestBinaryModeRawHeaders(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("POST", e.url+"/v1/events", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", "raw-1")
	req.Header.Set("ce-type", "raw.event")
	req.Header.Set("ce-source", "me")
	req.Header.Set("ce-subject", "with%20space")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var ev herald.Event
	e.do("GET", "/v1/events/raw-1", nil).json(t, &ev)
	if ev.Subject != "with space" || ev.Name != "raw.event" {
		t.Fatalf("stored %+v", ev)
	}
}
