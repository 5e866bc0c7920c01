package nats

import (
	"math/rand/v2"
	"testing"
)

// indexedSet against a map of the same positions: added in random order,
// with duplicates, then forgotten from below.
func TestIndexedSet(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var x indexedSet
		model := map[uint64]bool{}
		for range 500 {
			p := 1 + rng.Uint64N(300)
			x.add(p)
			model[p] = true
		}
		check := func(floor uint64) {
			t.Helper()
			for i, r := range x.ranges {
				if r.lo > r.hi || i > 0 && x.ranges[i-1].hi+1 >= r.lo {
					t.Fatalf("seed %d: ranges not sorted, disjoint and apart: %v", seed, x.ranges)
				}
			}
			for p := uint64(0); p <= 310; p++ {
				want := model[p] && p > floor
				if got := x.has(p); got != want {
					t.Fatalf("seed %d: has(%d) = %v, want %v", seed, p, got, want)
				}
				m := p
				for model[m] && m > floor {
					m++
				}
				if got := x.firstMissing(p); got != m {
					t.Fatalf("seed %d: firstMissing(%d) = %d, want %d", seed, p, got, m)
				}
			}
		}
		check(0)
		floor := rng.Uint64N(300)
		x.forget(floor)
		check(floor)
	}
}

// The set forgets everything rather than grow beyond maxIndexedRanges.
func TestIndexedSetBounded(t *testing.T) {
	var x indexedSet
	for p := uint64(1); p <= 2*(maxIndexedRanges+1); p += 2 {
		x.add(p)
	}
	if len(x.ranges) > maxIndexedRanges {
		t.Fatalf("%d ranges, bound %d", len(x.ranges), maxIndexedRanges)
	}
}
