package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/internal/memnet"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

const adminSecret = "hrld_client-test-admin"

type testServer struct {
	bus *herald.Bus
	hs  *httptest.Server
	c   *client.Client
	tr  *http.Transport
}

// start runs a real server on a loopback port, over a bus on the memory
// store, and returns a client of it.
func start(t *testing.T, opts ...server.Option) *testServer {
	t.Helper()
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, append([]server.Option{server.WithHeartbeat(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	// A loaded machine may take more than the usual second to refuse a
	// body that asked "Expect: 100-continue"; past the timeout the body
	// goes anyway and the refusal may come back as a reset connection.
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	c, err := client.New(hs.URL, client.WithHTTPClient(&http.Client{Transport: tr}), client.WithToken(adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.CloseIdleConnections()
		srv.EndStreams()
		hs.Close()
		srv.Close(ctx)
		bus.Close(ctx)
	})
	return &testServer{bus: bus, hs: hs, c: c, tr: tr}
}

// startInBubble is start over a network in memory, for tests that run in
// a testing/synctest bubble; ts.hs is nil.
func startInBubble(t *testing.T, opts ...server.Option) *testServer {
	t.Helper()
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, append([]server.Option{server.WithHeartbeat(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l := memnet.Listen()
	hs := &http.Server{Handler: srv}
	hs.RegisterOnShutdown(srv.EndStreams)
	go hs.Serve(l)
	tr := &http.Transport{DialContext: l.DialContext}
	c, err := client.New("http://herald.test", client.WithHTTPClient(&http.Client{Transport: tr}), client.WithToken(adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.CloseIdleConnections()
		srv.EndStreams()
		hs.Close()
		srv.Close(ctx)
		bus.Close(ctx)
	})
	return &testServer{bus: bus, c: c, tr: tr}
}

func withAdmin() server.Option {
	return server.WithTokens([]server.Token{{ID: "tok_admin", Identity: "ops", Admin: true, Hash: server.HashToken(adminSecret)}})
}

func ev(name string, data string) *herald.Event {
	return &herald.Event{Name: name, Data: json.RawMessage(data)}
}

func TestPublishAndRead(t *testing.T) {
	ts := start(t)
	ctx := context.Background()
	res, err := ts.c.Publish(ctx, &herald.Event{ID: "e1", Name: "a.b", Data: json.RawMessage(`{"k":1}`), Subject: "s/1"})
	if err != nil || res.ID != "e1" || res.Position != 1 || res.Duplicate {
		t.Fatalf("publish: %+v %v", res, err)
	}
	res, err = ts.c.Publish(ctx, &herald.Event{ID: "e1", Name: "a.b", Data: json.RawMessage(`{"k":1}`), Subject: "s/1"})
	if err != nil || res.Position != 1 || !res.Duplicate {
		t.Fatalf("publish again: %+v %v", res, err)
	}
	batch, err := ts.c.PublishBatch(ctx, []*herald.Event{ev("a.c", `{}`), {ID: "e1", Name: "a.b", Data: json.RawMessage(`{"k":1}`), Subject: "s/1"}, ev("x.y", `{}`)})
	if err != nil || len(batch) != 3 || batch[0].Position != 2 || !batch[1].Duplicate || batch[1].Position != 1 || batch[2].Position != 3 {
		t.Fatalf("batch: %+v %v", batch, err)
	}

	e, err := ts.c.Event(ctx, "e1")
	if err != nil || e.Name != "a.b" || e.Subject != "s/1" || e.Position != 1 || e.CorrelationID != "e1" {
		t.Fatalf("event: %+v %v", e, err)
	}
	if _, err := ts.c.Event(ctx, "missing"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("missing event: %v", err)
	}
	page, err := ts.c.Events(ctx, client.EventQuery{Name: "a.*"})
	if err != nil || len(page.Events) != 2 || page.NextAfter != 2 {
		t.Fatalf("events: %+v %v", page, err)
	}
	if page, err = ts.c.Events(ctx, client.EventQuery{After: 3}); err != nil || len(page.Events) != 0 {
		t.Errorf("events after the head: %+v %v", page, err)
	}
	if head, err := ts.c.Ready(ctx); err != nil || head != 3 {
		t.Errorf("ready: head %d, %v", head, err)
	}
}

func TestPublishErrors(t *testing.T) {
	ts := start(t)
	ctx := context.Background()
	_, err := ts.c.PublishBatch(ctx, []*herald.Event{ev("ok.one", `{}`), ev("Bad Name", `{}`)})
	var he *client.Error
	if !errors.As(err, &he) || !errors.Is(err, herald.ErrInvalidEvent) || he.Status != 400 || he.Code != "invalid_event" || he.Index != 1 || he.Field != "name" {
		t.Fatalf("bad batch: %#v", err)
	}
	s := &herald.Event{Name: "order.placed", Subject: "order/1", Data: json.RawMessage(`{}`)}
	if tk, err := ts.c.StreamTicket(ctx); err != nil || !strings.HasPrefix(tk.Ticket, "hrst_") || tk.ExpiresAt.IsZero() {
		t.Fatalf("stream ticket: %+v %v", tk, err)
	}
	if info, err := ts.c.Subject(ctx, "order/1"); err != nil || info.Version != 0 {
		t.Fatalf("subject before: %+v %v", info, err)
	}
	res, err := ts.c.Publish(ctx, s, client.ExpectVersion(0))
	if err != nil || res.SubjectVersion != 1 {
		t.Fatalf("conditional publish: %+v %v", res, err)
	}
	if info, err := ts.c.Subject(ctx, "order/1"); err != nil || info.Version != 1 || info.FirstPosition != res.Position || info.LastPosition != res.Position {
		t.Fatalf("subject after: %+v %v", info, err)
	}
	_, err = ts.c.Publish(ctx, &herald.Event{Name: "order.paid", Subject: "order/1", Data: json.RawMessage(`{}`)}, client.ExpectVersion(0))
	if !errors.Is(err, herald.ErrConflict) || !errors.As(err, &he) || he.Status != 409 || he.CurrentVersion == nil || *he.CurrentVersion != 1 {
		t.Errorf("stale version: %v", err)
	}
	if err := ts.c.PutSchema(ctx, "rec.done", 1, json.RawMessage(`{"type":"object","required":["id"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.Publish(ctx, ev("rec.done", `{}`)); !errors.Is(err, herald.ErrSchemaViolation) {
		t.Errorf("schema violation: %v", err)
	}
	big := `{"z":"` + strings.Repeat("z", 5<<20) + `"}`
	if _, err := ts.c.Publish(ctx, ev("big.one", big)); !errors.Is(err, herald.ErrTooLarge) {
		t.Errorf("5 MiB event: %v", err)
	}
}

func TestAuthErrors(t *testing.T) {
	ts := start(t, withAdmin())
	ctx := context.Background()
	anon, _ := client.New(ts.hs.URL, client.WithHTTPClient(&http.Client{Transport: ts.tr}))
	if _, err := anon.Events(ctx, client.EventQuery{}); !errors.Is(err, herald.ErrUnauthorized) {
		t.Errorf("no token: %v", err)
	}
	secret, info, err := ts.c.CreateToken(ctx, client.Token{Identity: "p", Publish: []string{"p.>"}, Subscribe: []string{"p.>"}})
	if err != nil || info.ID == "" || info.Identity != "p" {
		t.Fatalf("create token: %v %+v", err, info)
	}
	p, _ := client.New(ts.hs.URL, client.WithHTTPClient(&http.Client{Transport: ts.tr}), client.WithToken(secret))
	if _, err := p.Publish(ctx, ev("q.one", `{}`)); !errors.Is(err, herald.ErrForbidden) {
		t.Errorf("forbidden name: %v", err)
	}
	if _, err := p.Stream(ctx, "q.>"); !errors.Is(err, herald.ErrForbidden) {
		t.Errorf("forbidden stream: %v", err)
	}
	if _, err := p.DeadLetters(ctx, client.DeadLetterQuery{}); !errors.Is(err, herald.ErrForbidden) {
		t.Errorf("dlq as a plugin: %v", err)
	}
	slowSecret, _, err := ts.c.CreateToken(ctx, client.Token{Identity: "slow", Publish: []string{">"}, Rate: 0.001, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := client.New(ts.hs.URL, client.WithHTTPClient(&http.Client{Transport: ts.tr}), client.WithToken(slowSecret))
	if _, err := slow.PublishBatch(ctx, []*herald.Event{ev("p.a", `{}`), ev("p.b", `{}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = slow.Publish(ctx, ev("p.c", `{}`))
	var he *client.Error
	if !errors.Is(err, herald.ErrRateLimited) || !errors.As(err, &he) || he.RetryAfter <= 0 || !client.IsRetryable(err) {
		t.Errorf("rate limit: %v", err)
	}
	toks, err := ts.c.Tokens(ctx)
	if err != nil || len(toks) != 3 {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	if err := ts.c.RevokeToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Events(ctx, client.EventQuery{Name: "p.>"}); !errors.Is(err, herald.ErrUnauthorized) {
		t.Errorf("revoked: %v", err)
	}
}

func TestAllEventsPages(t *testing.T) {
	ts := start(t)
	ctx := context.Background()
	for i := range 25 {
		name := "a.x"
		if i%5 == 0 {
			name = "b.x"
		}
		if _, err := ts.c.Publish(ctx, ev(name, `{}`)); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for e, err := range ts.c.AllEvents(ctx, client.EventQuery{Name: "a.*", Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
	}
	if len(got) != 20 || got[0] != 2 || got[19] != 25 {
		t.Fatalf("all a.*: %v", got)
	}
	n := 0
	for range ts.c.AllEvents(ctx, client.EventQuery{Limit: 4}) {
		if n++; n == 6 {
			break
		}
	}
	if n != 6 {
		t.Errorf("break after 6: %d", n)
	}
}

// TestStreamResumesAfterDrop cuts the stream's connection again and again
// while events are published, and checks that the stream delivers every
// event once, in order.
func TestStreamResumesAfterDrop(t *testing.T) {
	ts := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts.c.Publish(ctx, ev("s.before", `{}`))
	s, err := ts.c.Stream(ctx, "s.>", client.StreamReconnectWait(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total = 200
	go func() {
		for i := range total {
			if _, err := ts.bus.Publish(ctx, ev("s.e", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
				return
			}
			if i%7 == 0 {
				ts.hs.CloseClientConnections()
			}
			if i%3 == 0 {
				runtime.Gosched() // the stream reconnects while events keep coming
			}
		}
	}()
	last := uint64(0)
	for i := range total {
		e, err := s.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", i, err)
		}
		var d struct{ I int }
		json.Unmarshal(e.Data, &d)
		if d.I != i || e.Position <= last || e.Name != "s.e" {
			t.Fatalf("event %d: got i=%d position %d (last %d)", i, d.I, e.Position, last)
		}
		last = e.Position
	}
	if s.Position() != last {
		t.Errorf("Position %d, want %d", s.Position(), last)
	}
}

func TestStreamAfterAndClose(t *testing.T) {
	synctest.Test(t, testStreamAfterAndClose)
}

func testStreamAfterAndClose(t *testing.T) {
	ts := startInBubble(t)
	ctx := context.Background()
	for range 3 {
		ts.c.Publish(ctx, ev("a.b", `{}`))
	}
	s, err := ts.c.Stream(ctx, "", client.StreamAfter(1))
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 3; want++ {
		e, err := s.Next()
		if err != nil || e.Position != want {
			t.Fatalf("want position %d: %+v %v", want, e, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Next()
		done <- err
	}()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("Next returned with nothing to read: %v", err)
	default: // Next waits for an event
	}
	s.Close()
	if err := <-done; !errors.Is(err, herald.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	s.Close()

	// Cancelling the context ends the stream with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	s, err = ts.c.Stream(cctx, "a.b")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	for _, err := range s.All() {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after cancel: %v", err)
		}
	}
	if _, err := ts.c.Stream(ctx, "Bad Pattern"); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Errorf("bad pattern: %v", err)
	}
}

func TestSubscriptionsAndDLQ(t *testing.T) {
	ts := start(t)
	ctx := context.Background()
	fail := make(chan bool, 1)
	fail <- true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case f := <-fail:
			fail <- f
			if f {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	sub, err := ts.c.PutSubscription(ctx, api.PushSubscription{Name: "hooks", Filter: "h.*", Endpoint: hook.URL, MaxAttempts: 2,
		Backoff: &client.Backoff{Initial: herald.Duration(10 * time.Millisecond)}, Start: "earliest"})
	if err != nil || sub.Name != "hooks" || sub.Secret == "" {
		t.Fatalf("put: %+v %v", sub, err)
	}
	res, _ := ts.c.Publish(ctx, &herald.Event{ID: "h1", Name: "h.one", Data: json.RawMessage(`{}`)})
	var dls []herald.DeadLetter
	testwait.For(t, "a dead letter", func() bool {
		if dls, err = ts.c.DeadLetters(ctx, client.DeadLetterQuery{Subscription: "hooks"}); err != nil {
			t.Fatal(err)
		}
		return len(dls) > 0
	})
	if len(dls) != 1 || dls[0].Event.ID != "h1" || dls[0].Event.Position != res.Position || !dls[0].Permanent {
		t.Fatalf("dead letters: %+v", dls)
	}
	<-fail
	fail <- false
	if err := ts.c.Redrive(ctx, dls[0].ID); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the redriven dead letter to be resolved", func() bool {
		if dls, err = ts.c.DeadLetters(ctx, client.DeadLetterQuery{}); err != nil {
			t.Fatal(err)
		}
		return len(dls) == 0
	})
	if err := ts.c.Discard(ctx, "no-such-entry"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("discard of nothing: %v", err)
	}
	if n, err := ts.c.RedriveAll(ctx, "nobody"); err != nil || n != 0 {
		t.Errorf("redrive all of nothing: %d %v", n, err)
	}

	got, err := ts.c.GetSubscription(ctx, "hooks")
	if err != nil || got.Filter != "h.*" || !got.SecretSet || got.Secret != "" || got.Stats == nil {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := ts.c.Subscriptions(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := ts.c.ReplaySubscription(ctx, "hooks", client.ReplayFromTime(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.ReplaySubscription(ctx, "hooks", client.ReplayTarget{}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Errorf("empty replay target: %v", err)
	}
	if err := ts.c.DeleteSubscription(ctx, "hooks"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.GetSubscription(ctx, "hooks"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestSchemasAndCorrelation(t *testing.T) {
	ts := start(t)
	ctx := context.Background()
	if err := ts.c.PutSchema(ctx, "a.b", 1, json.RawMessage(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	raw, err := ts.c.Schema(ctx, "a.b", 1)
	if err != nil || string(raw) != `{"type":"object"}` {
		t.Errorf("schema: %s %v", raw, err)
	}
	if _, err := ts.c.Schema(ctx, "a.b", 2); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("missing schema: %v", err)
	}
	refs, err := ts.c.Schemas(ctx)
	if err != nil || len(refs) != 1 || refs[0] != (herald.SchemaRef{Name: "a.b", Version: 1}) {
		t.Errorf("schemas: %+v %v", refs, err)
	}
	root, _ := ts.c.Publish(ctx, ev("a.b", `{}`))
	ts.c.Publish(ctx, &herald.Event{Name: "a.c", CorrelationID: root.ID, CausationID: root.ID, Data: json.RawMessage(`{}`)})
	tr, err := ts.c.Correlation(ctx, root.ID)
	if err != nil || tr.CorrelationID != root.ID || len(tr.Events) != 2 || tr.Events[1].Event.CausationID != root.ID {
		t.Fatalf("correlation: %+v %v", tr, err)
	}
	if _, err := ts.c.Correlation(ctx, "none"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("missing correlation: %v", err)
	}
}

func TestNewAndTransportErrors(t *testing.T) {
	for _, bad := range []string{"", "ftp://x", "http://", "http://%zz"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	c, err := client.New("127.0.0.1:1/")
	if err != nil || c.BaseURL() != "http://127.0.0.1:1" {
		t.Fatalf("New without scheme: %v %v", c, err)
	}
	_, err = c.Events(context.Background(), client.EventQuery{})
	var te *client.TransportError
	if !errors.As(err, &te) || te.URL != "http://127.0.0.1:1" {
		t.Errorf("unreachable: %#v", err)
	}
}

func TestPublishNil(t *testing.T) {
	c, _ := client.New("http://127.0.0.1:1")
	if _, err := c.Publish(context.Background(), nil); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Errorf("nil event: %v", err)
	}
	var ve *herald.ValidationError
	if _, err := c.PublishBatch(context.Background(), []*herald.Event{ev("a.b", `{}`), nil}); !errors.As(err, &ve) || ve.Index != 1 {
		t.Errorf("nil in a batch: %v", err)
	}
	if res, err := c.PublishBatch(context.Background(), nil); res != nil || err != nil {
		t.Errorf("empty batch: %v %v", res, err)
	}
}
