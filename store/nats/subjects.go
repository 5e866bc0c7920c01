package nats

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Event subjects have the form
//
//	<ns>.ev.<partition>.<subject token>.<name tokens>
//
// The event name's dots are subject tokens, so name patterns map to subject
// filters ("recording.*" → "<ns>.ev.*.*.recording.*"). The subject token
// stands for the event's Subject (see subjectToken), so one herald subject
// is a literal subject prefix: its version is the number of messages under
// "<ns>.ev.<p>.<tok>.>" and its last position the last of them. The
// partition (a hash of the subject, or of the id for events without one)
// lets shared consumers keep per-subject order across processes.

// tokenRaw reports whether s can stand as itself in a subject token or a KV
// key token: [A-Za-z0-9_-]+ (no dots, no '=').
func tokenRaw(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// encodeToken maps any string to one subject (and KV key) token, injectively:
// itself when it is made of [A-Za-z0-9_-] only, otherwise '=' followed by its
// unpadded base64url form. Raw tokens never contain '=', encoded ones
// always start with it.
func encodeToken(s string) string {
	if tokenRaw(s) {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeToken reverses encodeToken.
func decodeToken(t string) (string, bool) {
	if !strings.HasPrefix(t, "=") {
		return t, tokenRaw(t)
	}
	b, err := base64.RawURLEncoding.DecodeString(t[1:])
	if err != nil {
		return "", false
	}
	return string(b), true
}

// maxRawSubject is the longest subject that is spelled out (base64url) in
// its token; longer ones are hashed.
const maxRawSubject = 64

// subjectToken is the token of an event subject: "_" for none, "s" plus the
// base64url form for subjects up to maxRawSubject bytes, "h" plus 144 bits of
// its SHA-256 otherwise. Readers compare the Subject field itself, so a hash
// collision could only make SubjectVersion count the two subjects together
// (at 2^-72 odds for a billion subjects).
func subjectToken(subject string) string {
	if subject == "" {
		return "_"
	}
	if len(subject) <= maxRawSubject {
		return "s" + base64.RawURLEncoding.EncodeToString([]byte(subject))
	}
	sum := sha256.Sum256([]byte(subject))
	return "h" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// subjectOfToken reverses subjectToken where it can: ok is false for a
// hashed subject (too long to be spelled out) or a token it did not make.
func subjectOfToken(tok string) (subject string, ok bool) {
	if tok == "_" {
		return "", true
	}
	raw, spelled := strings.CutPrefix(tok, "s")
	if !spelled {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	return string(b), err == nil
}

// partitionOf returns the partition of an event: from its subject when it
// has one (so a subject stays in one partition), else from its id.
func partitionOf(subject, id string, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	key := subject
	if key == "" {
		key = id
	}
	return int(fnv32a(key) % uint32(partitions))
}

// fnv32a is the 32-bit FNV-1a hash of s (hash/fnv's New32a), without
// allocating.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// subjects builds the subjects and filters of one store namespace.
type subjects struct {
	ns         string // e.g. "herald"
	partitions int
}

func (s subjects) all() string { return s.ns + ".ev.>" }

func (s subjects) event(name, subject, id string) string {
	p := partitionOf(subject, id, s.partitions)
	return s.ns + ".ev." + strconv.Itoa(p) + "." + subjectToken(subject) + "." + name
}

// ofSubject is the filter of every event of one herald subject.
func (s subjects) ofSubject(subject string) string {
	p := partitionOf(subject, "", s.partitions)
	return s.ns + ".ev." + strconv.Itoa(p) + "." + subjectToken(subject) + ".>"
}

// filter is the subject filter for a name pattern ("" for every name) and
// an optional subject.
func (s subjects) filter(pattern, subject string) string {
	if pattern == "" {
		pattern = ">"
	}
	if subject == "" {
		return s.ns + ".ev.*.*." + pattern
	}
	p := partitionOf(subject, "", s.partitions)
	return s.ns + ".ev." + strconv.Itoa(p) + "." + subjectToken(subject) + "." + pattern
}

// partitionFilter is the filter of one partition's events matching pattern.
func (s subjects) partitionFilter(p int, pattern string) string {
	if pattern == "" {
		pattern = ">"
	}
	return s.ns + ".ev." + strconv.Itoa(p) + ".*." + pattern
}
