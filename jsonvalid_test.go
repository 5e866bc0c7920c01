package herald

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonValidCases = []string{
	``, ` `, `{}`, ` { } `, `{"a":1}`, `{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`,
	`[]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `"x"`, `"\u00e9\n\"\\\/\b\f\r\t"`, `"\u12"`, `"\u12g4"`, `"\x"`,
	"\"a\x01\"", "\"\xff\xfe\"", `"unterminated`, `true`, `tru`, `truex`, `false`, `null`, `nul`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `2.e3`,
	`{"a":[1,{"b":null}],"c":"d"}`, `{"a":1}{}`, `{"a":1} x`, "{\"a\":1}\n", `[[[[]]]]`, `[[[]]`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"n":` + strings.Repeat("{\"n\":", 9998) + `1` + strings.Repeat("}", 9999),
	`{"n":` + strings.Repeat("{\"n\":", 9999) + `1` + strings.Repeat("}", 10000),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range jsonValidCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonValidCases {
		if len(c) < 200 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	b.SetBytes(int64(len(benchPayload)))
	for range b.N {
		if !validJSON(benchPayload) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkEncodingJSONValid(b *testing.B) {
	b.SetBytes(int64(len(benchPayload)))
	for range b.N {
		if !json.Valid(benchPayload) {
			b.Fatal("invalid")
		}
	}
}
