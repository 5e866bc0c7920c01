package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/nats"
)

// serveProc is `herald serve` run in-process by Run.
type serveProc struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	lines  chan string
}

// startServe runs `herald serve args...` and waits for its first line.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &serveProc{cancel: cancel, done: make(chan error, 1), lines: make(chan string, 16)}
	go func() {
		err := Run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), pw, io.Discard)
		pw.Close()
		p.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	select {
	case line, ok := <-p.lines:
		if !ok {
			cancel()
			t.Fatalf("serve stopped before saying where it listens: %v", <-p.done)
		}
		_, rest, found := strings.Cut(line, "listening on ")
		if !found {
			cancel()
			t.Fatalf("first line %q does not say where it listens", line)
		}
		p.url, _, _ = strings.Cut(rest, ",")
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop is SIGTERM: it cancels Run's context and waits for it to return.
func (p *serveProc) stop(t *testing.T) error {
	t.Helper()
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		for range p.lines {
		}
		return err
	case <-time.After(90 * time.Second): // past the default --shutdown-timeout of 30 s
		t.Fatal("serve did not stop")
		return nil
	}
}

func post(t *testing.T, url, token string, body any) (int, []byte) {
	t.Helper()
	return send(t, "POST", url, token, body)
}

// send sends body (nil: none) as JSON with method to url, with token when
// not empty, and returns the answer's status and body.
func send(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Stopping under load (SIGTERM) loses no acknowledged event: after a
// restart on the same data folder every one of them is there.
func TestServeStopUnderLoadKeepsAcknowledged(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", data)
	var mu sync.Mutex
	acked := map[string]uint64{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for k := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("k%d-%d", k, i)
				b, _ := json.Marshal(map[string]any{"id": id, "name": "load.x", "data": map[string]any{"i": i}})
				resp, err := client.Post(p.url+"/v1/events", "application/json", bytes.NewReader(b))
				if err != nil {
					return
				}
				var ans struct {
					Events []struct {
						Position uint64 `json:"position"`
					} `json:"events"`
				}
				json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					return
				}
				mu.Lock()
				acked[id] = ans.Events[0].Position
				mu.Unlock()
			}
		}()
	}
	// Stop while publishing is in full swing.
	testwait.For(t, "50 acknowledged publishes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	if _, err := os.Stat(filepath.Join(data, storeFile)); err != nil {
		t.Fatalf("no store file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "audit.log")); err != nil {
		t.Fatalf("no audit log: %v", err)
	}

	q := startServe(t, "--addr", "127.0.0.1:0", "--data", data)
	got := map[string]uint64{}
	after := uint64(0)
	for {
		resp, err := http.Get(fmt.Sprintf("%s/v1/events?after=%d&limit=1000", q.url, after))
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events []struct {
				ID       string `json:"id"`
				Position uint64 `json:"position"`
			} `json:"events"`
			NextAfter uint64 `json:"next_after"`
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			got[e.ID] = e.Position
		}
		after = page.NextAfter
	}
	for id, pos := range acked {
		if got[id] != pos {
			t.Fatalf("acknowledged %s at %d, after restart at %d", id, pos, got[id])
		}
	}
	t.Logf("%d acknowledged, all present after restart", len(acked))
}

func TestServeRefusesOpenNonLoopback(t *testing.T) {
	var out bytes.Buffer
	err := Run(t.Context(), []string{"serve", "--addr", "0.0.0.0:0", "--store", "memory"}, strings.NewReader(""), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("got %v", err)
	}
	if exitCode(err) != 2 {
		t.Fatalf("exit code %d", exitCode(err))
	}
	p := startServe(t, "--addr", "0.0.0.0:0", "--store", "memory", "--insecure")
	if !strings.Contains(p.url, ":") {
		t.Fatalf("url %q", p.url)
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--store", "cassandra"},
		{"serve", "--addr", "nowhere"},
		{"serve", "--store", "memory", "--log-level", "loud"},
		{"serve", "--store", "sqlite", "--durability", "maybe", "--data", t.TempDir()},
	} {
		err := Run(t.Context(), args, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d)", args, err, exitCode(err))
		}
	}
}

