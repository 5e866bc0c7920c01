package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/heraldhq/herald/server"
)

// sendShortBody opens a connection to e, sends a publish whose headers
// promise 1,000 bytes of body and then one byte, and returns the answer
// read within wait (nil when none came) and whether the server closed the
// connection after it.
func sendShortBody(t *testing.T, e *env, token string, wait time.Duration) (*http.Response, bool) {
	t.Helper()
	u, _ := url.Parse(e.url)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", auth)
	c.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rest, err := io.ReadAll(br)
	closed := err == nil && len(rest) == 0
	return resp, closed
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A request refused before its body is read (here: no token) is answered
// at once and its connection closed; the server does not wait for a body
// that never comes.
func TestRefusedShortBodyIsAnsweredAndClosed(t *testing.T) {
	e, _ := authEnv(t)
	resp, closed := sendShortBody(t, e, "", 30*time.Second)
	if resp == nil {
		t.Fatal("no answer to an unauthenticated request with a short body")
	}
	if resp.StatusCode != http.StatusUnauthorized || !closed {
		t.Fatalf("answer %d, connection closed %v; want 401 and closed", resp.StatusCode, closed)
	}
}

// A body that stalls is cut off after the body read timeout: the caller
// gets a 400 and the connection is closed, not silence.
func TestStalledBodyIsCutOff(t *testing.T) {
	e2 := newEnv(t, server.WithBodyReadTimeout(200*time.Millisecond), server.WithTokens([]server.Token{
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true, Publish: []string{">"}}}))
	resp, closed := sendShortBody(t, e2, adminToken, 30*time.Second)
	if resp == nil {
		t.Fatal("no answer to a stalled body within 30 s (timeout 200 ms)")
	}
	if resp.StatusCode != http.StatusBadRequest || !closed {
		t.Fatalf("answer %d, connection closed %v; want 400 and closed", resp.StatusCode, closed)
	}
}

// One client address holds at most its cap of connections; the next is
// closed at once, and a slot frees when a connection closes.
func TestLimitConnsPerAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := server.LimitConnsPerAddr(ln, 2)
	defer lim.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := lim.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	a1, a2 := <-accepted, <-accepted
	// The third is closed by the listener: reading it ends.
	clients[2].SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("third connection from one address: read %v, want it closed", err)
	}
	a1.Close()
	c4, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	select {
	case a4 := <-accepted:
		a4.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("a slot did not free when a connection closed")
	}
	a2.Close()
}

// One address that opens many stalled connections takes only its cap;
// /healthz still answers another address.
func TestHealthzAnswersUnderConnectionFlood(t *testing.T) {
	e, _ := authEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv, ReadHeaderTimeout: time.Minute}
	go hs.Serve(server.LimitConnsPerAddr(ln, 4))
	defer hs.Close()
	for range 50 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n")
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 30 * time.Second}
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := cl.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("/healthz from another address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz answered %d", resp.StatusCode)
	}
}
