package nats

import (
	"fmt"
	"testing"
)

// The filter of a batch never misses an id it holds, and lets through
// about 1 % of the ids it does not (a batch read for nothing).
func TestBloom(t *testing.T) {
	const n = 1000
	b := newBloom(n)
	for i := range n {
		bloomAdd(b, fmt.Sprintf("e:%d", i))
	}
	for i := range n {
		if !bloomHas(b, fmt.Sprintf("e:%d", i)) {
			t.Fatalf("id %d added but not found", i)
		}
	}
	passed := 0
	for i := range 10 * n {
		if bloomHas(b, fmt.Sprintf("x:%d", i)) {
			passed++
		}
	}
	if rate := float64(passed) / (10 * n); rate > 0.03 {
		t.Errorf("false positive rate %.3f, want about 0.01", rate)
	}
	if !bloomHas(nil, "anything") {
		t.Error("an empty filter must let everything through")
	}
}

// FuzzBloom: a filter of any bytes answers without panicking, and one
// built from keys finds each of them.
func FuzzBloom(f *testing.F) {
	f.Add([]byte{0xff, 0x01}, "c:chain-1", "e:01a2")
	f.Fuzz(func(t *testing.T, raw []byte, a, b string) {
		_ = bloomHas(raw, a)
		fl := newBloom(2)
		bloomAdd(fl, a)
		bloomAdd(fl, b)
		if !bloomHas(fl, a) || !bloomHas(fl, b) {
			t.Fatalf("keys %q and %q added but not both found", a, b)
		}
	})
}
