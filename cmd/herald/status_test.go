package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestStatus(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "a.b", Data: json.RawMessage(`{}`)})
	r := ts.run(t, "status").ok(t)
	if r.stdout != ts.URL+" is ready; its log is at position 1\n" {
		t.Errorf("status said %q", r.stdout)
	}
	var none *testServer
	r = none.run(t, "status")
	if exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "is `herald serve` running?") {
		t.Errorf("no server: %v", r.err)
	}
}

// TestStatusJSON: herald status --json shows the store, the version, the
// head and the push subscriptions, for scripts and monitoring.
func TestStatusJSON(t *testing.T) {
	ts := startServer(t)
	ts.publish(t, &herald.Event{Name: "a.b", Data: json.RawMessage(`{}`)})
	h := newHook(t)
	ts.run(t, "subs", "create", "s1", "--endpoint", h.srv.URL).ok(t)
	r := ts.run(t, "status", "--json").ok(t)
	var st struct {
		Status        string `json:"status"`
		Version       string `json:"version"`
		Store         string `json:"store"`
		Head          *uint64
		Subscriptions int `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if st.Status != "ready" || st.Head == nil || *st.Head != 1 || st.Subscriptions != 1 {
		t.Errorf("status --json: %s", r.stdout)
	}
}

// TestStatusNATS: on an embedded NATS node served with --nats-monitor,
// herald status prints the cluster (one node, its own leader) and the
// durable subscriptions' lag, status --json has it as "cluster", and the
// node's monitoring endpoint answers /varz on the address given.
func TestStatusNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	monitor := ln.Addr().String()
	ln.Close()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--nats-embedded",
		"--nats-listen", "127.0.0.1:0", "--nats-name", "solo", "--nats-monitor", monitor)
	defer p.stop(t)
	ts := &testServer{URL: p.url}
	h := newHook(t)
	ts.run(t, "subs", "create", "s1", "--endpoint", h.srv.URL).ok(t)

	r := ts.run(t, "status").ok(t)
	for _, want := range []string{
		" is ready; its log is at position 0\n",
		"single node: the event stream has 1 replica, leader solo\n",
		"  NODE  STATE   LAG  LAST SEEN\n  solo  leader  0    -\n",
		"  SUBSCRIPTION  PENDING  UNACKED  REDELIVERED\n  s1            0        0        0\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = ts.run(t, "status", "--json").ok(t)
	var st struct {
		Store   string `json:"store"`
		Cluster *struct {
			Leader string `json:"leader"`
			Nodes  []struct {
				Name string `json:"name"`
			} `json:"nodes"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Store != "nats" || st.Cluster == nil ||
		st.Cluster.Leader != "solo" || len(st.Cluster.Nodes) != 1 {
		t.Errorf("status --json: %v\n%s", err, r.stdout)
	}

	resp, err := http.Get("http://" + monitor + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"server_name": "solo"`) {
		t.Errorf("/varz: %d %.300s", resp.StatusCode, b)
	}

	for _, bad := range [][]string{
		{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-monitor", "127.0.0.1:8222"},
		{"serve", "--nats-embedded", "--nats-monitor", "8222"},
	} {
		if err := Run(t.Context(), bad, strings.NewReader(""), io.Discard, io.Discard); err == nil || exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}
