package model

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MatchName reports whether the event name matches pattern. Patterns are
// dot-separated like names; a segment "*" matches exactly one segment, a
// last segment ">" matches one or more segments, and ">" alone matches every
// name: "recording.completed", "recording.*", "recording.>", ">".
// MatchName does not allocate.
func MatchName(pattern, name string) bool { return matchSegments(pattern, name, ".") }

// matchSegments matches s against pattern, both made of segments separated
// by sep: "*" matches exactly one segment, a last ">" one or more.
func matchSegments(pattern, s, sep string) bool {
	for {
		if pattern == ">" {
			return s != ""
		}
		ps, prest, pmore := strings.Cut(pattern, sep)
		ss, srest, smore := strings.Cut(s, sep)
		if ps != "*" && ps != ss {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, s = prest, srest
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

// MatchSubject reports whether subject matches the subject pattern.
// Subject patterns are slash-separated like subjects ("acct/1"), and match
// as name patterns do: a segment "*" matches exactly one segment, a last
// segment ">" matches one or more segments, and ">" alone matches every
// subject: "acct/1", "acct/*", "acct/>", ">". MatchSubject does not
// allocate.
func MatchSubject(pattern, subject string) bool { return matchSegments(pattern, subject, "/") }

// ValidateSubjectPattern reports whether pattern is a valid subject
// pattern (see MatchSubject): 1 to MaxSubjectLen bytes of valid UTF-8
// without control characters, in non-empty slash-separated segments, where
// "*" and ">" stand alone as a segment and ">" only as the last one.
func ValidateSubjectPattern(pattern string) error {
	switch {
	case pattern == "":
		return fmt.Errorf("%w: empty subject pattern", ErrInvalidEvent)
	case len(pattern) > MaxSubjectLen:
		return fmt.Errorf("%w: subject pattern longer than %d bytes", ErrInvalidEvent, MaxSubjectLen)
	case !utf8.ValidString(pattern):
		return fmt.Errorf("%w: subject pattern %.40q is not valid UTF-8", ErrInvalidEvent, pattern)
	}
	for _, r := range pattern {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Errorf("%w: subject pattern %.40q holds a control character", ErrInvalidEvent, pattern)
		}
	}
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		switch {
		case s == "":
			return fmt.Errorf("%w: subject pattern %.40q has an empty segment", ErrInvalidEvent, pattern)
		case s == ">" && i != len(segs)-1:
			return fmt.Errorf("%w: subject pattern %.40q: '>' must be the last segment", ErrInvalidEvent, pattern)
		case s != "*" && s != ">" && strings.ContainsAny(s, "*>"):
			return fmt.Errorf("%w: subject pattern %.40q: '*' and '>' stand alone as a segment (acct/* is one segment, acct/> one or more)",
				ErrInvalidEvent, pattern)
		}
	}
	return nil
}
