package server

import (
	"testing"
	"time"
)

func TestHistoryRingKeepsTheLastSamples(t *testing.T) {
	h := newHistory(time.Second, 3)
	for i := range 5 {
		h.add(historySample{head: uint64(i)})
	}
	got := h.samples()
	if len(got) != 3 || got[0].head != 2 || got[2].head != 4 {
		t.Fatalf("samples %+v, want heads 2, 3, 4", got)
	}
}

func TestQuantileInterpolatesWithinABucket(t *testing.T) {
	bounds := []float64{0.01, 0.1, 1}
	a := historySample{count: 10, bounds: bounds, buckets: []uint64{10, 10, 10}}
	// 100 more observations: 50 at most 10 ms, 40 more at most 100 ms,
	// 10 more at most 1 s.
	b := historySample{count: 110, bounds: bounds, buckets: []uint64{60, 100, 110}}
	if p50 := *quantileMs(0.5, a, b); p50 != 10 {
		t.Errorf("p50 = %v ms, want 10 (the 50th of 100 is the last of the first bucket)", p50)
	}
	if p99 := *quantileMs(0.99, a, b); p99 != 910 {
		t.Errorf("p99 = %v ms, want 910 (9 tenths into the (100 ms, 1 s] bucket)", p99)
	}
	if p := *quantileMs(0.7, a, b); p != 55 {
		t.Errorf("p70 = %v ms, want 55 (half way into the (10 ms, 100 ms] bucket)", p)
	}
}
