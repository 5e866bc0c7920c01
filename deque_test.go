package herald

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// insert keeps a deque's order whatever its head, size and growth.
func TestDequeInsert(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var d deque[int]
		var want []int
		for range r.IntN(60) {
			switch op := r.IntN(4); {
			case op == 0 && len(want) > 0:
				if got := d.pop(); got != want[0] {
					t.Fatalf("pop %d, want %d", got, want[0])
				}
				want = want[1:]
			default:
				v, i := r.IntN(100), r.IntN(len(want)+1)
				d.insert(i, v)
				want = slices.Insert(want, i, v)
			}
		}
		got := make([]int, d.len())
		for i := range got {
			got[i] = *d.at(i)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("deque %v, want %v", got, want)
		}
	}
}
