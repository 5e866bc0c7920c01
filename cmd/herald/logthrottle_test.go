package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The same failure, logged again and again, is written at most burst
// times a window, then summed up; other lines and other subscriptions
// pass.
func TestThrottledLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(throttled(slog.NewTextHandler(&buf, nil), 3, time.Minute))
		for range 1000 {
			log.Warn("herald: handler failed, will retry", "subscription", "stuck", "error", "connection refused")
		}
		log.Warn("herald: handler failed, will retry", "subscription", "other")
		log.Info("something else")
		if n := strings.Count(buf.String(), "subscription=stuck"); n != 3 {
			t.Fatalf("%d lines of one failure in a window, want 3", n)
		}
		if !strings.Contains(buf.String(), "subscription=other") || !strings.Contains(buf.String(), "something else") {
			t.Fatalf("other lines were dropped:\n%s", buf.String())
		}
		time.Sleep(time.Minute)
		log.Warn("herald: handler failed, will retry", "subscription", "stuck")
		if !strings.Contains(buf.String(), "dropped=997") {
			t.Fatalf("no summary of the dropped lines:\n%s", buf.String())
		}
	})
}
