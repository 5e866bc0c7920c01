package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

// A store whose file holds a damaged event: before, /readyz said ready
// while reads of the event answered 500. Now, once the store has met the
// damage, /readyz answers 503 saying the store is damaged.
func TestReadyzSaysDamagedStoreIsNotReady(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		e := &herald.Event{ID: fmt.Sprintf("evt-%d", i), Name: "rec.made", Data: json.RawMessage(`{"n":1}`)}
		if err := e.Prepare(e.Timestamp); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, []*herald.Event{e}, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip the format byte of event 3's stored body: SQLite's checks
	// cannot see it.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := append([]byte{1, 5}, "evt-3"...)
	if bytes.Count(b, needle) != 1 {
		t.Fatalf("the body of evt-3 is found %d times", bytes.Count(b, needle))
	}
	b[bytes.Index(b, needle)] = 0x7f
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	if a := e.do("GET", "/readyz", nil); a.status != 200 {
		t.Fatalf("readyz before the damage was met: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?after=0", nil); a.status != 500 {
		t.Fatalf("reading through the damaged event: %d %s", a.status, a.body)
	}
	a := e.do("GET", "/readyz", nil)
	if a.status != 503 || !strings.Contains(string(a.body), "damaged") {
		t.Fatalf("readyz after the damage was met: %d %s; want 503 saying the store is damaged", a.status, a.body)
	}
}
