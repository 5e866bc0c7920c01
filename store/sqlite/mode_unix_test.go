//go:build unix

package sqlite

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The store's files hold webhook secrets and subject keys: the database,
// its WAL and shared-memory file are created readable by their owner only,
// in a folder any user may list (0755, the umask 022 of most systems), and
// the store warns about that folder.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	path := filepath.Join(dir, "herald.db")
	s := openTest(t, path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := s.PutValue(context.Background(), "tokens", "t", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"herald.db", "herald.db-wal", "herald.db-shm", "herald.db.lock"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", name, m)
		}
	}
	if !strings.Contains(logs.String(), "store directory is open to every user") {
		t.Errorf("no warning about a 0755 store directory; logs: %s", logs.String())
	}
}
