package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var ts *testServer // needs no server
	r := ts.run(t, "version").ok(t)
	if !strings.HasPrefix(r.stdout, "herald ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version said %q", r.stdout)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-27T20:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := buildVersion(info, true), "herald v1.2.3 (0123456789ab+dirty, 2026-11-27T20:00:00Z) go1.26.8"; got != want {
		t.Errorf("buildVersion = %q, want %q", got, want)
	}
	if got := buildVersion(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true); got != "herald devel go1.26.8" {
		t.Errorf("devel build: %q", got)
	}
	if got := buildVersion(nil, false); got != "herald (unknown version)" {
		t.Errorf("no build info: %q", got)
	}
}
