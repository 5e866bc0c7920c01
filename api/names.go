package api

import (
	"fmt"

	"github.com/heraldhq/herald/internal/model"
)

// MaxSubscriptionNameLen is the longest durable or push subscription name,
// in bytes.
const MaxSubscriptionNameLen = 200

// ValidateSubscriptionName reports whether name is a valid name for a
// durable subscription or a push subscription: 1 to MaxSubscriptionNameLen
// characters of [A-Za-z0-9_.-]. The name is a path segment of the HTTP API
// and a key in every store, so nothing else is allowed. The error is a
// *ValidationError for field "name" wrapping ErrInvalidEvent.
func ValidateSubscriptionName(name string) error {
	if name == "" || len(name) > MaxSubscriptionNameLen {
		return subNameError(name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return subNameError(name)
		}
	}
	return nil
}

func subNameError(name string) error {
	return &ValidationError{Field: "name", Err: ErrInvalidEvent,
		Reason: fmt.Sprintf("subscription name %.40q: want 1 to %d characters of [A-Za-z0-9_.-]", name, MaxSubscriptionNameLen)}
}

// MatchName reports whether the event name matches pattern. Patterns are
// dot-separated like names; a segment "*" matches exactly one segment, a
// last segment ">" matches one or more segments, and ">" alone matches
// every name: "recording.completed", "recording.*", "recording.>", ">".
func MatchName(pattern, name string) bool { return model.MatchName(pattern, name) }

// ValidatePattern reports whether pattern is a valid subscription pattern:
// segments of [a-z0-9_] (the first segment starts with a letter), "*" for
// one segment, ">" only as the last segment. The error wraps
// ErrInvalidEvent.
func ValidatePattern(pattern string) error { return model.ValidatePattern(pattern) }

// IsLiteralPattern reports whether pattern has no wildcard, so it matches
// exactly one name.
func IsLiteralPattern(pattern string) bool { return model.IsLiteralPattern(pattern) }

// MaxTokenSubjects is the most subject patterns a token may hold.
const MaxTokenSubjects = 100

// MatchSubject reports whether subject matches the subject pattern.
// Subject patterns are slash-separated like subjects; a segment "*"
// matches exactly one segment, a last segment ">" matches one or more
// segments, and ">" alone matches every subject: "acct/1", "acct/*",
// "acct/>", ">".
func MatchSubject(pattern, subject string) bool { return model.MatchSubject(pattern, subject) }

// ValidateSubjectPattern reports whether pattern is a valid subject
// pattern: 1 to MaxSubjectLen bytes of UTF-8 without control characters,
// non-empty slash-separated segments, "*" and ">" alone as a segment and
// ">" only last. The error wraps ErrInvalidEvent.
func ValidateSubjectPattern(pattern string) error { return model.ValidateSubjectPattern(pattern) }
