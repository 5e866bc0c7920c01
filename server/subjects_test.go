package server_test

import (
	"net/http"
	"testing"

	"github.com/heraldhq/herald/api"
)

func TestSubjectVersions(t *testing.T) {
	e, _ := authEnv(t)
	admin := []string{"Authorization", bearer(adminToken)}
	rec := []string{"Authorization", bearer(recorderToken)}
	ev := func(name, subject string) map[string]any {
		return map[string]any{"name": name, "subject": subject, "data": map[string]any{}}
	}

	// A subject never written is at version 0.
	none := strict[api.SubjectInfo](t, "an empty subject", e.do("GET", "/v1/subjects/order%2F1", nil, admin...), http.StatusOK)
	if none != (api.SubjectInfo{Subject: "order/1"}) {
		t.Fatalf("empty subject: %+v", none)
	}

	// The publish answer gives each new event's subject version, batches
	// mixing subjects included.
	first := strict[api.PublishAnswer](t, "publish", e.do("POST", "/v1/events", []any{
		ev("order.created", "order/1"), ev("order.noted", ""), ev("order.created", "order/2"), ev("order.paid", "order/1"),
	}, admin...), http.StatusCreated)
	want := []uint64{1, 0, 1, 2}
	for i, r := range first.Events {
		if r.SubjectVersion != want[i] {
			t.Fatalf("event %d: subject_version %d, want %d (%+v)", i, r.SubjectVersion, want[i], first.Events)
		}
	}
	// A conditional publish: the versions follow the expected one.
	cond := strict[api.PublishAnswer](t, "conditional publish", e.do("POST", "/v1/events", []any{
		ev("order.shipped", "order/1"), ev("order.closed", "order/1"),
	}, append(admin, "Herald-Expected-Version", "2")...), http.StatusCreated)
	if cond.Events[0].SubjectVersion != 3 || cond.Events[1].SubjectVersion != 4 {
		t.Fatalf("conditional publish: %+v", cond.Events)
	}
	// A duplicate has none.
	dup := strict[api.PublishAnswer](t, "duplicate", e.do("POST", "/v1/events",
		map[string]any{"id": first.Events[0].ID, "name": "order.created", "subject": "order/1", "data": map[string]any{}}, admin...), http.StatusOK)
	if !dup.Events[0].Duplicate || dup.Events[0].SubjectVersion != 0 {
		t.Fatalf("duplicate: %+v", dup.Events)
	}

	// The 409 carries the current version as a field.
	stale := strict[api.ErrorBody](t, "stale", e.do("POST", "/v1/events", ev("order.paid", "order/1"),
		append(admin, "Herald-Expected-Version", "1")...), http.StatusConflict)
	if stale.Error.Code != api.CodeConflict || stale.Error.CurrentVersion == nil || *stale.Error.CurrentVersion != 4 {
		t.Fatalf("409: %+v", stale.Error)
	}

	// GET shows the version and where the subject's events are.
	got := strict[api.SubjectInfo](t, "GET subject", e.do("GET", "/v1/subjects/order%2F1", nil, admin...), http.StatusOK)
	wantInfo := api.SubjectInfo{Subject: "order/1", Version: 4, FirstPosition: first.Events[0].Position, LastPosition: cond.Events[1].Position}
	if got != wantInfo {
		t.Fatalf("GET subject: %+v, want %+v", got, wantInfo)
	}

	// A token that may not read every event of the subject is not shown
	// its version (it counts events the token may not see); on a subject
	// of its own events it is.
	e.publish(ev("recording.done", "order/1"), rec...)
	if a := e.do("GET", "/v1/subjects/order%2F1", nil, rec...); a.status != http.StatusForbidden {
		t.Fatalf("restricted token on a subject it may not read: %d %s", a.status, a.body)
	}
	own := e.publish(ev("recording.done", "recording/1"), rec...)
	mine := strict[api.SubjectInfo](t, "GET subject (own)", e.do("GET", "/v1/subjects/recording%2F1", nil, rec...), http.StatusOK)
	if mine != (api.SubjectInfo{Subject: "recording/1", Version: 1, FirstPosition: own.Events[0].Position, LastPosition: own.Events[0].Position}) {
		t.Fatalf("restricted token on its own subject: %+v", mine)
	}
	if a := e.do("GET", "/v1/subjects/order%2F1", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", a.status)
	}
}
