package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/heraldhq/herald/internal/testlog"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// jsonLines fails the test unless every line of out is one JSON object,
// and returns them.
func jsonLines(t *testing.T, name, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("%s: a line that is not JSON: %q", name, line)
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// With --log-format json every line herald serve writes, on stdout and on
// stderr, is JSON; an address on every interface is announced as a URL a
// client can use.
func TestServeJSONLogsEveryLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--log-format", "json", "--log-level", "debug", "--store", "memory",
			"--addr", "0.0.0.0:0", "--insecure"}, strings.NewReader(""), &stdout, &stderr)
	}()
	var url string
	testwait.For(t, "the listening record", func() bool {
		for _, rec := range jsonLines(t, "stdout", stdout.String()) {
			if rec["msg"] == "herald listening" {
				url, _ = rec["url"].(string)
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("url %q: want http://127.0.0.1:PORT for 0.0.0.0", url)
	}
	// The announced URL answers.
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(url + "/v1/no-such-route")
	if err == nil {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second): // past the default --shutdown-timeout of 30 s
		t.Fatal("serve did not stop")
	}
	jsonLines(t, "stdout", stdout.String())
	jsonLines(t, "stderr", stderr.String())
	if !strings.Contains(stdout.String(), `"herald stopped"`) {
		t.Errorf("stdout lacks the stop record:\n%s", stdout.String())
	}

	// A failure to start is a JSON record too, and main adds no text line.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var failOut, failErr testlog.Buffer
	err = Run(context.Background(), []string{"serve", "--log-format", "json", "--store", "memory",
		"--addr", ln.Addr().String()}, strings.NewReader(""), &failOut, &failErr)
	if err == nil {
		t.Fatal("serve on a taken address succeeded")
	}
	printError(&failErr, err)
	jsonLines(t, "stdout", failOut.String())
	recs := jsonLines(t, "stderr", failErr.String())
	if len(recs) == 0 || recs[len(recs)-1]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(recs[len(recs)-1]["err"]), "listening on") {
		t.Errorf("the failure's record:\n%s", failErr.String())
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d", exitCode(err))
	}

	// So is a configuration file that cannot be read.
	var cfgErr testlog.Buffer
	err = Run(context.Background(), []string{"serve", "--log-format", "json", "--store", "memory",
		"--config", filepath.Join(t.TempDir(), "missing.yaml")}, strings.NewReader(""), io.Discard, &cfgErr)
	if err == nil {
		t.Fatal("serve with a missing configuration file succeeded")
	}
	printError(&cfgErr, err)
	if recs := jsonLines(t, "stderr", cfgErr.String()); len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["err"]), "missing.yaml") {
		t.Errorf("the configuration error's record:\n%s", cfgErr.String())
	}
}

// In text, an address on every interface is announced as a loopback URL
// followed by what was bound.
func TestServeAnnouncesUsableURL(t *testing.T) {
	p := startServe(t, "--store", "memory", "--addr", "0.0.0.0:0", "--insecure")
	if !strings.HasPrefix(p.url, "http://127.0.0.1:") {
		t.Fatalf("announced %q", p.url)
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
