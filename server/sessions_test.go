package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// consoleClient is a browser's view of the console: a cookie jar, no
// redirects followed. Every answer it gets is checked against openapi.json
// (env.checkContract), as env.do's are.
type consoleClient struct {
	e    *env
	c    *http.Client
	csrf string
}

func newConsoleClient(e *env) *consoleClient {
	return &consoleClient{e: e, c: &http.Client{
		Jar:           newJar(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// jar is a minimal cookie jar (the standard one refuses Secure cookies
// over plain HTTP, which this server never sets there anyway).
type jar struct{ cookies map[string]*http.Cookie }

func newJar() *jar { return &jar{cookies: map[string]*http.Cookie{}} }

func (j *jar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
		} else {
			j.cookies[c.Name] = c
		}
	}
}

func (j *jar) Cookies(*url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range j.cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (cc *consoleClient) do(method, path, body string, header ...string) answer {
	cc.e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, cc.e.url+path, rd)
	if err != nil {
		cc.e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := cc.c.Do(req)
	if err != nil {
		cc.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		cc.e.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	op := cc.e.checkContract(req, resp.StatusCode, resp.Header, b)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, op: op}
}

// login posts the login form as the console's page does and, whatever the
// answer, asks GET /ui/session for the CSRF token. It returns the login's
// answer.
func (cc *consoleClient) login(token string) answer {
	cc.e.t.Helper()
	a := cc.do("POST", "/ui/login", url.Values{"token": {token}, "next": {"/ui/dlq"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", cc.e.url, "Sec-Fetch-Site", "same-origin")
	var s struct {
		CSRF string `json:"csrf"`
	}
	if sa := cc.do("GET", "/ui/session", ""); sa.status == http.StatusOK {
		sa.json(cc.e.t, &s)
	}
	cc.csrf = s.CSRF
	return a
}

func TestConsoleSession(t *testing.T) {
	e, _ := authEnv(t)
	cc := newConsoleClient(e)

	// Pages need a session; the login page takes a token once.
	if r := cc.do("GET", "/ui/subscriptions", ""); r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/login?next=%2Fui%2Fsubscriptions" {
		t.Fatalf("a page without a session: %d %s", r.status, r.header.Get("Location"))
	}
	if r := cc.login("hrld_wrong"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "failed=1") {
		t.Fatalf("a wrong token: %d %s", r.status, r.header.Get("Location"))
	}
	if r := cc.do("POST", "/ui/login", "token="+adminToken, "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"); r.status != http.StatusForbidden {
		t.Fatalf("a cross-origin login: %d", r.status)
	}
	r := cc.login(adminToken)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/dlq" {
		t.Fatalf("login: %d %s", r.status, r.header.Get("Location"))
	}
	set := r.header.Get("Set-Cookie")
	for _, want := range []string{"herald_session=hrss_", "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
		if !strings.Contains(set, want) {
			t.Errorf("the session cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("the session cookie is Secure over plain HTTP: %q", set)
	}
	if strings.Contains(set, adminToken) {
		t.Fatal("the cookie carries the token")
	}
	if cc.csrf == "" {
		t.Fatal("GET /ui/session gave no CSRF token")
	}

	// The session is the token: reads work, changes need the CSRF token.
	if r := cc.do("GET", "/v1/dlq", ""); r.status != http.StatusOK {
		t.Fatalf("GET /v1/dlq with the admin's session: %d", r.status)
	}
	if r := cc.do("POST", "/v1/events", `{"name":"recording.done","data":{}}`); r.status != http.StatusForbidden {
		t.Fatalf("a publish without the CSRF token: %d", r.status)
	}
	if r := cc.do("POST", "/v1/events", `{"name":"recording.done","data":{}}`, "Herald-Csrf", "nope"); r.status != http.StatusForbidden {
		t.Fatalf("a publish with a wrong CSRF token: %d", r.status)
	}
	if r := cc.do("POST", "/v1/events", `{"name":"recording.done","data":{}}`, "Herald-Csrf", cc.csrf); r.status != http.StatusCreated {
		t.Fatalf("a publish with the CSRF token: %d", r.status)
	}
	// A restricted token's session has the token's rights, no more.
	rc := newConsoleClient(e)
	rc.login(recorderToken)
	if r := rc.do("GET", "/v1/dlq", ""); r.status != http.StatusForbidden {
		t.Fatalf("GET /v1/dlq with the recorder's session: %d", r.status)
	}
	if r := rc.do("GET", "/v1/events?name=recording.>", ""); r.status != http.StatusOK {
		t.Fatalf("reading its events: %d", r.status)
	}

	// Logging out needs the CSRF token, ends the session and clears the cookie.
	if r := cc.do("POST", "/ui/logout", ""); r.status != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: %d", r.status)
	}
	old := cc.c.Jar.(*jar).cookies["herald_session"].Value
	if r := cc.do("POST", "/ui/logout", "", "Herald-Csrf", cc.csrf); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	if _, ok := cc.c.Jar.(*jar).cookies["herald_session"]; ok {
		t.Error("logout left the cookie")
	}
	replay := newConsoleClient(e)
	replay.c.Jar.SetCookies(nil, []*http.Cookie{{Name: "herald_session", Value: old}})
	if r := replay.do("GET", "/v1/status", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the cookie of an ended session: %d", r.status)
	}
}

func TestConsoleSessionEndsWithItsToken(t *testing.T) {
	e, _ := authEnv(t)
	var created struct {
		Token string `json:"token"`
		Info  struct {
			ID string `json:"id"`
		} `json:"info"`
	}
	e.do("POST", "/v1/tokens", map[string]any{"identity": "temp", "subscribe": []string{"recording.>"}}, "Authorization", bearer(adminToken)).json(t, &created)
	cc := newConsoleClient(e)
	cc.login(created.Token)
	if r := cc.do("GET", "/v1/status", ""); r.status != http.StatusOK {
		t.Fatalf("status with the session: %d", r.status)
	}
	// A stream opened with the session ends when the token is revoked.
	req, _ := http.NewRequest("GET", e.url+"/v1/stream", nil)
	for _, c := range cc.c.Jar.Cookies(nil) {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream with the session: %v %v", err, resp)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(done) }()
	if a := e.do("DELETE", "/v1/tokens/"+created.Info.ID, nil, "Authorization", bearer(adminToken)); a.status != http.StatusNoContent {
		t.Fatalf("revoke: %d", a.status)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the session's stream outlived its token")
	}
	resp.Body.Close()
	if r := cc.do("GET", "/v1/status", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("status with the session of a revoked token: %d", r.status)
	}
	if r := cc.do("GET", "/ui/", ""); r.status != http.StatusSeeOther {
		t.Fatalf("a page with the session of a revoked token: %d", r.status)
	}
}

func TestConsoleOpenServerHasNoLogin(t *testing.T) {
	e := newEnv(t)
	cc := newConsoleClient(e)
	r := cc.do("GET", "/ui/", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /ui/ on an open server: %d", r.status)
	}
	h := r.header
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if !strings.Contains(h.Get(k), want) {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the CSP allows framing: %q", h.Get("Content-Security-Policy"))
	}
	if r := cc.do("GET", "/ui/login", ""); r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		t.Fatalf("the login page of an open server: %d %s", r.status, r.header.Get("Location"))
	}
	if r := cc.do("GET", "/ui/assets/app.js", "", "Accept-Encoding", "gzip"); r.status != http.StatusOK ||
		r.header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js: %d %v", r.status, r.header)
	} else if r2 := cc.do("GET", "/ui/assets/app.js", "", "If-None-Match", r.header.Get("ETag")); r2.status != http.StatusNotModified {
		t.Fatalf("app.js again with its ETag: %d", r2.status)
	}
	if r := cc.do("GET", "/ui/assets/nope.js", ""); r.status != http.StatusNotFound {
		t.Fatalf("a missing asset: %d", r.status)
	}
	if r := cc.do("GET", "/ui", ""); r.status != http.StatusMovedPermanently {
		t.Fatalf("/ui: %d", r.status)
	}
	// The console acts as an admin without a session; its login form only
	// sends it on.
	var sess struct {
		Auth  bool `json:"auth"`
		Admin bool `json:"admin"`
	}
	if r := cc.do("GET", "/ui/session", ""); r.status != http.StatusOK {
		t.Fatalf("GET /ui/session on an open server: %d", r.status)
	} else if r.json(t, &sess); sess.Auth || !sess.Admin {
		t.Fatalf("GET /ui/session on an open server: %s", r.body)
	}
	if r := cc.do("POST", "/ui/login", "next=%2Fui%2Fdlq", "Content-Type", "application/x-www-form-urlencoded"); r.status != http.StatusSeeOther ||
		r.header.Get("Location") != "/ui/dlq" || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("POST /ui/login on an open server: %d to %q, cookie %q", r.status, r.header.Get("Location"), r.header.Get("Set-Cookie"))
	}
	// A stale cookie on an open server is ignored.
	cc.c.Jar.SetCookies(nil, []*http.Cookie{{Name: "herald_session", Value: "hrss_stale"}})
	if r := cc.do("GET", "/v1/status", ""); r.status != http.StatusOK {
		t.Fatalf("an open server with a stale cookie: %d", r.status)
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.do("POST", "/v1/events", map[string]any{"name": "recording.done", "data": map[string]any{}})
	}
	var h struct {
		IntervalSeconds float64 `json:"interval_seconds"`
		Points          []struct {
			Published uint64 `json:"published"`
		} `json:"points"`
		Subscriptions map[string][]uint64 `json:"subscriptions"`
	}
	e.do("GET", "/v1/history", nil).json(t, &h)
	sum := uint64(0)
	for _, p := range h.Points {
		sum += p.Published
	}
	// The first sample is taken as the server starts, the last point ends
	// now: together the points count every event published since.
	if h.IntervalSeconds != 10 || len(h.Points) == 0 || sum != 3 || h.Subscriptions == nil {
		t.Fatalf("history: interval %v, %d points counting %d events, want 10 s and 3 events", h.IntervalSeconds, len(h.Points), sum)
	}
}

// Under TLS the session cookie is Secure.
func TestConsoleSessionCookieSecureUnderTLS(t *testing.T) {
	e, _ := authEnv(t)
	ts := httptest.NewTLSServer(e.srv)
	defer ts.Close()
	cl := ts.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", ts.URL+"/ui/login", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if set := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(set, "; Secure") || !strings.Contains(set, "HttpOnly") {
		t.Fatalf("login over TLS: %d, cookie %q", resp.StatusCode, set)
	}
}

// One token's logins beyond maxSessionsPerToken (16) end its oldest
// sessions, so that a holder of one token cannot take every session of
// the server (10,000) and lock everyone else out of the console; another
// token still logs in.
func TestConsoleSessionsPerToken(t *testing.T) {
	e, _ := authEnv(t)
	var clients []*consoleClient
	for i := range 17 {
		cc := newConsoleClient(e)
		if r := cc.login(recorderToken); r.status != http.StatusSeeOther {
			t.Fatalf("login %d: %d", i, r.status)
		}
		clients = append(clients, cc)
	}
	if r := clients[0].do("GET", "/v1/status", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the first of 17 sessions of one token answered %d, want 401: it should have ended", r.status)
	}
	for i, cc := range clients[1:] {
		if r := cc.do("GET", "/v1/status", ""); r.status != http.StatusOK {
			t.Fatalf("session %d of the last 16: %d", i+1, r.status)
		}
	}
	other := newConsoleClient(e)
	if r := other.login(adminToken); r.status != http.StatusSeeOther {
		t.Fatalf("another token's login: %d", r.status)
	}
	if r := other.do("GET", "/v1/status", ""); r.status != http.StatusOK {
		t.Fatalf("another token's session: %d", r.status)
	}
}
