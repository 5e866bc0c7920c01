package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldhq/herald/api"
)

// strict decodes an answer into the api type that documents it, refusing
// any field the type does not have, so the server's answers and the wire
// types the client decodes cannot drift apart.
func strict[T any](t *testing.T, what string, a answer, status int) T {
	t.Helper()
	var v T
	if a.status != status {
		t.Fatalf("%s answered %d, want %d: %s", what, a.status, status, a.body)
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: the answer does not fit %T: %v\n%s", what, v, err, a.body)
	}
	return v
}

func TestAnswersAreTheWireTypes(t *testing.T) {
	e, _ := authEnv(t)
	auth := []string{"Authorization", bearer(adminToken)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // every delivery dead-letters at once
	}))
	defer hook.Close()

	one := strict[api.PublishAnswer](t, "POST /v1/events", e.do("POST", "/v1/events",
		map[string]any{"id": "w1", "name": "wire.one", "data": map[string]any{"n": 1}}, auth...), http.StatusCreated)
	if len(one.Events) != 1 || one.Events[0].ID != "w1" || one.Events[0].Position == 0 {
		t.Fatalf("publish answer %+v", one)
	}
	dup := strict[api.PublishAnswer](t, "POST /v1/events (batch, duplicate)", e.do("POST", "/v1/events",
		api.EventBatch{Events: []*api.Event{{ID: "w1", Name: "wire.one", Data: json.RawMessage(`{"n":1}`)}}}, auth...), http.StatusOK)
	if len(dup.Events) != 1 || !dup.Events[0].Duplicate {
		t.Fatalf("duplicate answer %+v", dup)
	}
	page := strict[api.EventPage](t, "GET /v1/events", e.do("GET", "/v1/events?name=wire.>", nil, auth...), http.StatusOK)
	if len(page.Events) != 1 || page.NextAfter != one.Events[0].Position {
		t.Fatalf("page %+v", page)
	}
	strict[api.Trace](t, "GET /v1/correlations", e.do("GET", "/v1/correlations/w1", nil, auth...), http.StatusOK)

	created := strict[api.PushSubscriptionInfo](t, "PUT /v1/subscriptions", e.do("PUT", "/v1/subscriptions/wire",
		api.PushSubscription{Filter: "wire.>", Endpoint: hook.URL, MaxAttempts: 1}, auth...), http.StatusCreated)
	if created.Name != "wire" || created.Secret == "" || !created.SecretSet || !created.Running {
		t.Fatalf("created %+v", created)
	}
	got := strict[api.PushSubscriptionInfo](t, "GET /v1/subscriptions/wire", e.do("GET", "/v1/subscriptions/wire", nil, auth...), http.StatusOK)
	if got.Secret != "" || got.PushSubscription.Secret != "" || got.Filter != "wire.>" {
		t.Fatalf("got %+v", got)
	}
	list := strict[api.PushSubscriptionList](t, "GET /v1/subscriptions", e.do("GET", "/v1/subscriptions", nil, auth...), http.StatusOK)
	if len(list.Subscriptions) != 1 {
		t.Fatalf("list %+v", list)
	}
	strict[api.DeadLetterList](t, "GET /v1/dlq", e.do("GET", "/v1/dlq", nil, auth...), http.StatusOK)
	strict[api.RedriveAnswer](t, "POST /v1/dlq/redrive", e.do("POST", "/v1/dlq/redrive?subscription=wire", nil, auth...), http.StatusAccepted)

	if a := e.do("PUT", "/v1/schemas/wire.one/1", `{"type":"object"}`, auth...); a.status/100 != 2 {
		t.Fatalf("PUT schema: %d %s", a.status, a.body)
	}
	schemas := strict[api.SchemaList](t, "GET /v1/schemas", e.do("GET", "/v1/schemas", nil, auth...), http.StatusOK)
	if len(schemas.Schemas) != 1 || schemas.Schemas[0] != (api.SchemaRef{Name: "wire.one", Version: 1}) {
		t.Fatalf("schemas %+v", schemas)
	}

	tok := strict[api.TokenCreated](t, "POST /v1/tokens", e.do("POST", "/v1/tokens",
		api.TokenRequest{Identity: "wired", Publish: []string{"wire.>"}}, auth...), http.StatusCreated)
	if tok.Token == "" || tok.Info.ID == "" || tok.Info.Hash != "" {
		t.Fatalf("token %+v", tok)
	}
	toks := strict[api.TokenList](t, "GET /v1/tokens", e.do("GET", "/v1/tokens", nil, auth...), http.StatusOK)
	for _, tk := range toks.Tokens {
		if tk.Hash != "" {
			t.Fatalf("GET /v1/tokens shows the hash of %q", tk.Identity)
		}
	}

	e.publish(map[string]any{"name": "wire.one", "subject": "wire/1", "data": map[string]any{}}, auth...)
	subj := strict[api.SubjectInfo](t, "GET /v1/subjects", e.do("GET", "/v1/subjects/wire%2F1", nil, auth...), http.StatusOK)
	if subj.Subject != "wire/1" || subj.Version != 1 || subj.FirstPosition == 0 || subj.LastPosition != subj.FirstPosition {
		t.Fatalf("subject %+v", subj)
	}
	stale := strict[api.ErrorBody](t, "a stale expected version", e.do("POST", "/v1/events",
		map[string]any{"name": "wire.one", "subject": "wire/1", "data": map[string]any{}}, append(auth, "Herald-Expected-Version", "0")...), http.StatusConflict)
	if stale.Error.CurrentVersion == nil || *stale.Error.CurrentVersion != 1 {
		t.Fatalf("409 without current_version: %+v", stale)
	}

	bad := strict[api.ErrorBody](t, "an error", e.do("POST", "/v1/events",
		map[string]any{"name": "Wire", "data": map[string]any{}}, auth...), http.StatusBadRequest)
	if bad.Error.Code != api.CodeInvalidEvent || bad.Error.Field != "name" {
		t.Fatalf("error %+v", bad)
	}
}
