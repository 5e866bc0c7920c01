package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/heraldhq/herald"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func TestPatternCovers(t *testing.T) {
	cases := []struct {
		allowed, req string
		want         bool
	}{
		{">", ">", true},
		{">", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a.*", true},
		{"a.>", "a.>", true},
		{"a.>", ">", false},
		{"a.>", "a", false},
		{"a.*", "a.b", true},
		{"a.*", "a.*", true},
		{"a.*", "a.>", false},
		{"a.*", "a.b.c", false},
		{"a.b", "a.b", true},
		{"a.b", "a.*", false},
		{"*.b", "x.b", true},
		{"a.b", "a.b.c", false},
	}
	for _, c := range cases {
		if got := patternCovers(c.allowed, c.req); got != c.want {
			t.Errorf("patternCovers(%q, %q) = %v, want %v", c.allowed, c.req, got, c.want)
		}
	}
}

func TestCEHeaderValue(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "a b": "a%20b", `q"%`: "q%22%25", "é": "%C3%A9"} {
		if got := ceHeaderValue(in); got != want {
			t.Errorf("ceHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// patternCovers is sound: when it says allowed covers req, every name req
// matches is matched by allowed; and it is complete for literal names.
func TestPatternCoversProperty(t *testing.T) {
	seg := rapid.SampledFrom([]string{"a", "b", "c"})
	pattern := rapid.Custom(func(t *rapid.T) string {
		n := rapid.IntRange(1, 4).Draw(t, "n")
		parts := make([]string, n)
		for i := range parts {
			parts[i] = rapid.SampledFrom([]string{"a", "b", "*"}).Draw(t, "seg")
		}
		if rapid.Bool().Draw(t, "tail") {
			parts[n-1] = ">"
		}
		return strings.Join(parts, ".")
	})
	name := rapid.Custom(func(t *rapid.T) string {
		return strings.Join(rapid.SliceOfN(seg, 1, 5).Draw(t, "segs"), ".")
	})
	rapid.Check(t, func(t *rapid.T) {
		allowed, req := pattern.Draw(t, "allowed"), pattern.Draw(t, "req")
		n := name.Draw(t, "name")
		if patternCovers(allowed, req) && herald.MatchName(req, n) && !herald.MatchName(allowed, n) {
			t.Fatalf("%q covers %q, but %q matches only the second", allowed, req, n)
		}
		if patternCovers(allowed, n) != herald.MatchName(allowed, n) {
			t.Fatalf("patternCovers(%q, literal %q) disagrees with MatchName", allowed, n)
		}
	})
}

func TestErrorsHideInternals(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("sqlite: get event: SELECT body FROM events: %w", herald.ErrNotFound),
		fmt.Errorf("open /var/lib/herald/herald.db: %w", herald.ErrConflict),
		fmt.Errorf("nats: timeout: %w", herald.ErrBackpressure),
		errors.New("store.go:42: something broke"),
	} {
		ae := toAPIError(err)
		if looksInternal(ae.Message) || strings.Contains(ae.Message, "/var/") {
			t.Errorf("%v answered %q", err, ae.Message)
		}
	}
	if ae := toAPIError(fmt.Errorf("durable subscription \"x\": %w", herald.ErrNotFound)); !strings.Contains(ae.Message, "durable subscription") {
		t.Errorf("a clean message was replaced: %q", ae.Message)
	}
}
