package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

const forgetEmail = "carol@example.com"

// emailAt reads the email field of the event id from a running server.
func emailAt(t *testing.T, base, id string) any {
	t.Helper()
	resp, err := http.Get(base + "/v1/events/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e herald.Event
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("data %s: %v", e.Data, err)
	}
	return d["email"]
}

// herald serve encrypts the fields a schema marks sensitive in its SQLite
// file and returns them in clear, and herald forget shreds them.
func TestForgetWithServe(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", dir, "--store", "sqlite", "--durability", "normal")
	base := "http://" + strings.TrimPrefix(p.url, "http://")
	putSchema(t, base, "customer.created", 1, `{"type":"object","properties":{"email":{"type":"string","x-sensitive":true}}}`)
	st, b := post(t, base+"/v1/events", "", map[string]any{"name": "customer.created", "subject": "customer/42",
		"data": map[string]any{"email": forgetEmail}})
	if st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	var pub struct{ Events []struct{ ID string } }
	json.Unmarshal(b, &pub)
	id := pub.Events[0].ID
	if got := emailAt(t, base, id); got != forgetEmail {
		t.Fatalf("before forget: email = %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := Run(ctx, []string{"--server", base, "forget", "customer/42"}, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("forget: %v: %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "forgot customer/42") {
		t.Errorf("forget said %q", out.String())
	}
	if got := emailAt(t, base, id); got != nil {
		t.Errorf("after forget: email = %v, want null", got)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}

	// The file never held the value in clear.
	s, err := sqlite.Open(ctx, filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for e, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if bytes.Contains(e.Data, []byte(forgetEmail)) || !bytes.Contains(e.Data, []byte(`"$enc"`)) {
			t.Errorf("stored data: %s", e.Data)
		}
	}
	if n != 1 {
		t.Errorf("stored %d events, want 1", n)
	}
}

func TestForgetCLI(t *testing.T) {
	ts := startServer(t, withAdmin())
	r := ts.run(t, "forget", "customer/1")
	if !errors.Is(r.err, herald.ErrUnauthorized) {
		t.Errorf("forget without a token: %v", r.err)
	}
	// The server has no codec: nothing to forget, said as not found.
	r = ts.run(t, "--token", adminSecret, "forget", "customer/1")
	if !errors.Is(r.err, herald.ErrNotFound) {
		t.Errorf("forget on a server without keys: %v", r.err)
	}
	for _, bad := range [][]string{{"forget"}, {"forget", "a", "b"}, {"forget", ""}} {
		if r := ts.run(t, bad...); exitCode(r.err) != 2 {
			t.Errorf("%q: %v", bad, r.err)
		}
	}
	r = ts.run(t, "forget", "--help")
	if r.err != nil || !strings.Contains(r.stdout, "crypto-shredding") || !strings.Contains(r.stdout, "x-sensitive") {
		t.Errorf("help: %v\n%s", r.err, r.stdout)
	}
}

// TestForgetUnknownSubject: forgetting a subject no event has says so
// instead of claiming its fields now read as null.
func TestForgetUnknownSubject(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", dir, "--store", "sqlite", "--durability", "normal")
	var out, errOut bytes.Buffer
	err := Run(t.Context(), []string{"--server", p.url, "forget", "customer/none"}, strings.NewReader(""), &out, &errOut)
	if !errors.Is(err, herald.ErrNotFound) || !strings.Contains(err.Error(), "customer/none") {
		t.Errorf("forget of an unknown subject: %v (stdout %q)", err, out.String())
	}
}

// putSchema registers schema for name and version on the server at base,
// through the HTTP API.
func putSchema(t *testing.T, base, name string, version int, schema string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/schemas/%s/%d", base, name, version), strings.NewReader(schema))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT schema: %d", resp.StatusCode)
	}
}
