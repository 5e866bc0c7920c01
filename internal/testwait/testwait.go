// Package testwait lets a test wait for a condition that another goroutine,
// a server or a store will make true.
//
// It polls; a test that can observe the thing itself (a channel, a
// sentinel event, [testing/synctest.Wait] inside a bubble) should do that
// instead. Inside a synctest bubble the poll sleeps on the bubble's clock, so
// a condition that only time makes true is reached without real waiting.
package testwait

import (
	"testing"
	"time"
)

// Timeout is how long [For] waits before it fails the test.
const Timeout = 15 * time.Second

// For waits until cond returns true, polling it from the calling goroutine.
// After [Timeout] it fails the test with t.Fatalf, naming what it waited
// for. It must be called from the goroutine running the test.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within is [For] with a deadline of d instead of [Timeout].
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	pause := time.Millisecond
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
