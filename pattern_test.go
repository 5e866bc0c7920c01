package herald

import (
	"errors"
	"testing"
	"time"
)

func TestMatchName(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"recording.completed", "recording.completed", true},
		{"recording.completed", "recording.started", false},
		{"recording.completed", "recording", false},
		{"recording.completed", "recording.completed.x", false},
		{"recording", "recording.completed", false},
		{"recording.*", "recording.completed", true},
		{"recording.*", "recording", false},
		{"recording.*", "recording.completed.now", false},
		{"recording.*", "transcription.completed", false},
		{"*.completed", "recording.completed", true},
		{"*.completed", "recording.started", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"recording.>", "recording.completed", true},
		{"recording.>", "recording.completed.now", true},
		{"recording.>", "recording", false},
		{"recording.>", "recordings.completed", false},
		{"a.*.>", "a.b.c", true},
		{"a.*.>", "a.b", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{">", "", false},
		{"a", "ab", false},
		{"ab", "a", false},
		{"a.b", "a.bc", false},
	}
	for _, tt := range tests {
		if got := MatchName(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
		if IsLiteralPattern(tt.pattern) && tt.want != (tt.pattern == tt.name) {
			t.Errorf("literal pattern %q matches %q otherwise than equality", tt.pattern, tt.name)
		}
	}
}

func TestMatchNameDoesNotAllocate(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		MatchName("recording.*.>", "recording.completed.local.v2")
	})
	if n != 0 {
		t.Errorf("MatchName allocates %v times", n)
	}
}

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"recording.completed", true},
		{"recording.*", true},
		{"recording.>", true},
		{"*.completed", true},
		{"*", true},
		{">", true},
		{"a.*.>", true},
		{"", false},
		{"a.>.b", false},
		{">.a", false},
		{"a.b*", false},
		{"a.**", false},
		{"a..b", false},
		{"A.b", false},
		{"1a", false},
		{"a.", false},
		{".a", false},
		{"a b", false},
		{"a.#", false},
		{string(make([]byte, MaxNameLen+1)), false},
	}
	for _, tt := range tests {
		err := ValidatePattern(tt.pattern)
		if (err == nil) != tt.ok {
			t.Errorf("ValidatePattern(%q) = %v, want ok=%v", tt.pattern, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("ValidatePattern(%q) error %v does not wrap ErrInvalidEvent", tt.pattern, err)
		}
	}
}

func TestIsLiteralPattern(t *testing.T) {
	for p, want := range map[string]bool{"a.b": true, "a": true, "a.*": false, "a.>": false, ">": false, "*": false} {
		if got := IsLiteralPattern(p); got != want {
			t.Errorf("IsLiteralPattern(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	e := &Event{Name: "recording.completed", CorrelationID: "c1", Subject: "rec/1", SourcePlugin: "p1",
		Timestamp: mustTime("2026-01-01T12:00:00Z")}
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"name", Filter{Name: "recording.*"}, true},
		{"other name", Filter{Name: "transcription.>"}, false},
		{"correlation", Filter{CorrelationID: "c1"}, true},
		{"other correlation", Filter{CorrelationID: "c2"}, false},
		{"subject", Filter{Subject: "rec/1"}, true},
		{"other subject", Filter{Subject: "rec/2"}, false},
		{"source", Filter{SourcePlugin: "p1"}, true},
		{"other source", Filter{SourcePlugin: "p2"}, false},
		{"since inclusive", Filter{Since: e.Timestamp}, true},
		{"since later", Filter{Since: e.Timestamp.Add(1)}, false},
		{"until exclusive", Filter{Until: e.Timestamp}, false},
		{"until later", Filter{Until: e.Timestamp.Add(1)}, true},
		{"all", Filter{Name: ">", CorrelationID: "c1", Subject: "rec/1", SourcePlugin: "p1", Since: e.Timestamp, Until: e.Timestamp.Add(1), Limit: 1}, true},
	}
	for _, tt := range tests {
		if got := tt.f.Match(e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
