package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

func TestPayload(t *testing.T) {
	for _, seq := range []int{0, 7, 1_234_567} {
		p := makePayload(seq, 1_795_000_000_123_456_789)
		if len(p) != payloadSize {
			t.Fatalf("payload of %d bytes, want %d", len(p), payloadSize)
		}
		var v struct {
			Seq int   `json:"seq"`
			T   int64 `json:"t"`
		}
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatalf("payload is not JSON: %v", err)
		}
		if v.Seq != seq || v.T != 1_795_000_000_123_456_789 {
			t.Fatalf("payload carries %+v", v)
		}
		got, err := payloadTime(p)
		if err != nil || got != v.T {
			t.Fatalf("payloadTime = %d, %v; want %d", got, err, v.T)
		}
	}
	if _, err := payloadTime([]byte(`{"seq":1}`)); err == nil {
		t.Fatal("payloadTime accepted a payload without a time")
	}
}

func TestMedian(t *testing.T) {
	ss := []sample{{rate: 3}, {rate: 1}, {rate: 2}}
	if m := *median(ss, func(s sample) float64 { return s.rate }); m != 2 {
		t.Fatalf("median of 3 = %v, want 2", m)
	}
	ss = append(ss, sample{rate: 10})
	if m := *median(ss, func(s sample) float64 { return s.rate }); m != 2.5 {
		t.Fatalf("median of 4 = %v, want 2.5", m)
	}
}

func f(v float64) *float64 { return &v }

func TestReport(t *testing.T) {
	scs := []*scenario{{
		name: "inproc-1to1",
		systems: []*system{
			{name: "herald"}, {name: "watermill-gochannel"}, {name: "go-channel"},
		},
		compare: []comparison{
			{herald: "herald", anchor: "watermill-gochannel", min: 20},
			{herald: "herald", anchor: "go-channel"},
		},
	}}
	rs := []result{
		{Scenario: "inproc-1to1", System: "herald", EventsPerSec: f(1e6), PeakRSSMB: f(30)},
		{Scenario: "inproc-1to1", System: "watermill-gochannel", EventsPerSec: f(1e5), PeakRSSMB: f(600)},
		{Scenario: "inproc-1to1", System: "go-channel", note: "not available: test"},
	}
	rat := computeRatios(scs, rs)
	if len(rat) != 2 || !rat[0].ok || rat[0].value != 10 || rat[0].met() || rat[1].ok {
		t.Fatalf("ratios %+v", rat)
	}
	var out bytes.Buffer
	printTable(&out, scs, rs)
	for _, want := range []string{"10×", "MISSED", "not available: test", "0.05×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	var svg bytes.Buffer
	writeSVG(&svg, scs, rs, "quick")
	chart := svg.String()
	d := xml.NewDecoder(strings.NewReader(chart))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart is not well-formed XML: %v", err)
			}
			break
		}
	}
	if !strings.Contains(chart, "not measured") {
		t.Error("chart does not mark the comparison without figures")
	}
}
