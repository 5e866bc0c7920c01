// Package testwait lets a test wait for a condition that another goroutine,
// a server or a store will make true.
//
// It polls; a test that can observe the thing itself (a channel, a
// sentinel event, [testing/synctest.Wait] inside a bubble) should do that
// instead. Inside a synctest bubble the poll sleeps on the bubble's clock, so
// a condition that only time makes true is reached without real waiting.
package testwait

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Timeout is how long [For] waits before it fails the test. It is a
// ceiling, not the time a condition is expected to take: a loaded machine
// running the race detector may take many times longer than a quiet one.
const Timeout = 30 * time.Second

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
	if !poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// NoError waits until f returns nil, polling it like [For] for at most d.
// On timeout it fails the test naming what it waited for and f's last
// error.
func NoError(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	var last error
	if !poll(d, func() bool { last = f(); return last == nil }) {
		t.Fatalf("timed out after %v waiting for %s: %v", d, what, last)
	}
}

// Until polls cond like [For] for at most d and reports whether it became
// true, without failing the test: for a test that goes on to say what is
// missing.
func Until(d time.Duration, cond func() bool) bool { return poll(d, cond) }

// poll calls cond until it returns true (poll reports true) or d has
// passed (false), pausing 1 ms, then longer, up to 20 ms, between calls.
func poll(d time.Duration, cond func() bool) bool {
	start := time.Now()
	pause := time.Millisecond
	for !cond() {
		if time.Since(start) > d {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
	return true
}

// Blocked waits until at least n goroutines are blocked (on a channel, a
// select, a lock or a condition) with fn on their stack, fn being a
// function name as stack traces print it, e.g. "store/nats.(*Store).Wait".
// It lets a test on the real clock see that a call has reached the point
// where it waits before the test does what should wake it; inside a
// synctest bubble use [testing/synctest.Wait] instead. It fails the test
// like [For].
func Blocked(t testing.TB, n int, fn string) {
	t.Helper()
	For(t, fmt.Sprintf("%d goroutines blocked in %s", n, fn), func() bool { return blockedIn(fn) >= n })
}

func blockedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, stack, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(header, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		switch state {
		case "running", "runnable", "syscall":
			continue
		}
		if strings.Contains(stack, fn+"(") {
			n++
		}
	}
	return n
}
