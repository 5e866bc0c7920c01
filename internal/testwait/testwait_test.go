package testwait_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	testwait.For(t, "three increments", func() bool { return n.Load() == 3 })
}

// In a bubble the poll runs on the bubble's clock: a condition that only
// time makes true is met at once, at the virtual instant it becomes true.
func TestWithinUsesTheBubbleClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ready := start.Add(5 * time.Second)
		testwait.Within(t, time.Minute, "five virtual seconds", func() bool { return !time.Now().Before(ready) })
		if el := time.Since(start); el < 5*time.Second || el > 5*time.Second+20*time.Millisecond {
			t.Fatalf("waited %v of virtual time, want 5s plus one poll", el)
		}
	})
}

func TestBlockedSeesAGoroutineWaiting(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		waitForRelease(release)
		close(done)
	}()
	testwait.Blocked(t, 1, "internal/testwait_test.waitForRelease")
	close(release)
	<-done
}

//go:noinline
func waitForRelease(c chan struct{}) { <-c }
