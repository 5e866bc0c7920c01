package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksOnlyTheProtocol pins the client's dependencies: the
// standard library and herald's wire package, nothing else. A client must
// not link Prometheus, the JSON Schema compiler, SQLite, a NATS server, a
// store or the bus.
func TestClientLinksOnlyTheProtocol(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/heraldhq/herald/client":         true,
		"github.com/heraldhq/herald/api":            true,
		"github.com/heraldhq/herald/internal/model": true,
	}
	var deps int
	for line := range strings.Lines(string(out)) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		deps++
		if std == "true" || allowed[path] {
			continue
		}
		t.Errorf("client depends on %s; it may depend only on the standard library and %v", path, keys(allowed))
	}
	if deps < 10 {
		t.Fatalf("go list -deps printed %d packages, expected the standard library at least:\n%s", deps, out)
	}
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}
