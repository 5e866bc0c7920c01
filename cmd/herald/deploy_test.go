package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile returns the repository's Dockerfile with continuation lines
// joined, one instruction a line.
func dockerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(strings.TrimSpace(line), "#") && cur == "" {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		if line = strings.TrimSpace(cur + line); line != "" {
			out = append(out, line)
		}
		cur = ""
	}
	return out
}

// The image builds a static binary, runs it as a non-root user with its
// data in the /data volume, and checks its health with a command the
// binary has (the image holds no curl).
func TestDockerfile(t *testing.T) {
	var user, volume, health string
	var static bool
	for _, in := range dockerfile(t) {
		word, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(word) {
		case "USER":
			user = rest
		case "VOLUME":
			volume = rest
		case "HEALTHCHECK":
			health = rest
		case "RUN":
			static = static || strings.Contains(rest, "CGO_ENABLED=0 go build")
		}
	}
	if !static {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if volume != "/data" {
		t.Errorf("VOLUME %q", volume)
	}
	_, cmdJSON, ok := strings.Cut(health, "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(cmdJSON), &argv) != nil || len(argv) < 2 || filepath.Base(argv[0]) != "herald" {
		t.Fatalf("HEALTHCHECK %q: want CMD [\"/…/herald\", …]", health)
	}
	// The check's command, run against a real server, says healthy.
	ts := startServer(t, withAdmin())
	if r := ts.run(t, argv[1:]...).ok(t); r.stdout != "healthy\n" {
		t.Errorf("%q said %q", argv, r.stdout)
	}
}

// The systemd unit starts herald serve with flags and variables serve
// knows, runs hardened, and passes systemd-analyze verify where systemd
// is installed.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../deploy/herald.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	keys := map[string][]string{}
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "StateDirectory": "herald", "ProtectSystem": "strict",
		"NoNewPrivileges": "yes", "ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": ""} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if len(keys["ExecStart"]) != 1 {
		t.Fatalf("ExecStart %q", keys["ExecStart"])
	}
	argv := strings.Fields(keys["ExecStart"][0])
	if filepath.Base(argv[0]) != "herald" || len(argv) < 2 || argv[1] != "serve" {
		t.Fatalf("ExecStart %q: want herald serve", argv)
	}
	serve := newServeCmd(&globals{})
	if err := serve.ParseFlags(argv[2:]); err != nil {
		t.Errorf("ExecStart's flags: %v", err)
	}
	// Every HERALD_ variable it sets is one serve reads.
	var help bytes.Buffer
	serve.SetOut(&help)
	serve.Usage()
	for _, env := range keys["Environment"] {
		name, _, _ := strings.Cut(env, "=")
		if !strings.Contains(help.String(), "env "+name+")") {
			t.Errorf("Environment=%s: herald serve reads no %s", env, name)
		}
	}
	if !regexp.MustCompile(`(?m)^Environment=HERALD_DATA=%S/herald$`).MatchString(unit) {
		t.Error("the data is not kept in the StateDirectory")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not verified")
	}
	// verify wants ExecStart's program to exist: any executable will do.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "herald.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, argv[0], self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on settings it ignores, but says so.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
