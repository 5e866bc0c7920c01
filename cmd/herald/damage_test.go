package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
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
	for i := range 300 {
		e := &herald.Event{ID: fmt.Sprintf("evt-%04d", i), Name: "rec.made",
			Data: json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 300)))}
		if _, err := st.Append(ctx, []*herald.Event{e}, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// A bad type byte on the page that holds evt-0150's stored body.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(b, append([]byte{1, 8}, "evt-0150"...))
	pageSize := int(binary.BigEndian.Uint16(b[16:18]))
	if off < pageSize {
		t.Fatalf("the event's body is at %d", off)
	}
	b[off/pageSize*pageSize] = 0x07
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	err = Run(ctx, []string{"serve", "--store", "sqlite", "--data", dir, "--addr", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "quick check") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("serve on a damaged store: %v; want a refusal naming the quick check and a backup", err)
	}
	p := startServe(t, "--store", "sqlite", "--data", dir, "--addr", "127.0.0.1:0", "--quick-check", "0")
	if err := p.stop(t); err != nil {
		t.Fatalf("serve with --quick-check 0: %v", err)
	}
}
