package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/api"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"   ", 0},
		{"3", 3 * time.Second},
		{" 3 ", 3 * time.Second},
		{"0", 0},
		{"3600", time.Hour},
		{"3601", api.MaxRetryAfter},
		{"86400", api.MaxRetryAfter},
		{"999999999", api.MaxRetryAfter},
		{"99999999999999999999999999", api.MaxRetryAfter}, // more than an int64
		{"-5", 0},
		{"+5", 0},
		{"1.5", 0},
		{"1e3", 0},
		{"junk", 0},
		{"5s", 0},
		{"Fri, 02 Jan 2026 03:04:15 GMT", 10 * time.Second},
		{"Friday, 02-Jan-26 03:04:15 GMT", 10 * time.Second}, // RFC 850
		{"Fri Jan  2 03:04:15 2026", 10 * time.Second},       // ANSI C
		{"Fri, 02 Jan 2026 03:04:05 GMT", 0},
		{"Fri, 02 Jan 2026 03:04:00 GMT", 0},
		{"Sat, 03 Jan 2026 03:04:05 GMT", api.MaxRetryAfter},
		{"Fri, 02 Jan 2026 25:04:15 GMT", 0},
	}
	for _, c := range cases {
		if got := api.ParseRetryAfter(c.in, now); got != c.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseRetryAfterRoundsDates(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 400e6, time.UTC)
	if got := api.ParseRetryAfter("Fri, 02 Jan 2026 03:04:15 GMT", now); got != 10*time.Second {
		t.Errorf("9.6s rounds to %v, want 10s", got)
	}
}

func TestFormatRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:            "1",
		0:                       "1",
		time.Millisecond:        "1",
		time.Second:             "1",
		1500 * time.Millisecond: "2",
		30 * time.Second:        "30",
		api.MaxRetryAfter:       "3600",
		48 * time.Hour:          "3600",
	} {
		if got := api.FormatRetryAfter(d); got != want {
			t.Errorf("FormatRetryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"", "0", "7", "-1", "3600", "18446744073709551616", "junk",
		"Fri, 02 Jan 2026 03:04:15 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "Mon, 01 Jan 9999 00:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := api.ParseRetryAfter(v, now)
		if d < 0 || d > api.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, out of [0, %v]", v, d, api.MaxRetryAfter)
		}
		if d%time.Second != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, not whole seconds", v, d)
		}
		// What the server writes, the client reads back as written.
		if d > 0 {
			if back := api.ParseRetryAfter(api.FormatRetryAfter(d), now); back != d {
				t.Fatalf("FormatRetryAfter(%v) reads back as %v", d, back)
			}
		}
		// A plain number of seconds within the cap is read exactly.
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n <= uint64(api.MaxRetryAfter/time.Second) && v == strconv.FormatUint(n, 10) {
			if d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v", v, d)
			}
		}
		// An HTTP date in the future within the cap is read to the second.
		if at, err := http.ParseTime(v); err == nil && at.After(now) && at.Sub(now) <= api.MaxRetryAfter {
			if d != at.Sub(now).Round(time.Second) {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %v", v, d, at.Sub(now))
			}
		}
	})
}
