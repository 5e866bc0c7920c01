package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

// One identity builds at most its share of the pages of GET /v1/events at
// once: with two large pages held by clients that read nothing, its third
// waits for one of them (a second) and is refused (429), while another
// identity still reads. Before,
// every concurrent page of one token held its events and their JSON: 20
// of them took gigabytes.
func TestPageReadsCappedPerIdentity(t *testing.T) {
	const greedy = "hrld_greedy-secret-for-tests-only-0123456789"
	e := newEnv(t, server.WithMaxPageReads(8, 2), server.WithMaxPageBytes(32<<20), server.WithTokens([]server.Token{
		{Identity: "greedy", Hash: server.HashToken(greedy), Subscribe: []string{">"}},
		{Identity: "reader", Hash: server.HashToken(readerToken), Subscribe: []string{">"}},
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
	}))
	data := json.RawMessage(`{"x":"` + strings.Repeat("x", 200_000) + `"}`)
	for range 100 { // 20 MB: a page that no socket buffer takes whole
		if _, err := e.bus.Publish(context.Background(), &herald.Event{Name: "big.e", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(e.url)
	for range 2 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /v1/events?limit=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", greedy)
		// The answer's status line comes once the page is built and its
		// writing has begun: from then on it holds its place until the
		// client reads it all, which this one never does. (Asking for the
		// third page before both are admitted could take one's place.)
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
			t.Fatalf("greedy page: %q, %v", status, err)
		}
	}
	if s := e.do("GET", "/v1/events?limit=1", nil, "Authorization", bearer(greedy)).status; s != 429 {
		t.Fatalf("a third page of the same identity answered %d, want 429", s)
	}
	if a := e.do("GET", "/v1/events?limit=1000", nil, "Authorization", bearer(readerToken)); a.status != 200 {
		t.Fatalf("another identity's page answered %d", a.status)
	}
}
