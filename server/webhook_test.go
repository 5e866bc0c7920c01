package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// receiver is a real webhook endpoint whose answers the test scripts.
type receiver struct {
	t   *testing.T
	ts  *httptest.Server // nil for a receiver without a network
	url string

	mu        sync.Mutex
	attempts  map[string]int
	delivered map[string]int
	headers   map[string]http.Header
	bodies    map[string][]byte
	answer    func(id, mode string, attempt int) int
}

func newReceiver(t *testing.T, answer func(id, mode string, attempt int) int) *receiver {
	rc := newBubbleReceiver(t, answer)
	rc.ts = httptest.NewServer(rc)
	rc.url = rc.ts.URL
	t.Cleanup(rc.ts.Close)
	return rc
}

// newBubbleReceiver is a receiver without a network, for tests in synctest
// bubbles: the server reaches it through rc.client().
func newBubbleReceiver(t *testing.T, answer func(id, mode string, attempt int) int) *receiver {
	return &receiver{t: t, attempts: map[string]int{}, delivered: map[string]int{}, headers: map[string]http.Header{},
		bodies: map[string][]byte{}, answer: answer, url: "http://hook.test"}
}

// client is a webhook client that delivers to rc in process.
func (rc *receiver) client() *http.Client { return &http.Client{Transport: handlerTransport{rc}} }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Ce-Id")
	var data struct {
		Mode string `json:"mode"`
	}
	json.Unmarshal(body, &data)
	rc.mu.Lock()
	rc.attempts[id]++
	n := rc.attempts[id]
	rc.headers[id] = r.Header.Clone()
	rc.bodies[id] = body
	code := rc.answer(id, data.Mode, n)
	if code < 300 {
		rc.delivered[id]++
	}
	rc.mu.Unlock()
	if code == 429 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
}

func (rc *receiver) counts(id string) (attempts, delivered int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.attempts[id], rc.delivered[id]
}

func TestWebhookRetryDeadLetterRedrive(t *testing.T) {
	synctest.Test(t, testWebhookRetryDeadLetterRedrive)
}

