package herald_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeImports are what a README snippet may use without importing it.
var readmeImports = []string{
	`"context"`, `"fmt"`, `"log"`, `"time"`,
	`"github.com/heraldhq/herald"`,
	`"github.com/heraldhq/herald/store/sqlite"`,
}

// TestReadmeSnippetsCompile extracts every Go snippet of README.md and
// type-checks it, so that the README never shows code that does not build
// (it once called a must that did not exist). A snippet is a function body
// that may use ctx and bus; it runs in a block of its own, so it may
// declare them again.
func TestReadmeSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the README's snippets with the go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d Go snippets in README.md; the test would check nothing", len(blocks))
	}
	var src strings.Builder
	src.WriteString("package readme\n\nimport (\n")
	for _, imp := range readmeImports {
		fmt.Fprintf(&src, "\t%s\n", imp)
	}
	src.WriteString(")\n\nvar (\n\t_ = fmt.Sprint\n\t_ = log.Print\n\t_ = time.Second\n\t_ = sqlite.Open\n\t_ context.Context\n)\n")
	for i, b := range blocks {
		fmt.Fprintf(&src, "\nfunc snippet%d(ctx context.Context, bus *herald.Bus) {\n\t_, _ = ctx, bus\n\t{\n%s\t}\n}\n", i, b[1])
	}
	// A folder inside the module, so that the snippets build against this
	// checkout; "_" keeps it out of ./... patterns.
	dir, err := os.MkdirTemp(".", "_readme")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "readme.go"), []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "vet", "./"+filepath.Base(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("README snippets do not build:\n%s\n--- generated source:\n%s", out, src.String())
	}
}
