package leakcheck

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A goroutine that ends a while after the check starts is waited for.
func TestSettleWaitsForAGoroutineEnding(t *testing.T) {
	opts := goleak.IgnoreCurrent()
	release := make(chan struct{})
	go func() { <-release }()
	time.AfterFunc(time.Second, func() { close(release) })
	if err := settle(Timeout, opts); err != nil {
		t.Fatalf("a goroutine that ended after a second was reported: %v", err)
	}
}

// A goroutine that never ends is reported once the wait is over.
func TestSettleReportsAGoroutineLeftRunning(t *testing.T) {
	opts := goleak.IgnoreCurrent()
	release := make(chan struct{})
	defer close(release)
	go blockUntil(release)
	err := settle(300*time.Millisecond, opts)
	if err == nil || !strings.Contains(err.Error(), "blockUntil") {
		t.Fatalf("a goroutine left running: %v, want it reported", err)
	}
}

//go:noinline
func blockUntil(c chan struct{}) { <-c }
