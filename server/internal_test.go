package server

import (
	"bytes"
	"io"
	"testing"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func TestPatternCovers(t *testing.T) {
	cases := []struct {
		allowed, req string
		want         bool
	}{
		{">", ">", true},
		{">", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a.*", true},
		{"a.>", "a.>", true},
		{"a.>", ">", false},
		{"a.>", "a", false},
		{"a.*", "a.b", true},
		{"a.*", "a.*", true},
		{"a.*", "a.>", false},
		{"a.*", "a.b.c", false},
		{"a.b", "a.b", true},
		{"a.b", "a.*", false},
		{"*.b", "x.b", true},
		{"a.b", "a.b.c", false},
	}
	for _, c := range cases {
		if got := patternCovers(c.allowed, c.req); got != c.want {
			t.Errorf("patternCovers(%q, %q) = %v, want %v", c.allowed, c.req, got, c.want)
		}
	}
}

func TestCEHeaderValue(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "a b": "a%20b", `q"%`: "q%22%25", "é": "%C3%A9"} {
		if got := ceHeaderValue(in); got != want {
			t.Errorf("ceHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDialControlRefusesLinkLocal(t *testing.T) {
	for addr, refused := range map[string]bool{
		"169.254.169.254:80": true, "[fe80::1]:80": true, "0.0.0.0:80": true, "224.0.0.1:80": true,
		"127.0.0.1:9000": false, "10.1.2.3:443": false, "[::1]:80": false,
	} {
		if err := dialControl("tcp", addr, nil); (err != nil) != refused {
			t.Errorf("dialControl(%s) = %v", addr, err)
		}
	}
}
