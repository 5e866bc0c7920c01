package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The audit log rotates by size and keeps the newest files only.
func TestAuditFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a, err := openAuditFile(path, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	line := strings.Repeat("x", 99) + "\n"
	for i := range 100 {
		if _, err := fmt.Fprint(a, line); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var total int64
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		fi, _ := f.Info()
		total += fi.Size()
		if fi.Size() > 1000 {
			t.Errorf("%s holds %d bytes, over the 1000 cap", f.Name(), fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f.Name(), fi.Mode().Perm())
		}
	}
	if len(files) != 3 || total > 3000 {
		t.Fatalf("%d files, %d bytes; want audit.log, .1 and .2 within 3000 bytes", len(files), total)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("a third old file was kept")
	}
}
