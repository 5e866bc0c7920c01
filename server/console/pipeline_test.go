package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/store/sqlite"
)

// pipeline is a herald server on a real SQLite file running PanottiServer's
// recording pipeline over webhooks: each plugin is a push subscription
// whose webhook publishes the next event of the chain, with its own token:
//
//	recording.ended → noise_reduction.completed → transcription_local.completed
//	→ meeting_notes_local.completed → desktop_notification.completed
//
// and one more subscription, archiver, whose webhook fails (503) while
// failing is set, so that its events are dead-lettered after 3 attempts,
// and refuses them (400, a permanent error: dead-lettered after 1
// attempt) while refusing is set; its next flaky attempts fail (503)
// in any case.
type pipeline struct {
	t        *testing.T
	url      string
	bus      *herald.Bus
	srv      *server.Server
	tokens   map[string]string // secret by identity; empty on an open server
	failing  atomic.Bool
	refusing atomic.Bool
	flaky    atomic.Int32 // archiver's next attempts that fail (503) whatever failing says
	hooks    *httptest.Server
}

// stage is one plugin of the chain.
type stage struct{ sub, filter, next, identity string }

var stages = []stage{
	{"noise_reduction", "recording.ended", "noise_reduction.completed", "noise-reducer"},
	{"transcription_local", "noise_reduction.completed", "transcription_local.completed", "transcriber"},
	{"meeting_notes_local", "transcription_local.completed", "meeting_notes_local.completed", "note-taker"},
	{"desktop_notification", "meeting_notes_local.completed", "desktop_notification.completed", "notifier"},
}

const transcriptionSchema = `{"type":"object","required":["recording_id","transcript"],
 "properties":{"recording_id":{"type":"string"},"transcript":{"type":"string","x-sensitive":true},"words":{"type":"integer"}}}`

// newPipeline starts the server; with auth it has tokens (ops is admin,
// recorder publishes and reads recording.>, each plugin publishes its
// event), without it is open.
func newPipeline(t *testing.T, auth bool, opts ...server.Option) *pipeline {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), sqlite.WithDurability(sqlite.Normal))
	if err != nil {
		t.Fatal(err)
	}
	return newPipelineOn(t, st, "sqlite", auth, opts...)
}

// newPipelineOn is newPipeline on a store of the given kind, which the
// pipeline closes.
func newPipelineOn(t *testing.T, st herald.Store, kind string, auth bool, opts ...server.Option) *pipeline {
	t.Helper()
	reg := prometheus.NewRegistry()
	codec, err := sensitive.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithRegisterer(reg), herald.WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, bus: bus, tokens: map[string]string{}}
	p.failing.Store(true)
	var toks []server.Token
	if auth {
		add := func(identity string, admin bool, publish, subscribe []string) {
			secret := server.NewTokenSecret()
			p.tokens[identity] = secret
			toks = append(toks, server.Token{Identity: identity, Hash: server.HashToken(secret), Admin: admin, Publish: publish, Subscribe: subscribe})
		}
		add("ops", true, nil, nil)
		add("recorder", false, []string{"recording.>"}, []string{"recording.>"})
		for _, s := range stages {
			add(s.identity, false, []string{s.next}, []string{s.filter})
		}
	}
	opts = append([]server.Option{server.WithRegistry(reg), server.WithTokens(toks), server.WithHistory(200*time.Millisecond, 300),
		server.WithInfo("herald (devel)", kind)}, opts...)
	srv, err := server.New(bus, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.RegisterOnShutdown(srv.EndStreams)
	ts.Start()
	p.url = ts.URL
	p.hooks = httptest.NewServer(http.HandlerFunc(p.hook))
	t.Cleanup(func() {
		p.hooks.Close()
		srv.EndStreams()
		ts.CloseClientConnections()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		bus.Close(ctx)
		st.Close()
	})
	return p
}

// hook is every plugin's webhook: /<subscription>.
func (p *pipeline) hook(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "archiver" {
		if p.refusing.Load() {
			http.Error(w, "archive format not accepted", http.StatusBadRequest)
			return
		}
		if p.flaky.Add(-1) >= 0 {
			http.Error(w, "archive volume is busy", http.StatusServiceUnavailable)
			return
		}
		p.flaky.Store(0)
		if p.failing.Load() {
			http.Error(w, "archive volume is read-only", http.StatusServiceUnavailable)
		}
		return
	}
	if name == "ok" {
		return
	}
	for _, s := range stages {
		if s.sub != name {
			continue
		}
		rec := r.Header.Get("Ce-Subject")
		data := map[string]any{"recording_id": rec}
		switch s.next {
		case "noise_reduction.completed":
			data["clean_path"] = "/recordings/" + rec + ".clean.wav"
		case "transcription_local.completed":
			data["transcript"] = "Let's ship the release on Friday. Ada takes the changelog."
			data["words"] = 10
		case "meeting_notes_local.completed":
			data["summary"] = "Release on Friday"
			data["action_items"] = []string{"Ada: changelog"}
		case "desktop_notification.completed":
			data["message"] = "Notes ready: Release on Friday"
		}
		code, body := p.call(s.identity, "POST", "/v1/events", map[string]any{"name": s.next, "subject": rec,
			"correlation_id": r.Header.Get("Ce-Correlationid"), "causation_id": r.Header.Get("Ce-Id"), "data": data})
		if code >= 300 {
			http.Error(w, string(body), http.StatusInternalServerError)
		}
		return
	}
	http.NotFound(w, r)
}

