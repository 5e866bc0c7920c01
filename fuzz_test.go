package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzEventJSON decodes arbitrary bytes as an event: preparing and
// validating it never panics, every rejection is a *ValidationError naming a
// field, and an event that passes encodes and decodes to the same event.
func FuzzEventJSON(f *testing.F) {
	f.Add([]byte(`{"id":"e1","name":"recording.completed","timestamp":"2026-01-01T00:00:00Z","data":{"a":1},"correlation_id":"c","source_plugin":"p"}`))
	f.Add([]byte(`{"name":"a","data":{}}`))
	f.Add([]byte(`{"name":"a.b","data":{"x":[1,2,{"y":null}]},"priority":"critical","metadata":{"k":"v"},"subject":"s/1","version":3}`))
	f.Add([]byte(`{"name":"a","timestamp":"0000-01-01T00:00:00+01:00"}`))
	f.Add([]byte(`{"name":"a","data":[]}`))
	f.Add([]byte(`{"name":"a","data":"{}"}`))
	f.Add([]byte(`{"name":"a","data":null}`))
	f.Add([]byte(`{"name":"A"}`))
	f.Add([]byte(`{"name":"a","priority":"urgent"}`))
	f.Add([]byte(`{"name":"a","id":"has space"}`))
	f.Add([]byte(`{"name":"a","version":-1}`))
	f.Add([]byte(`{"name":"a","data":{"s":"<\u2028&>"}}`))
	f.Add([]byte(`{"name":"a","data":{"a":1} }`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"name":"` + strings.Repeat("a", 201) + `"}`))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return
		}
		_ = e.Validate()
		err := e.Prepare(now)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" || !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Prepare: %v: want a *ValidationError naming a field", err)
			}
			return
		}
		enc, err := json.Marshal(&e)
		if err != nil {
			t.Fatalf("a valid event does not encode: %v (%+v)", err, e)
		}
		var back Event
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("an encoded event does not decode: %v\n%s", err, enc)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("a round-tripped event is invalid: %v\n%s", err, enc)
		}
		enc2, err := json.Marshal(&back)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		// Everything but the data's spelling and the timestamp's location
		// survives as is.
		want := e.Clone()
		want.Data = back.Data
		want.Timestamp = back.Timestamp
		if !e.Timestamp.Equal(back.Timestamp) {
			t.Fatalf("timestamp %v came back as %v", e.Timestamp, back.Timestamp)
		}
		if len(want.Metadata) == 0 {
			want.Metadata = back.Metadata
		}
		if !reflect.DeepEqual(want, &back) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, *want)
		}
		var d1, d2 any
		if json.Unmarshal(e.Data, &d1) != nil || json.Unmarshal(back.Data, &d2) != nil || !reflect.DeepEqual(d1, d2) {
			t.Fatalf("data changed: %s -> %s", e.Data, back.Data)
		}
	})
}

// FuzzMatchName checks MatchName against the definition of patterns,
// segment by segment, for any pattern and name.
func FuzzMatchName(f *testing.F) {
	for _, s := range [][2]string{
		{"recording.completed", "recording.completed"},
		{"recording.*", "recording.completed"},
		{"recording.>", "recording.a.b"},
		{">", "a"},
		{"*", ""},
		{"a.*.c", "a.b.c"},
		{"a..b", "a..b"},
		{"a.>.b", "a.x.b"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := MatchName(pattern, name)
		if want := matchModel(pattern, name); got != want {
			t.Fatalf("MatchName(%q, %q) = %v, model says %v", pattern, name, got, want)
		}
		if ValidatePattern(pattern) == nil && ValidateName(name) == nil && IsLiteralPattern(pattern) && got != (pattern == name) {
			t.Fatalf("literal pattern %q vs %q: %v", pattern, name, got)
		}
	})
}

// matchModel is the pattern definition written plainly: split both on
// dots; ">" as a segment matches one or more remaining segments; "*"
// matches exactly one; anything else matches itself.
func matchModel(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	for i, p := range ps {
		if p == ">" && i == len(ps)-1 {
			return strings.Join(ns[min(i, len(ns)):], ".") != ""
		}
		if i >= len(ns) || (p != "*" && p != ns[i]) {
			return false
		}
	}
	return len(ps) == len(ns)
}

// FuzzValidateName checks ValidateName against the grammar
// ^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$ and the length limit, and that a valid
// name is also a valid literal pattern that matches itself.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "recording.completed", "a.b_c.1", "", "A", "a.", ".a", "a..b", "1a", "a.*", strings.Repeat("a", 200), strings.Repeat("a", 201), "é", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if want := nameModel(name); (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, grammar says valid=%v", name, err, want)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "name" {
				t.Fatalf("ValidateName(%q): %v: want a *ValidationError for name", name, err)
			}
			return
		}
		if perr := ValidatePattern(name); perr != nil {
			t.Fatalf("valid name %q is not a valid pattern: %v", name, perr)
		}
		if !MatchName(name, name) || !MatchName(">", name) {
			t.Fatalf("valid name %q does not match itself or >", name)
		}
	})
}

func nameModel(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i, seg := range strings.Split(name, ".") {
		if seg == "" || (i == 0 && !(seg[0] >= 'a' && seg[0] <= 'z')) {
			return false
		}
		for _, c := range []byte(seg) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

// FuzzParseDuration checks that ParseDuration never panics and that what it
// accepts formats back to the same duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"100ms", "30s", "12h", "30d", "0", "1500", "-5s", "106751d", "106752d", "-1d", "1.5d", "d", "", " 1h ", "1h30m", "+3d", "9223372036854775807", "2562047h47m16.854775807s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; its String %q parses to %v, %v", s, d.Std(), d.String(), back.Std(), err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var j Duration
		if err := json.Unmarshal(b, &j); err != nil || j != d {
			t.Fatalf("JSON round trip of %v via %s: %v, %v", d.Std(), b, j.Std(), err)
		}
	})
}
