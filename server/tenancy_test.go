package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/server"
)

// tenancyEnv is a server with two tenants that may publish the same names
// (the biller and the recorder) and an admin.
func tenancyEnv(t *testing.T, biller, recorder server.Token) *env {
	t.Helper()
	biller.Identity, biller.Hash = "biller", server.HashToken(billerToken)
	recorder.Identity, recorder.Hash = "recorder", server.HashToken(recorderToken)
	return newEnv(t, server.WithTokens([]server.Token{biller, recorder,
		{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
}

// TestEventIDsBelongToTheirPublisher: an event id was one global
// idempotency key, so the recorder's "inv-42" made the biller's later
// "inv-42" a silent duplicate (200, never stored), and the answer told the
// biller where the recorder's event sat in the log. Now a publish whose id
// another identity stored is 409 id_taken, which says nothing about the
// stored event, on every publish path (one event, a batch, a conditional
// append, CloudEvents structured and binary mode), and for an admin too.
// The same identity publishing its id again keeps the duplicate answer.
func TestEventIDsBelongToTheirPublisher(t *testing.T) {
	e := tenancyEnv(t, server.Token{Publish: []string{">"}, Subscribe: []string{">"}},
		server.Token{Publish: []string{">"}, Subscribe: []string{">"}})
	biller := []string{"Authorization", bearer(billerToken)}
	recorder := []string{"Authorization", bearer(recorderToken)}
	admin := []string{"Authorization", bearer(adminToken)}

	inv := map[string]any{"id": "inv-42", "name": "billing.invoiced", "subject": "acct/1", "data": map[string]any{"total": 12}}
	e.publish(map[string]any{"name": "billing.opened", "subject": "acct/1", "data": map[string]any{}}, recorder...)
	first := e.publish(inv, recorder...)
	if first.Events[0].Duplicate {
		t.Fatalf("first publish of inv-42 is a duplicate")
	}
	pos := first.Events[0].Position
	head := e.head()

	taken := func(t *testing.T, what string, a answer, index int) {
		t.Helper()
		if a.status != http.StatusConflict {
			t.Fatalf("%s: status %d, want 409: %s", what, a.status, a.body)
		}
		ae := a.errCode(t)
		if ae.Error.Code != "id_taken" || ae.Error.Field != "id" || ae.Error.Index == nil || *ae.Error.Index != index {
			t.Errorf("%s: %s", what, a.body)
		}
		// Nothing of the stored event: not its position, name, subject,
		// version or publisher.
		body := string(a.body)
		for _, leak := range []string{"position", "billing.invoiced", "acct", "version", "recorder", "total"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the answer shows %q: %s", what, leak, body)
			}
		}
		if e.head() != head {
			t.Fatalf("%s: stored %d events", what, e.head()-head)
		}
	}

	// The same event, and the same id with other content.
	taken(t, "same content", e.do("POST", "/v1/events", inv, biller...), 0)
	other := map[string]any{"id": "inv-42", "name": "billing.paid", "data": map[string]any{}}
	taken(t, "other content", e.do("POST", "/v1/events", other, biller...), 0)
	// A conditional append: neither the id nor the subject's version shows.
	taken(t, "conditional", e.do("POST", "/v1/events", inv, append([]string{"Herald-Expected-Version", "2"}, biller...)...), 0)
	taken(t, "conditional, other version", e.do("POST", "/v1/events", inv, append([]string{"Herald-Expected-Version", "0"}, biller...)...), 0)
	// In a batch the answer names the event.
	taken(t, "batch", e.do("POST", "/v1/events", []any{
		map[string]any{"id": "inv-42", "name": "billing.paid", "data": map[string]any{}}}, biller...), 0)
	// CloudEvents, structured and binary mode.
	ce := map[string]any{"specversion": "1.0", "id": "inv-42", "type": "billing.invoiced", "source": "x", "subject": "acct/1", "data": map[string]any{"total": 12}}
	taken(t, "cloudevent", e.do("POST", "/v1/events", ce, append(biller, "Content-Type", "application/cloudevents+json")...), 0)
	taken(t, "cloudevents batch", e.do("POST", "/v1/events", []any{ce}, append(biller, "Content-Type", "application/cloudevents-batch+json")...), 0)
	taken(t, "binary mode", e.do("POST", "/v1/events", `{"total":12}`, append(biller, "Ce-Specversion", "1.0", "Ce-Id", "inv-42",
		"Ce-Type", "billing.invoiced", "Ce-Source", "x", "Ce-Subject", "acct%2F1")...), 0)
	// An admin is its own identity.
	taken(t, "admin", e.do("POST", "/v1/events", inv, admin...), 0)

	// The publisher repeating itself gets today's duplicate answer.
	again := e.publish(inv, recorder...)
	if !again.Events[0].Duplicate || again.Events[0].Position != pos {
		t.Fatalf("the publisher's repeat: %+v", again)
	}
	// A batch with a fresh event and a taken id: 409 naming the taken one;
	// the fresh event is stored (as a batch with a conflict always was), so
	// sending the batch again with another id stores nothing twice.
	a := e.do("POST", "/v1/events", []any{
		map[string]any{"id": "inv-43", "name": "billing.invoiced", "data": map[string]any{}}, inv}, biller...)
	if a.status != http.StatusConflict || a.errCode(t).Error.Code != "id_taken" || *a.errCode(t).Error.Index != 1 {
		t.Fatalf("batch with a taken id: %d %s", a.status, a.body)
	}
	p := e.publish([]any{
		map[string]any{"id": "inv-43", "name": "billing.invoiced", "data": map[string]any{}},
		map[string]any{"id": "biller-inv-42", "name": "billing.invoiced", "subject": "acct/1", "data": map[string]any{"total": 12}}}, biller...)
	if !p.Events[0].Duplicate || p.Events[1].Duplicate {
		t.Fatalf("batch sent again: %+v", p)
	}
}

// TestSubjectRights: subjects had no access control, so the recorder
// appended to the biller's subject acct/1 and broke the biller's
// conditional appends. A token's subject patterns now bound the subjects
// it may publish to (conditional appends included) and look up; a token
// without them keeps every subject, as before.
func TestSubjectRights(t *testing.T) {
	e := tenancyEnv(t, server.Token{Publish: []string{">"}, Subscribe: []string{">"}, Subjects: []string{"acct/*"}},
		server.Token{Publish: []string{">"}, Subscribe: []string{">"}, Subjects: []string{"rec/>", "shared"}})
	biller := []string{"Authorization", bearer(billerToken)}
	recorder := []string{"Authorization", bearer(recorderToken)}
	admin := []string{"Authorization", bearer(adminToken)}
	ev := func(subject string) map[string]any {
		return map[string]any{"name": "billing.paid", "subject": subject, "data": map[string]any{}}
	}

	e.publish(ev("acct/1"), biller...)
	head := e.head()
	forbidden := func(t *testing.T, what string, a answer, index int, subject string) {
		t.Helper()
		if a.status != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403: %s", what, a.status, a.body)
		}
		ae := a.errCode(t)
		if ae.Error.Code != "forbidden" || ae.Error.Field != "subject" || ae.Error.Index == nil || *ae.Error.Index != index ||
			!strings.Contains(ae.Error.Message, "subject") || !strings.Contains(ae.Error.Message, subject) {
			t.Errorf("%s: %s", what, a.body)
		}
		if strings.Contains(string(a.body), "current_version") {
			t.Errorf("%s: the answer shows the subject's version: %s", what, a.body)
		}
		if e.head() != head {
			t.Fatalf("%s: stored %d events", what, e.head()-head)
		}
	}
	forbidden(t, "another tenant's subject", e.do("POST", "/v1/events", ev("acct/1"), recorder...), 0, "acct/1")
	forbidden(t, "conditional append", e.do("POST", "/v1/events", ev("acct/1"),
		append([]string{"Herald-Expected-Version", "1"}, recorder...)...), 0, "acct/1")
	forbidden(t, "batch", e.do("POST", "/v1/events", []any{ev("rec/1"), ev("acct/1")}, recorder...), 1, "acct/1")
	forbidden(t, "* is one segment", e.do("POST", "/v1/events", ev("acct/1/x"), biller...), 0, "acct/1/x")
	forbidden(t, "cloudevent", e.do("POST", "/v1/events", map[string]any{"specversion": "1.0", "id": "c1", "type": "billing.paid",
		"source": "x", "subject": "acct/1", "data": map[string]any{}}, append(recorder, "Content-Type", "application/cloudevents+json")...), 0, "acct/1")
	forbidden(t, "binary mode", e.do("POST", "/v1/events", `{}`, append(recorder, "Ce-Specversion", "1.0", "Ce-Id", "c2",
		"Ce-Type", "billing.paid", "Ce-Source", "x", "Ce-Subject", "acct%2F1")...), 0, "acct/1")

	// What the patterns cover, an event without a subject, and a token
	// without patterns (the admin) go through.
	e.publish(ev("acct/2"), biller...)
	e.publish(ev("rec/1/take/2"), recorder...)
	e.publish(ev("shared"), recorder...)
	e.publish(map[string]any{"name": "billing.tick", "data": map[string]any{}}, recorder...)
	e.publish(ev("rec/9"), admin...)
	e.publish(ev("acct/1"), append([]string{"Herald-Expected-Version", "1"}, biller...)...)

	// Reading a subject is within the same rights.
	if a := e.do("GET", "/v1/subjects/acct%2F1", nil, recorder...); a.status != http.StatusForbidden ||
		a.errCode(t).Error.Code != "forbidden" || strings.Contains(string(a.body), "version") || !strings.Contains(string(a.body), "subject") {
		t.Errorf("recorder reads acct/1: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/subjects/acct%2F1", nil, biller...); a.status != 200 || !strings.Contains(string(a.body), `"version":2`) {
		t.Errorf("biller reads acct/1: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/subjects/acct%2F1", nil, admin...); a.status != 200 {
		t.Errorf("admin reads acct/1: %d %s", a.status, a.body)
	}
}

// TestTokenSubjectsThroughTheAPI: POST /v1/tokens takes subject patterns,
// GET /v1/tokens shows them, and hostile or mistaken lists are refused
// with 400 naming the field: bad patterns, too many, too long, and
// patterns on an admin token (which holds every right).
func TestTokenSubjectsThroughTheAPI(t *testing.T) {
	e := newEnv(t, server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	admin := []string{"Authorization", bearer(adminToken)}
	_, secret := createToken(t, e, map[string]any{"identity": "biller", "publish": []string{"billing.>"}, "subjects": []string{"acct/*", "ledger/>"}}, admin...)
	var list struct {
		Tokens []server.Token `json:"tokens"`
	}
	e.do("GET", "/v1/tokens", nil, admin...).json(t, &list)
	for _, tk := range list.Tokens {
		if tk.Identity == "biller" && !slices.Equal(tk.Subjects, []string{"acct/*", "ledger/>"}) {
			t.Errorf("token list: %+v", tk)
		}
	}
	if a := e.do("POST", "/v1/events", map[string]any{"name": "billing.paid", "subject": "rec/1", "data": map[string]any{}},
		"Authorization", bearer(secret)); a.status != http.StatusForbidden {
		t.Errorf("created token publishes outside its subjects: %d %s", a.status, a.body)
	}

	many := make([]string, server.MaxTokenSubjects+1)
	for i := range many {
		many[i] = "s/" + strings.Repeat("x", i%7+1)
	}
	for name, subjects := range map[string][]string{
		"empty":           {""},
		"> not last":      {"acct/>/x"},
		"* in a segment":  {"acct/1*"},
		"> in a segment":  {"acct/x>"},
		"control":         {"acct/\x01"},
		"too long":        {strings.Repeat("a", 501)},
		"too many":        many,
		"empty segment *": {"acct//*/"},
	} {
		a := e.do("POST", "/v1/tokens", map[string]any{"identity": "x", "publish": []string{">"}, "subjects": subjects}, admin...)
		if a.status != http.StatusBadRequest || a.errCode(t).Error.Field != "subjects" {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	// Invalid UTF-8 is refused with the body, before any field is looked at.
	if a := e.do("POST", "/v1/tokens", "{\"identity\":\"x\",\"subjects\":[\"acct/\xff\"]}", admin...); a.status != http.StatusBadRequest {
		t.Errorf("invalid UTF-8: %d %s", a.status, a.body)
	}
	a := e.do("POST", "/v1/tokens", map[string]any{"identity": "x", "admin": true, "subjects": []string{"acct/*"}}, admin...)
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "admin") {
		t.Errorf("admin with subjects: %d %s", a.status, a.body)
	}
}
