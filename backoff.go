package herald

import (
	"math/rand/v2"
	"time"
)

// backoffDelay returns how long to wait before retry number retry (1 for
// the first retry): a random duration in [0, min(max, initial·2^(retry-1)))
// ("full jitter"), never less than a microsecond.
func backoffDelay(initial, max time.Duration, retry int) time.Duration {
	ceil := max
	if retry < 1 {
		retry = 1
	}
	if retry <= 62 {
		if d := initial << (retry - 1); d > 0 && d>>(retry-1) == initial && d < max {
			ceil = d
		}
	}
	if ceil <= time.Microsecond {
		return time.Microsecond
	}
	return time.Duration(rand.Int64N(int64(ceil))) + time.Microsecond
}
