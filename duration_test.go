package herald

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100ms", 100 * time.Millisecond, true},
		{"30s", 30 * time.Second, true},
		{"12h", 12 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"0d", 0, true},
		{"+2d", 48 * time.Hour, true},
		{" 5s ", 5 * time.Second, true},
		{"0", 0, true},
		{"1500", 1500, true},
		{"-5s", -5 * time.Second, true},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"", 0, false},
		{"d", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"1d12h", 0, false},
		{"30D", 0, false},
		{"abc", 0, false},
		{"5 s", 0, false},
		{"9999999999999h", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.Std() != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got.Std(), err, tt.want, tt.ok)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{100 * time.Millisecond, "100ms"},
		{90 * time.Minute, "1h30m0s"},
		{24 * time.Hour, "1d"},
		{30 * 24 * time.Hour, "30d"},
		{25 * time.Hour, "25h0m0s"},
		{-24 * time.Hour, "-24h0m0s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d).String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, got, tt.want)
		}
		back, err := ParseDuration(Duration(tt.d).String())
		if err != nil || back.Std() != tt.d {
			t.Errorf("round trip of %v: %v, %v", tt.d, back.Std(), err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	type cfg struct {
		D Duration `json:"d"`
	}
	b, err := json.Marshal(cfg{Duration(30 * 24 * time.Hour)})
	if err != nil || string(b) != `{"d":"30d"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	for in, want := range map[string]time.Duration{
		`{"d":"30d"}`:      30 * 24 * time.Hour,
		`{"d":"1m"}`:       time.Minute,
		`{"d":1000000000}`: time.Second, // time.Duration's own JSON form
		`{"d":null}`:       0,
		`{}`:               0,
	} {
		var c cfg
		if err := json.Unmarshal([]byte(in), &c); err != nil || c.D.Std() != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, c.D.Std(), err, want)
		}
	}
	for _, in := range []string{`{"d":"soon"}`, `{"d":1.5}`, `{"d":true}`, `{"d":[]}`, `{"d":"1.5d"}`} {
		var c cfg
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, c.D.Std())
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var r RetentionRule
	if err := yaml.Unmarshal([]byte("pattern: debug.>\nmax_age: 1d\nmax_count: 10\n"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Pattern != "debug.>" || r.MaxAge.Std() != 24*time.Hour || r.MaxCount != 10 {
		t.Errorf("rule = %+v", r)
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back RetentionRule
	if err := yaml.Unmarshal(out, &back); err != nil || back != r {
		t.Errorf("YAML round trip: %+v, %v (from %s)", back, err, out)
	}
}
