package memory_test

import (
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/store/memory"
	"github.com/heraldhq/herald/store/storetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store {
		return memory.New()
	}, storetest.Features{
		NewBounded: func(t *testing.T, n int) herald.Store {
			return memory.New(memory.WithMaxEvents(n))
		},
	})
}
