package model

import (
	"fmt"
	"strings"
)

// MatchName reports whether the event name matches pattern. Patterns are
// dot-separated like names; a segment "*" matches exactly one segment, a
// last segment ">" matches one or more segments, and ">" alone matches every
// name: "recording.completed", "recording.*", "recording.>", ">".
// MatchName does not allocate.
func MatchName(pattern, name string) bool {
	for {
		if pattern == ">" {
			return name != ""
		}
		ps, prest, pmore := strings.Cut(pattern, ".")
		ns, nrest, nmore := strings.Cut(name, ".")
		if ps != "*" && ps != ns {
			return false
		}
		if !pmore || !nmore {
			return pmore == nmore
		}
		pattern, name = prest, nrest
	}
}

// ValidatePattern reports whether pattern is a valid subscription pattern:
// segments of [a-z0-9_] (the first segment starts with a letter), "*" for
// one segment, ">" only as the last segment.
func ValidatePattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("%w: empty pattern", ErrInvalidEvent)
	}
	if len(pattern) > MaxNameLen {
		return fmt.Errorf("%w: pattern longer than %d bytes", ErrInvalidEvent, MaxNameLen)
	}
	segs := strings.Split(pattern, ".")
	for i, s := range segs {
		switch {
		case s == "*":
		case s == ">":
			if i != len(segs)-1 {
				return fmt.Errorf("%w: pattern %q: '>' must be the last segment", ErrInvalidEvent, pattern)
			}
		case !ValidSegment(s, i == 0):
			return fmt.Errorf("%w: pattern %q: segment %q must be [a-z0-9_]+ (the first starting with a letter), '*' or '>'", ErrInvalidEvent, pattern, s)
		}
	}
	return nil
}

// IsLiteralPattern reports whether pattern has no wildcard, so it matches
// exactly one name.
func IsLiteralPattern(pattern string) bool {
	return !strings.ContainsAny(pattern, "*>")
}
