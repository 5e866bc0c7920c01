package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration whose JSON and YAML form is a string such as
// "100ms", "30s", "12h" or "30d" (days are 24 hours). A bare number is read
// as nanoseconds, for compatibility with time.Duration's own JSON.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as ParseDuration reads it: a whole, positive number of
// days as "30d", anything else as time.Duration.String does ("1h30m0s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// maxDays is the most days a Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// ParseDuration parses a Go duration string ("1h30m"), a whole number of
// days ("30d"), or a bare integer number of nanoseconds.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > maxDays {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 100ms, 30s, 12h or 30d", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Duration(n), nil
	}
	td, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 100ms, 30s, 12h or 30d", s)
	}
	return Duration(td), nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON string in any form ParseDuration accepts, or a
// JSON integer of nanoseconds (time.Duration's own JSON form).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"30s\" or an integer of nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
