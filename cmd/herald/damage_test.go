package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/sqlitedamage"
	"github.com/heraldhq/herald/store/sqlite"
)

// herald serve refuses a damaged store file and says what to do;
// --quick-check 0 skips the check for an operator who knows the file.
func TestServeRefusesDamagedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, storeFile)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	sqlitedamage.Fill(t, st, 300)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	sqlitedamage.BadPage(t, path, sqlitedamage.ID(150))

	err = Run(ctx, []string{"serve", "--store", "sqlite", "--data", dir, "--addr", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "quick check") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("serve on a damaged store: %v; want a refusal naming the quick check and a backup", err)
	}
	p := startServe(t, "--store", "sqlite", "--data", dir, "--addr", "127.0.0.1:0", "--quick-check", "0")
	if err := p.stop(t); err != nil {
		t.Fatalf("serve with --quick-check 0: %v", err)
	}
}