func testWebhookRetryDeadLetterRedrive(t *testing.T) {
	var fixed sync.WaitGroup
	fixed.Add(1)
	isFixed := false
	var fixMu sync.Mutex
	rc := newBubbleReceiver(t, func(id, mode string, n int) int {
		fixMu.Lock()
		defer fixMu.Unlock()
		switch {
		case mode == "flaky" && n <= 2:
			return 503
		case mode == "limited" && n == 1:
			return 429
		case mode == "bad" && !isFixed:
			return 400
		case mode == "gone":
			return 500
		}
		return 200
	})
	e := newBubbleEnv(t, server.WithWebhookClient(rc.client()))
	a := e.do("PUT", "/v1/subscriptions/hooks", map[string]any{
		"filter": "hook.*", "endpoint": rc.url + "/hook", "max_attempts": 3,
		"backoff": map[string]string{"initial": "10ms", "max": "50ms"}, "start": "latest", "secret": "s3cret",
	})
	if a.status != 201 {
		t.Fatalf("PUT subscription: %d %s", a.status, a.body)
	}
	ids := map[string]string{}
	for _, m := range []string{"flaky", "bad", "fine", "limited", "gone"} {
		p := e.publish(map[string]any{"name": "hook.test", "subject": "s/" + m, "data": map[string]any{"mode": m},
			"correlation_id": "corr-" + m, "priority": "high", "metadata": map[string]string{"traceparent": "00-abc-def-01"}})
		ids[m] = p.Events[0].ID
	}
	testwait.For(t, "deliveries", func() bool {
		_, f := rc.counts(ids["flaky"])
		_, ok := rc.counts(ids["fine"])
		_, l := rc.counts(ids["limited"])
		b, _ := rc.counts(ids["bad"])
		g, _ := rc.counts(ids["gone"])
		return f == 1 && ok == 1 && l == 1 && b == 1 && g == 3
	})
	// Past every backoff (50 ms at most) and the Retry-After (1 s): a wrong
	// extra attempt would have been made by now.
	time.Sleep(2 * time.Second)
	synctest.Wait()
	if n, d := rc.counts(ids["flaky"]); n != 3 || d != 1 {
		t.Fatalf("503, 503, 200: %d attempts, %d deliveries", n, d)
	}
	if n, _ := rc.counts(ids["bad"]); n != 1 {
		t.Fatalf("400 is permanent: %d attempts", n)
	}
	if n, _ := rc.counts(ids["gone"]); n != 3 {
		t.Fatalf("500 every time with max_attempts 3: %d attempts", n)
	}

	// CloudEvents binary mode and the signature.
	rc.mu.Lock()
	h, body := rc.headers[ids["fine"]], rc.bodies[ids["fine"]]
	rc.mu.Unlock()
	for k, want := range map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": ids["fine"], "Ce-Type": "hook.test", "Ce-Subject": "s/fine",
		"Ce-Correlationid": "corr-fine", "Ce-Priority": "high", "Ce-Dataversion": "1", "Ce-Traceparent": "00-abc-def-01",
		"Content-Type": "application/json", "Herald-Subscription": "hooks",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if h.Get("Ce-Time") == "" || h.Get("Ce-Source") == "" || h.Get("Ce-Sequence") == "" {
		t.Errorf("missing ce-time/source/sequence: %v", h)
	}
	if got, want := h.Get(server.SignatureHeader), server.Sign([]byte("s3cret"), body); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	if !strings.Contains(string(body), `"mode":"fine"`) {
		t.Errorf("body is not the event's data: %s", body)
	}

	// The dead-letter queue holds the 400 and the 500s.
	var dl struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	e.do("GET", "/v1/dlq?subscription=hooks", nil).json(t, &dl)
	if len(dl.DeadLetters) != 2 {
		t.Fatalf("dead letters: %+v", dl)
	}
	var badDL, goneDL herald.DeadLetter
	for _, d := range dl.DeadLetters {
		switch d.Event.ID {
		case ids["bad"]:
			badDL = d
		case ids["gone"]:
			goneDL = d
		}
	}
	if !badDL.Permanent || goneDL.Permanent || len(goneDL.Errors) != 3 {
		t.Fatalf("dead letters: bad %+v gone %+v", badDL, goneDL)
	}

	// Subscription state.
	var view struct {
		Name        string `json:"name"`
		SecretSet   bool   `json:"secret_set"`
		Secret      string `json:"secret"`
		Position    uint64 `json:"position"`
		DeadLetters int    `json:"dead_letters"`
	}
	e.do("GET", "/v1/subscriptions/hooks", nil).json(t, &view)
	if view.Name != "hooks" || !view.SecretSet || view.Secret != "" || view.Position != e.head() || view.DeadLetters != 2 {
		t.Fatalf("subscription view: %+v (head %d)", view, e.head())
	}

	// Fix the endpoint, redrive one by id and discard the other.
	fixMu.Lock()
	isFixed = true
	fixMu.Unlock()
	if a := e.do("POST", "/v1/dlq/"+badDL.ID+"/redrive", nil); a.status != 202 {
		t.Fatalf("redrive: %d %s", a.status, a.body)
	}
	testwait.For(t, "the redriven delivery", func() bool { _, d := rc.counts(ids["bad"]); return d == 1 })
	testwait.For(t, "the redriven entry to leave the queue", func() bool {
		e.do("GET", "/v1/dlq?subscription=hooks", nil).json(t, &dl)
		return len(dl.DeadLetters) == 1
	})
	if a := e.do("DELETE", "/v1/dlq/"+goneDL.ID, nil); a.status != 200 {
		t.Fatalf("discard: %d %s", a.status, a.body)
	}
	e.do("GET", "/v1/dlq?subscription=hooks", nil).json(t, &dl)
	if len(dl.DeadLetters) != 0 {
		t.Fatalf("after discard: %+v", dl)
	}
	if a := e.do("DELETE", "/v1/dlq/"+goneDL.ID, nil); a.status != 404 {
		t.Fatalf("discard twice: %d", a.status)
	}

	// Metrics count deliveries by outcome.
	m := string(e.do("GET", "/metrics", nil).body)
	for _, want := range []string{`outcome="delivered"`, `outcome="temporary"`, `outcome="permanent"`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Delete.
	if a := e.do("DELETE", "/v1/subscriptions/hooks", nil); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	if a := e.do("GET", "/v1/subscriptions/hooks", nil); a.status != 404 {
		t.Fatalf("after delete: %d", a.status)
	}
}

func TestWebhookConnectionRefusedAndReplay(t *testing.T) {
	rc := newReceiver(t, func(string, string, int) int { return 200 })
	e := newEnv(t)
	// An endpoint that refuses connections: temporary, then dead letter.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	put := func(endpoint string) answer {
		return e.do("PUT", "/v1/subscriptions/replayer", map[string]any{
			"filter": "rp.*", "endpoint": endpoint, "max_attempts": 2,
			"backoff": map[string]string{"initial": "5ms", "max": "10ms"},
		})
	}
	if a := put(deadURL); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	p := e.publish(map[string]any{"name": "rp.one", "data": map[string]any{}})
	var dl struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	testwait.For(t, "a dead letter for a refused connection", func() bool {
		e.do("GET", "/v1/dlq?subscription=replayer", nil).json(t, &dl)
		return len(dl.DeadLetters) == 1
	})
	if msg := dl.DeadLetters[0].Errors[0].Error; strings.Contains(msg, "127.0.0.1") && !strings.Contains(msg, "refused") {
		t.Logf("error: %s", msg)
	}
	// Point it at a working endpoint and replay from the start.
	if a := put(rc.ts.URL); a.status != 200 {
		t.Fatalf("update: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/subscriptions/replayer/replay", map[string]any{"position": 1}); a.status != 200 {
		t.Fatalf("replay: %d %s", a.status, a.body)
	}
	testwait.For(t, "the replayed delivery", func() bool { _, d := rc.counts(p.Events[0].ID); return d >= 1 })
	if a := e.do("POST", "/v1/subscriptions/replayer/replay", map[string]any{}); a.status != 400 {
		t.Fatalf("replay without position: %d", a.status)
	}
	if a := e.do("POST", "/v1/subscriptions/nope/replay", map[string]any{"position": 1}); a.status != 404 {
		t.Fatalf("replay unknown: %d", a.status)
	}
	var list struct {
		Subscriptions []map[string]any `json:"subscriptions"`
	}
	e.do("GET", "/v1/subscriptions", nil).json(t, &list)
	if len(list.Subscriptions) != 1 || list.Subscriptions[0]["name"] != "replayer" {
		t.Fatalf("list: %+v", list)
	}
}

func TestPushSubscriptionsSurviveRestart(t *testing.T) {
	rc := newReceiver(t, func(string, string, int) int { return 200 })
	st := herald.NewMemoryStore()
	bus, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(bus, server.WithSubscriptions([]server.PushSubscription{
		{Name: "cfg", Filter: "keep.*", Endpoint: rc.ts.URL},
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close(t.Context())
	bus.Close(t.Context())
	if _, err := st.GetValue(t.Context(), server.SubscriptionBucket, "cfg"); err != nil {
		t.Fatalf("subscription not kept: %v", err)
	}
	// A second server over the same store runs it again.
	e := newEnvStore(t, st)
	p := e.publish(map[string]any{"name": "keep.it", "data": map[string]any{}})
	testwait.For(t, "delivery after restart", func() bool { _, d := rc.counts(p.Events[0].ID); return d == 1 })
}

// Deliveries of one subject arrive in log order even with concurrency; a
// Retry-After is waited out before the next attempt.
func TestWebhookOrderingAndRetryAfter(t *testing.T) {
	synctest.Test(t, testWebhookOrderingAndRetryAfter)
}

func testWebhookOrderingAndRetryAfter(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]int{}
	var inFlight, peak int
	firstTry := map[string]time.Time{}
	var retryGap time.Duration
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d struct {
			I int `json:"i"`
		}
		json.NewDecoder(r.Body).Decode(&d)
		subj := r.Header.Get("Ce-Subject")
		mu.Lock()
		if subj == "limited" {
			if t0, ok := firstTry[subj]; ok {
				retryGap = time.Since(t0)
			} else {
				firstTry[subj] = time.Now()
				mu.Unlock()
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(429)
				return
			}
		}
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a slow endpoint, on the bubble's clock
		mu.Lock()
		inFlight--
		seen[subj] = append(seen[subj], d.I)
		mu.Unlock()
	})
	e := newBubbleEnv(t, server.WithWebhookClient(&http.Client{Transport: handlerTransport{hook}}))
	if a := e.do("PUT", "/v1/subscriptions/ordered", map[string]any{"filter": "ord.*", "endpoint": "http://hook.test", "concurrency": 8,
		"backoff": map[string]string{"initial": "1ms", "max": "2ms"}}); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	const perSubject = 40
	subjects := []string{"s0", "s1", "s2", "s3", "s4"}
	var batch []map[string]any
	for i := range perSubject {
		for _, s := range subjects {
			batch = append(batch, map[string]any{"name": "ord.x", "subject": s, "data": map[string]any{"i": i}})
		}
	}
	e.publish(batch)
	e.publish(map[string]any{"name": "ord.x", "subject": "limited", "data": map[string]any{"i": 0}})
	testwait.For(t, "every delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range subjects {
			n += len(seen[s])
		}
		return n == perSubject*len(subjects) && len(seen["limited"]) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range subjects {
		for i, v := range seen[s] {
			if v != i {
				t.Fatalf("subject %s: delivery %d carried %d: %v", s, i, v, seen[s])
			}
		}
	}
	if peak < 2 {
		t.Errorf("at most %d delivery at once with concurrency 8", peak)
	}
	if retryGap < time.Second || retryGap > time.Second+2*time.Millisecond {
		t.Errorf("retried %v after a Retry-After of 1 s", retryGap)
	}
}

// A push subscription created or deleted on one server starts or stops on
// another that shares the store.
func TestPushSubscriptionsFollowTheSharedStore(t *testing.T) {
	rc := newReceiver(t, func(string, string, int) int { return 200 })
	st := herald.NewMemoryStore()
	a := newEnvStore(t, st, server.WithRefresh(50*time.Millisecond))
	busB, err := herald.New(herald.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := server.New(busB, server.WithRefresh(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvB.Close(context.Background()); busB.Close(context.Background()) })
	b := &env{t: t, store: st, bus: busB, srv: srvB, url: newTestHTTP(t, srvB)}
	names := func(e *env) int {
		var list struct {
			Subscriptions []map[string]any `json:"subscriptions"`
		}
		e.do("GET", "/v1/subscriptions", nil).json(t, &list)
		return len(list.Subscriptions)
	}
	if a := a.do("PUT", "/v1/subscriptions/shared", map[string]any{"filter": "sh.*", "endpoint": rc.ts.URL}); a.status != 201 {
		t.Fatalf("PUT: %d", a.status)
	}
	testwait.For(t, "the other server to start it", func() bool { return names(b) == 1 })
	a.do("DELETE", "/v1/subscriptions/shared", nil)
	testwait.For(t, "the other server to stop it", func() bool { return names(b) == 0 })
}
