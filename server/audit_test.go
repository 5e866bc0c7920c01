package server_test

import (
	"errors"
	"github.com/heraldhq/herald/internal/testlog"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald/server"
)

// failingWriter fails every write once broken is set: a full disk.
type failingWriter struct {
	ok     testlog.Buffer
	broken atomic.Bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return 0, errors.New("no space left on device")
	}
	return w.ok.Write(p)
}

// An admin action whose audit record cannot be written is not done: 503.
func TestAdminActionFailsWithoutAudit(t *testing.T) {
	aw := &failingWriter{}
	e := newEnv(t, server.WithAuditLogger(slog.New(slog.NewJSONHandler(aw, nil))),
		server.WithTokens([]server.Token{{Identity: "ops", Hash: server.HashToken(adminToken), Admin: true}}))
	auth := bearer(adminToken)
	aw.broken.Store(true)
	a := e.do("POST", "/v1/tokens", map[string]any{"identity": "new"}, "Authorization", auth)
	if a.status != 503 {
		t.Fatalf("token create with a broken audit log answered %d: %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/dlq/redrive", nil, "Authorization", auth); a.status != 503 {
		t.Fatalf("redrive with a broken audit log answered %d", a.status)
	}
	aw.broken.Store(false)
	a = e.do("GET", "/v1/tokens", nil, "Authorization", auth)
	if strings.Contains(string(a.body), `"new"`) {
		t.Fatalf("the token was created although its audit record was not written: %s", a.body)
	}
}

// Fields the caller chooses are cut short in the audit log: a 60 KB path
// makes a record of a few hundred bytes.
func TestAuditFieldsTruncated(t *testing.T) {
	e, audit := authEnv(t)
	e.do("GET", "/v1/events/"+strings.Repeat("a", 60<<10), nil)
	log := audit.String()
	if !strings.Contains(log, "request denied") {
		t.Fatalf("no denial recorded: %.300s", log)
	}
	if len(log) > 2048 {
		t.Fatalf("a 60 KB path made a %d-byte audit record", len(log))
	}
}
