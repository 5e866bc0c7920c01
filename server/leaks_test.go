package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
	"github.com/heraldhq/herald/internal/testwait"
	"github.com/heraldhq/herald/server"
)

// leakTokens are an admin (ops), two identities that publish and read
// everything but are no admins (alice, bob), and the recorder, which
// publishes and reads recording.>.
func leakTokens() server.Option {
	return server.WithTokens([]server.Token{
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true},
		{Identity: "alice", Hash: server.HashToken(aliceToken), Publish: []string{">"}, Subscribe: []string{">"}},
		{Identity: "bob", Hash: server.HashToken(bobToken), Publish: []string{">"}, Subscribe: []string{">"}},
		{Identity: "recorder", Hash: server.HashToken(recorderToken), Publish: []string{"recording.>"}, Subscribe: []string{"recording.>"}},
	})
}

// A trace shows each identity the outcomes of its own subscriptions only:
// bob does not see that alice's endpoint answered 401. Admins see all.
func TestTraceShowsOnlyOwnOutcomes(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }))
	defer refuse.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	e := newEnv(t, leakTokens())
	for _, s := range []struct{ tok, name, endpoint string }{{aliceToken, "alice-hook", refuse.URL}, {bobToken, "bob-hook", ok.URL}} {
		if a := e.do("PUT", "/v1/subscriptions/"+s.name, map[string]any{"filter": "order.*", "endpoint": s.endpoint, "max_attempts": 1},
			"Authorization", bearer(s.tok)); a.status != 201 {
			t.Fatalf("PUT %s: %d %s", s.name, a.status, a.body)
		}
	}
	e.publish(map[string]any{"name": "order.paid", "correlation_id": "c-1", "data": map[string]any{}}, "Authorization", bearer(adminToken))
	trace := func(tok string) herald.Trace {
		var tr herald.Trace
		e.do("GET", "/v1/correlations/c-1", nil, "Authorization", bearer(tok)).json(t, &tr)
		return tr
	}
	testwait.For(t, "both outcomes", func() bool {
		tr := trace(adminToken)
		return len(tr.Events) == 1 && len(tr.Events[0].Outcomes) == 2
	})
	for tok, want := range map[string]string{aliceToken: "alice-hook", bobToken: "bob-hook"} {
		tr := trace(tok)
		if len(tr.Events) != 1 || len(tr.Events[0].Outcomes) != 1 || tr.Events[0].Outcomes[0].Subscription != want {
			t.Errorf("%s's trace: %+v, want the outcome of %s only", want, tr.Events, want)
		}
	}
	if o := trace(aliceToken).Events[0].Outcomes[0]; !strings.Contains(o.LastError, "401") {
		t.Errorf("alice does not see her own delivery error: %+v", o)
	}
	if tr := trace(recorderToken); len(tr.Events) != 0 {
		t.Errorf("the recorder sees a trace of events it may not read: %+v", tr)
	}
}

// A PUT of a subscription name another identity holds answers as for any
// name the caller cannot have, without naming or confirming an owner.
func TestTakenSubscriptionNameNamesNoOwner(t *testing.T) {
	e := newEnv(t, leakTokens())
	def := map[string]any{"endpoint": "http://127.0.0.1:1/"}
	if a := e.do("PUT", "/v1/subscriptions/hook", def, "Authorization", bearer(aliceToken)); a.status != 201 {
		t.Fatalf("alice's PUT: %d %s", a.status, a.body)
	}
	a := e.do("PUT", "/v1/subscriptions/hook", def, "Authorization", bearer(bobToken))
	if a.status != http.StatusConflict || a.errCode(t).Error.Code != "conflict" || a.errCode(t).Error.Field != "name" {
		t.Fatalf("bob's PUT of a taken name: %d %s, want 409 conflict on name", a.status, a.body)
	}
	for _, word := range []string{"alice", "identity", "belongs", "owner"} {
		if strings.Contains(string(a.body), word) {
			t.Errorf("the answer names %q: %s", word, a.body)
		}
	}
	if g := e.do("GET", "/v1/subscriptions/hook", nil, "Authorization", bearer(bobToken)); g.status != 404 {
		t.Errorf("bob's GET of alice's subscription: %d", g.status)
	}
}