func TestServeConfigAndEnv(t *testing.T) {
	dir := t.TempDir()
	hook := "http://127.0.0.1:9/never"
	cfg := `
store: sqlite
tokens:
  - identity: recorder
    token: plain-recorder-token
    publish: ["recording.>"]
    subscribe: [">"]
  - identity: ops
    token_sha256: ` + hashOf("plain-admin-token") + `
    admin: true
schemas:
  - name: recording.completed
    version: 1
    schema:
      type: object
      required: [recording_id]
retention:
  - {pattern: "debug.>", max_age: 1d}
subscriptions:
  - name: from-config
    filter: recording.*
    endpoint: ` + hook + `
    backoff: {initial: 100ms, max: 1s}
`
	path := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The environment wins over the file: HERALD_STORE=memory.
	t.Setenv("HERALD_STORE", "memory")
	p := startServe(t, "--addr", "127.0.0.1:0", "--config", path, "--data", dir)
	if _, err := os.Stat(filepath.Join(dir, storeFile)); err == nil {
		t.Fatal("HERALD_STORE=memory did not win over the file")
	}
	ev := map[string]any{"name": "recording.completed", "data": map[string]any{"recording_id": "r1"}}
	if st, _ := post(t, p.url+"/v1/events", "", ev); st != 401 {
		t.Fatalf("no token: %d", st)
	}
	if st, b := post(t, p.url+"/v1/events", "plain-recorder-token", map[string]any{"name": "recording.completed", "data": map[string]any{}}); st != 400 || !strings.Contains(string(b), "schema_violation") {
		t.Fatalf("schema from the file: %d %s", st, b)
	}
	if st, b := post(t, p.url+"/v1/events", "plain-recorder-token", ev); st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	req, _ := http.NewRequest("GET", p.url+"/v1/subscriptions/from-config", nil)
	req.Header.Set("Authorization", "Bearer plain-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("subscription from the file: %d", resp.StatusCode)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]string{
		"unknown field": "adress: x\n",
		"bad token":     "tokens:\n  - identity: x\n",
		"both":          "tokens:\n  - identity: x\n    token: a\n    token_sha256: " + hashOf("a") + "\n",
		"bad schema":    "schemas:\n  - name: a.b\n    version: 1\n    schema: {type: nonsense}\n",
		"no schema":     "schemas:\n  - name: a.b\n    version: 1\n",
		"bad sub":       "subscriptions:\n  - name: x\n    endpoint: ftp://x\n",
		"bad readahead": "read_ahead:\n  per_subscription: -1\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(path, []byte(cfg), 0o600)
		err := Run(t.Context(), []string{"serve", "--store", "memory", "--addr", "127.0.0.1:0", "--config", path}, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestServeHelpTeaches(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"serve", "--help"}, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"herald serve --store memory", "HERALD_ADDR", "token_sha256", "--insecure", "SIGTERM"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func hashOf(s string) string { return server.HashToken(s) }

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7480": true, "localhost:1": true, "[::1]:7480": true, "127.1.2.3:80": true,
		"0.0.0.0:7480": false, ":7480": false, "[::]:1": false, "10.0.0.1:7480": false, "example.com:80": false, "junk": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestServeOnNATS(t *testing.T) {
	ns, err := nats.StartEmbedded(nats.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	data := t.TempDir()
	p := startServe(t, "--addr", "127.0.0.1:0", "--data", data, "--nats", ns.ClientURL())
	st, b := post(t, p.url+"/v1/events", "", map[string]any{"id": "on-nats", "name": "nats.ok", "data": map[string]any{}})
	if st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	// A second server on the same cluster sees it.
	q := startServe(t, "--addr", "127.0.0.1:0", "--data", data, "--nats", ns.ClientURL())
	resp, err := http.Get(q.url + "/v1/events/on-nats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after restart: %d", resp.StatusCode)
	}
	if err := Run(t.Context(), []string{"serve", "--store", "nats"}, strings.NewReader(""), io.Discard, io.Discard); err == nil || exitCode(err) != 2 {
		t.Fatalf("--store nats without --nats: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	p := startServe(t, "--addr", "127.0.0.1:0", "--store", "memory", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("url %q", p.url)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if err := Run(t.Context(), []string{"serve", "--store", "memory", "--tls-cert", certFile}, strings.NewReader(""), io.Discard, io.Discard); err == nil || exitCode(err) != 2 {
		t.Fatalf("--tls-cert without --tls-key: %v", err)
	}
}

// TestServeNATSEmbedded runs herald with its own JetStream node: what it
// stores survives a restart on the same data folder.
func TestServeNATSEmbedded(t *testing.T) {
	data := t.TempDir()
	args := []string{"--addr", "127.0.0.1:0", "--data", data, "--nats-embedded", "--nats-listen", "127.0.0.1:0"}
	p := startServe(t, args...)
	st, b := post(t, p.url+"/v1/events", "", map[string]any{"id": "embedded-1", "name": "nats.embedded", "data": map[string]any{}})
	if st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	q := startServe(t, args...)
	resp, err := http.Get(q.url + "/v1/events/embedded-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after restart: %d", resp.StatusCode)
	}
	if err := q.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"serve", "--nats-embedded", "--nats", "nats://127.0.0.1:4222"},
		{"serve", "--nats-embedded", "--nats-cluster", "127.0.0.1:6222"},
		{"serve", "--nats-cluster", "127.0.0.1:6222", "--nats-name", "h1", "--nats-routes", "nats-route://127.0.0.1:6222"},
		{"serve", "--nats-embedded", "--nats-replicas", "7"},
		{"serve", "--nats-embedded", "--store", "sqlite"},
	} {
		if err := Run(t.Context(), bad, strings.NewReader(""), io.Discard, io.Discard); err == nil || exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// TestServeConfigErrorsNameTheKey: a configuration error says which key is
// wrong in the file's own words, never Go's type names.
func TestServeConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ cfg, want string }{
		"typo":         {"adress: x\n", `line 1: unknown key "adress"`},
		"near typo":    {"adrr: x\n", `line 1: unknown key "adrr" (did you mean "addr"?)`},
		"nested typo":  {"limits:\n  max_body: 5\n  max_evnts: 3\n", `line 3: unknown key "limits.max_evnts"`},
		"list typo":    {"tokens:\n  - identity: x\n    tokn: a\n", `line 3: unknown key "tokens[0].tokn" (did you mean "token"?)`},
		"wrong type":   {"addr: [1, 2]\n", `line 1: addr: expected a string, not a list`},
		"wrong number": {"limits:\n  max_body: lots\n", `line 2: limits.max_body: expected a number, not "lots"`},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(path, []byte(c.cfg), 0o600)
		err := Run(t.Context(), []string{"serve", "--store", "memory", "--addr", "127.0.0.1:0", "--config", path}, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q does not say %q", name, err, c.want)
		}
		if strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "!!") {
			t.Errorf("%s: Go or YAML internals in %q", name, err)
		}
	}
}

// FuzzServeConfig: any configuration file either loads or is refused with
// an error in the file's words; none panics or names a Go type.
func FuzzServeConfig(f *testing.F) {
	for _, s := range []string{"adress: x\n", "limits:\n  max_body: lots\n", "tokens:\n  - identity: x\n    tokn: a\n",
		"addr: [1, 2]\n", "retention:\n  - pattern: '>'\n    max_age: 1h\n", ":", "- a\n- b\n", "a: &x [*x]\n"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadServeConfig(path)
		if err != nil && strings.Contains(err.Error(), "main.") {
			t.Errorf("Go type in %q", err)
		}
	})
}

// TestServeStatusSaysWhatRuns: herald serve tells GET /v1/status its
// version and its store.
func TestServeStatusSaysWhatRuns(t *testing.T) {
	p := startServe(t, "--store", "memory", "--addr", "127.0.0.1:0")
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"--server", p.url, "status", "--json"}, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var st struct{ Store, Version string }
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Store != "memory" || !strings.HasPrefix(st.Version, "herald ") {
		t.Errorf("status --json: %v %s", err, out.String())
	}
}
