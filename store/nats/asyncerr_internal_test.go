package nats

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/testlog"
)

// TestAsyncErrorsGoToTheLogger pins that the connection's asynchronous
// errors reach the store's logger: with nats.go's default they were printed
// on standard error ("write: broken pipe on connection [N]" during a node's
// restart), outside herald serve's JSON log.
func TestAsyncErrorsGoToTheLogger(t *testing.T) {
	var out testlog.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	s, err := OpenEmbedded(t.Context(), EmbeddedConfig{Dir: t.TempDir()}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cb := s.nc.Opts.AsyncErrorCB
	if cb == nil {
		t.Fatal("the store's connection has no asynchronous error handler: nats.go prints its errors on standard error")
	}
	cb(s.nc, nil, errors.New("write: broken pipe on connection [7]"))
	if got := out.String(); !strings.Contains(got, `"msg":"nats store: connection error"`) || !strings.Contains(got, "broken pipe") {
		t.Fatalf("the logger got %q", got)
	}
}
