package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter is the longest wait ParseRetryAfter returns. A server or a
// webhook endpoint that asks for more (in seconds or as a date) is taken to
// mean an hour: herald's own server never asks for more than a minute, and
// a client or a webhook delivery should not park itself for days on one
// answer. Callers apply their own, shorter bounds on top (a webhook
// delivery waits at most a minute before it gives its attempt back).
const MaxRetryAfter = time.Hour

// ParseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// delay seconds ("120") or an HTTP date, taken relative to now and rounded
// to the second. It returns 0 for an empty, malformed, negative or past
// value, and at most MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if allDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // more digits than an int64 holds: huge
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// FormatRetryAfter returns the Retry-After value of a wait of d: whole
// seconds, rounded up, at least 1 and at most MaxRetryAfter.
func FormatRetryAfter(d time.Duration) string {
	d = min(max(d, time.Second), MaxRetryAfter)
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
