package herald

import (
	"testing"

	"github.com/heraldhq/herald/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
