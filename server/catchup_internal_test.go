package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// Streams that start behind the hub and whose clients read nothing take
// turns reading the store: one identity's are at most
// maxCatchUpsPerIdentity at once (each holds a page of events and its
// frames until its write times out), while another identity's stream
// still catches up and receives its events. Before, every such stream
// held its page: a hundred of them took gigabytes.
func TestStreamCatchUpsTakeTurns(t *testing.T) {
	const (
		greedy = "hrld_greedy-secret-for-tests-only-0123456789"
		polite = "hrld_polite-secret-for-tests-only-0123456789"
	)
	bus, err := herald.New()
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	data := json.RawMessage(`{"x":"` + strings.Repeat("x", 100_000) + `"}`)
	for range 300 {
		if _, err := bus.Publish(ctx, &herald.Event{Name: "big.e", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(bus, WithStreamWriteTimeout(time.Minute), WithTokens([]Token{
		{Identity: "greedy", Hash: HashToken(greedy), Subscribe: []string{">"}},
		{Identity: "polite", Hash: HashToken(polite), Subscribe: []string{">"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer func() {
		srv.EndStreams()
		ts.CloseClientConnections()
		ts.Close()
		srv.Close(ctx)
	}()
	host := strings.TrimPrefix(ts.URL, "http://")
	for range 2 * maxCatchUpsPerIdentity {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A small receive buffer: the server's writes block soon.
		c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /v1/stream?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", greedy)
	}
	// All of them open; as many as the cap read the store (and stay
	// blocked writing to clients that read nothing), the others wait.
	testwait.For(t, "the greedy streams open, the cap of them catching up", func() bool {
		srv.streamMu.Lock()
		defer srv.streamMu.Unlock()
		return srv.streamsBy["greedy"] == 2*maxCatchUpsPerIdentity && len(srv.catchUpsBy["greedy"]) == maxCatchUpsPerIdentity
	})

	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/stream?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+polite)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	got := 0
	for got < 300 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got++
		}
	}
	if got != 300 {
		t.Fatalf("the other identity's stream received %d of 300 events: %v", got, sc.Err())
	}
}
