package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

// sseEvent is one event read from a stream.
type sseEvent struct {
	id   uint64
	data string
}

// stream opens GET path and sends its events to the returned channel until
// ctx ends or the server closes the stream (then the channel closes).
func (e *env) stream(ctx context.Context, path string, hdr ...string) <-chan sseEvent {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		e.t.Fatalf("stream answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				cur.id, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			case line == "" && cur.data != "":
				select {
				case out <- cur:
				case <-ctx.Done():
					return
				}
				cur = sseEvent{}
			}
		}
	}()
	return out
}

func recv(t *testing.T, ch <-chan sseEvent, n int) []sseEvent {
	t.Helper()
	var got []sseEvent
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d of %d events", len(got), n)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(got), n)
		}
	}
	return got
}

func (e *env) publishN(prefix string, n int) []uint64 {
	e.t.Helper()
	pos := make([]uint64, n)
	for i := range n {
		p := e.publish(map[string]any{"name": "sse.tick", "data": map[string]any{"k": fmt.Sprintf("%s-%d", prefix, i)}})
		pos[i] = p.Events[0].Position
	}
	return pos
}

func TestStreamResumeNothingMissedOrRepeated(t *testing.T) {
	e := newEnv(t, server.WithHeartbeat(50*time.Millisecond))
	e.publish(map[string]any{"name": "other.thing", "data": map[string]any{}})

	ctx1, drop := context.WithCancel(t.Context())
	ch := e.stream(ctx1, "/v1/stream?name=sse.*")
	want := e.publishN("a", 30)
	// Interleave events the filter excludes.
	e.publish(map[string]any{"name": "other.thing", "data": map[string]any{}})
	got := recv(t, ch, 20)
	drop() // the connection drops after 20 of 30
	for range ch {
	}
	want = append(want, e.publishN("b", 25)...)

	last := got[len(got)-1].id
	ch2 := e.stream(t.Context(), "/v1/stream?name=sse.*", "Last-Event-ID", strconv.FormatUint(last, 10))
	got = append(got, recv(t, ch2, len(want)-20)...)
	for i, ev := range got {
		if ev.id != want[i] {
			t.Fatalf("event %d: position %d, want %d", i, ev.id, want[i])
		}
		var he herald.Event
		if err := json.Unmarshal([]byte(ev.data), &he); err != nil || he.Position != ev.id || he.Name != "sse.tick" {
			t.Fatalf("event %d: data %s", i, ev.data)
		}
	}
	// An extra event would come before one published after it.
	sentinel := e.publish(map[string]any{"name": "sse.sentinel", "data": map[string]any{}}).Events[0].Position
	if next := recv(t, ch2, 1)[0]; next.id != sentinel {
		t.Fatalf("an extra event: %+v", next)
	}
}

func TestStreamFromAfterAndCatchUp(t *testing.T) {
	// A small buffer makes the stream read old events from the store.
	e := newEnv(t, server.WithStreamBuffer(16))
	want := e.publishN("old", 100)
	ch := e.stream(t.Context(), "/v1/stream?after=0")
	got := recv(t, ch, 100)
	more := e.publishN("new", 10)
	got = append(got, recv(t, ch, 10)...)
	want = append(want, more...)
	for i := range want {
		if got[i].id != want[i] {
			t.Fatalf("event %d: %d, want %d", i, got[i].id, want[i])
		}
	}
}

func TestStreamCloudEventsAndHeartbeat(t *testing.T) {
	synctest.Test(t, testStreamCloudEventsAndHeartbeat)
}

func testStreamCloudEventsAndHeartbeat(t *testing.T) {
	e := newBubbleEnv(t, server.WithHeartbeat(20*time.Millisecond))
	start := time.Now()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/v1/stream?format=cloudevents", nil)
	resp, err := e.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			break
		}
	}
	if d := time.Since(start); d != 20*time.Millisecond {
		t.Fatalf("first heartbeat after %v, want 20ms", d)
	}
	e.publish(map[string]any{"name": "ce.out", "data": map[string]any{"v": 1}})
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ce map[string]any
			if err := json.Unmarshal([]byte(data), &ce); err != nil || ce["type"] != "ce.out" || ce["specversion"] != "1.0" {
				t.Fatalf("CloudEvent on the stream: %s", data)
			}
			return
		}
	}
}

func TestSlowStreamIsDropped(t *testing.T) {
	synctest.Test(t, testSlowStreamIsDropped)
}

func testSlowStreamIsDropped(t *testing.T) {
	e := newBubbleEnv(t, server.WithStreamBuffer(16), server.WithStreamWriteTimeout(100*time.Millisecond))
	// A client that connects and never reads.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/v1/stream", nil)
	resp, err := e.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	big := strings.Repeat("x", 64<<10)
	start := time.Now()
	for range 300 {
		e.publish(map[string]any{"name": "big.one", "data": map[string]any{"b": big}})
	}
	if d := time.Since(start); d != 0 {
		t.Fatalf("publishing waited %v for a stalled stream", d)
	}
	// The stream's write times out 100 ms after it stalled.
	time.Sleep(100 * time.Millisecond)
	synctest.Wait()
	if m := string(e.do("GET", "/metrics", nil).body); !strings.Contains(m, "herald_sse_streams_open 0") {
		t.Fatal("the stalled stream is still open")
	}
}

func TestStreamLimit(t *testing.T) {
	e := newEnv(t, server.WithMaxStreams(1))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.stream(ctx, "/v1/stream")
	a := e.do("GET", "/v1/stream", nil)
	if a.status != 503 || a.header.Get("Retry-After") == "" || a.errCode(t).Error.Code != "backpressure" {
		t.Fatalf("second stream: %d %s", a.status, a.body)
	}
}

func TestStreamFilters(t *testing.T) {
	e := newEnv(t)
	ch := e.stream(t.Context(), "/v1/stream?subject=order/7&correlation_id=c7")
	for i, ev := range []map[string]any{
		{"name": "order.created", "subject": "order/7", "correlation_id": "c7", "data": map[string]any{}},
		{"name": "order.created", "subject": "order/8", "correlation_id": "c7", "data": map[string]any{}},
		{"name": "order.paid", "subject": "order/7", "correlation_id": "other", "data": map[string]any{}},
		{"name": "order.paid", "subject": "order/7", "correlation_id": "c7", "data": map[string]any{"i": 3}},
	} {
		ev["id"] = fmt.Sprintf("f-%d", i)
		e.publish(ev)
	}
	got := recv(t, ch, 2)
	for i, want := range []string{"f-0", "f-3"} {
		var he herald.Event
		json.Unmarshal([]byte(got[i].data), &he)
		if he.ID != want {
			t.Fatalf("event %d: %s, want %s", i, he.ID, want)
		}
	}
}

// One identity holds at most its cap of streams; another identity still
// gets one.
func TestStreamLimitPerIdentity(t *testing.T) {
	e2 := newEnv(t, server.WithMaxStreamsPerIdentity(2), server.WithTokens([]server.Token{
		{Identity: "recorder", Hash: server.HashToken(recorderToken), Subscribe: []string{">"}},
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
	}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 2 {
		e2.stream(ctx, "/v1/stream", "Authorization", bearer(recorderToken))
	}
	a := e2.do("GET", "/v1/stream", nil, "Authorization", bearer(recorderToken))
	if a.status != 429 || a.header.Get("Retry-After") == "" || a.errCode(t).Error.Code != "rate_limited" {
		t.Fatalf("third stream of one identity (cap 2): %d %s", a.status, a.body)
	}
	e2.stream(ctx, "/v1/stream", "Authorization", bearer(adminToken))
}