// call makes an API request as identity (no token on an open server).
func (p *pipeline) call(identity, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := p.tokens[identity]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// api makes an admin request that must succeed, decoding its answer into out.
func (p *pipeline) api(method, path string, body, out any) {
	p.t.Helper()
	code, b := p.call("ops", method, path, body)
	if code >= 300 {
		p.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// start registers the schema and the subscriptions.
func (p *pipeline) start() {
	p.t.Helper()
	p.api("PUT", "/v1/schemas/transcription_local.completed/1", json.RawMessage(transcriptionSchema), nil)
	for _, s := range stages {
		p.api("PUT", "/v1/subscriptions/"+s.sub, map[string]any{"filter": s.filter, "endpoint": p.hooks.URL + "/" + s.sub,
			"max_attempts": 3, "backoff": map[string]any{"initial": "5ms", "max": "20ms"}}, nil)
	}
	p.api("PUT", "/v1/subscriptions/archiver", map[string]any{"filter": "meeting_notes_local.completed", "endpoint": p.hooks.URL + "/archiver",
		"max_attempts": 3, "backoff": map[string]any{"initial": "5ms", "max": "20ms"}}, nil)
}

// record publishes recording.ended for recording/<i> as the recorder and
// returns its id (also its chain's correlation id).
func (p *pipeline) record(i int) string {
	p.t.Helper()
	code, b := p.call("recorder", "POST", "/v1/events", map[string]any{"name": "recording.ended", "subject": fmt.Sprintf("recording/%d", i),
		"data": map[string]any{"recording_id": fmt.Sprintf("recording/%d", i), "file_path": fmt.Sprintf("/recordings/%d.wav", i), "duration": 90.5}})
	if code != 201 {
		p.t.Fatalf("publishing recording.ended: %d %s", code, b)
	}
	var a struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	json.Unmarshal(b, &a)
	return a.Events[0].ID
}

// trace is a correlation's chain as the API answers it.
type trace struct {
	Events []struct {
		Event    herald.Event     `json:"event"`
		Outcomes []herald.Outcome `json:"outcomes"`
	} `json:"events"`
}

// chain reads a correlation's chain as admin.
func (p *pipeline) chain(id string) trace {
	var tr trace
	p.api("GET", "/v1/correlations/"+id, nil, &tr)
	return tr
}

// outcome returns the status of a subscription's outcome of the chain's
// event name.
func (tr trace) outcome(name, sub string) string {
	return string(tr.full(name, sub).Status)
}

// full returns a subscription's outcome of the chain's event name.
func (tr trace) full(name, sub string) herald.Outcome {
	for _, te := range tr.Events {
		if te.Event.Name == name {
			for _, o := range te.Outcomes {
				if o.Subscription == sub {
					return o
				}
			}
		}
	}
	return herald.Outcome{}
}

// until polls cond for up to 60 s (a ceiling: a chain settles in well
// under a second on a quiet machine).
func (p *pipeline) until(what string, cond func() bool) {
	p.t.Helper()
	testwait.Within(p.t, 60*time.Second, what, cond)
}

// settled waits until chain id is complete and archiver has dealt with it
// (dead-lettered while failing).
func (p *pipeline) settled(id string) {
	p.t.Helper()
	p.until("the chain of "+id, func() bool {
		tr := p.chain(id)
		return len(tr.Events) == 5 &&
			tr.outcome("meeting_notes_local.completed", "archiver") != "" &&
			tr.outcome("meeting_notes_local.completed", "archiver") != "retrying" &&
			tr.outcome("meeting_notes_local.completed", "desktop_notification") == "succeeded"
	})
}

type deadLetters struct {
	DeadLetters []herald.DeadLetter `json:"dead_letters"`
}

func (p *pipeline) dlq() []herald.DeadLetter {
	var d deadLetters
	p.api("GET", "/v1/dlq?subscription=archiver", nil, &d)
	return d.DeadLetters
}
