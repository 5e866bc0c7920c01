package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// With maxSessions sessions live, a login is refused with 503 and
// Retry-After; once sessions have expired, the next login sweeps them and
// succeeds.
func TestSessionsCapped(t *testing.T) {
	var ss sessions
	ss.m = map[string]*session{}
	live := time.Now().Add(time.Hour)
	for i := range maxSessions {
		ss.m[fmt.Sprint("cookie-", i)] = &session{tokenHash: fmt.Sprint("token-", i), expires: live}
	}
	_, _, err := ss.create("token-new")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.RetryAfter <= 0 {
		t.Fatalf("a login beyond %d live sessions: %v, want 503 with Retry-After", maxSessions, err)
	}
	for i := range 100 {
		ss.m[fmt.Sprint("cookie-", i)].expires = time.Now().Add(-time.Second)
	}
	if _, s, err := ss.create("token-new"); err != nil || s == nil {
		t.Fatalf("a login once 100 sessions expired: %v", err)
	}
	if n := len(ss.m); n != maxSessions-100+1 {
		t.Fatalf("%d sessions after the sweep, want %d", n, maxSessions-100+1)
	}
}
