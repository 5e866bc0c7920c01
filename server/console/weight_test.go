package console_test

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"testing"

	"github.com/heraldhq/herald/server/console"
)

// TestPageWeight sums the console's files gzipped, as the server sends
// them: every page loads at most all of them. The budget is 250 KB.
func TestPageWeight(t *testing.T) {
	total, raw := 0, 0
	fsys := console.FS()
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(fsys, p)
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b)
		w.Close()
		total += z.Len()
		raw += len(b)
		return nil
	})
	t.Logf("FIGURE the console's files: %d bytes, %d bytes gzipped", raw, total)
	if total > 250<<10 {
		t.Errorf("the console weighs %d bytes gzipped, over its budget of 250 KB", total)
	}
}