// /metrics, which names every subscription, answers only the metrics
// token or an admin token when the server has a metrics token.
func TestMetricsToken(t *testing.T) {
	open := newEnv(t, leakTokens())
	if a := open.do("GET", "/metrics", nil); a.status != 200 {
		t.Fatalf("/metrics without a metrics token: %d", a.status)
	}
	e := newEnv(t, leakTokens(), server.WithMetricsToken("metrics-secret-for-tests"))
	if a := e.do("PUT", "/v1/subscriptions/secret-plan", map[string]any{"endpoint": "http://127.0.0.1:1/"},
		"Authorization", bearer(aliceToken)); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	for tok, want := range map[string]int{"": 401, "wrong": 401, aliceToken: 401, "metrics-secret-for-tests": 200, adminToken: 200} {
		auth := ""
		if tok != "" {
			auth = bearer(tok)
		}
		a := e.do("GET", "/metrics", nil, "Authorization", auth)
		if a.status != want {
			t.Errorf("/metrics with %q: %d, want %d", tok, a.status, want)
		}
		if a.status != 200 && strings.Contains(string(a.body), "secret-plan") {
			t.Errorf("a refused /metrics names the subscription: %s", a.body)
		}
		if want == 401 && a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("/metrics 401 without WWW-Authenticate")
		}
	}
}

// A schema is readable by a token that may publish or read its event
// name; others (but admins) neither see it listed nor read it.
func TestSchemasReadByRights(t *testing.T) {
	e := newEnv(t, leakTokens())
	for _, name := range []string{"recording.done", "billing.paid"} {
		if a := e.do("PUT", "/v1/schemas/"+name+"/1", map[string]any{"type": "object"}, "Authorization", bearer(adminToken)); a.status != 201 {
			t.Fatalf("PUT schema %s: %d %s", name, a.status, a.body)
		}
	}
	var list struct {
		Schemas []herald.SchemaRef `json:"schemas"`
	}
	e.do("GET", "/v1/schemas", nil, "Authorization", bearer(recorderToken)).json(t, &list)
	if len(list.Schemas) != 1 || list.Schemas[0].Name != "recording.done" {
		t.Errorf("the recorder's schema list: %+v", list.Schemas)
	}
	if a := e.do("GET", "/v1/schemas/billing.paid/1", nil, "Authorization", bearer(recorderToken)); a.status != 404 {
		t.Errorf("the recorder reads billing.paid's schema: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/schemas/recording.done/1", nil, "Authorization", bearer(recorderToken)); a.status != 200 {
		t.Errorf("the recorder cannot read its own schema: %d %s", a.status, a.body)
	}
	e.do("GET", "/v1/schemas", nil, "Authorization", bearer(adminToken)).json(t, &list)
	if len(list.Schemas) != 2 {
		t.Errorf("the admin's schema list: %+v", list.Schemas)
	}
	if a := e.do("GET", "/v1/schemas", nil); a.status != 401 {
		t.Errorf("schemas without a token: %d", a.status)
	}
}

// The 409 of a conditional publish gives the subject's current version
// only to a caller who may read every event the subject holds; GET
// /v1/subjects refuses the others.
func TestConflictHidesVersionFromNonReaders(t *testing.T) {
	e := newEnv(t, leakTokens())
	rec, admin := []string{"Authorization", bearer(recorderToken)}, []string{"Authorization", bearer(adminToken)}
	ev := func(name, subject string) map[string]any {
		return map[string]any{"name": name, "subject": subject, "data": map[string]any{}}
	}
	e.publish([]any{ev("billing.paid", "acct/1"), ev("billing.paid", "acct/1")}, admin...)
	a := e.do("POST", "/v1/events", ev("recording.done", "acct/1"), append(rec, "Herald-Expected-Version", "0")...)
	var body api.ErrorBody
	a.json(t, &body)
	if a.status != http.StatusConflict || body.Error.CurrentVersion != nil || strings.Contains(string(a.body), "2") {
		t.Fatalf("the recorder's stale publish to billing's subject: %d %s, want 409 without the version", a.status, a.body)
	}
	if g := e.do("GET", "/v1/subjects/acct%2F1", nil, rec...); g.status != http.StatusForbidden || strings.Contains(string(g.body), `"version"`) {
		t.Fatalf("the recorder's GET of billing's subject: %d %s, want 403", g.status, g.body)
	}
	// Its own subject: the version, as before.
	e.publish(ev("recording.done", "rec/1"), rec...)
	a = e.do("POST", "/v1/events", ev("recording.done", "rec/1"), append(rec, "Herald-Expected-Version", "0")...)
	a.json(t, &body)
	if a.status != http.StatusConflict || body.Error.CurrentVersion == nil || *body.Error.CurrentVersion != 1 {
		t.Fatalf("the recorder's stale publish to its own subject: %d %s, want 409 with version 1", a.status, a.body)
	}
	a = e.do("POST", "/v1/events", ev("billing.paid", "acct/1"), append(admin, "Herald-Expected-Version", "0")...)
	a.json(t, &body)
	if body.Error.CurrentVersion == nil || *body.Error.CurrentVersion != 2 {
		t.Fatalf("the admin's stale publish: %d %s, want version 2", a.status, a.body)
	}
}
