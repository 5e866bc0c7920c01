package server_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/sqlitedamage"
	"github.com/heraldhq/herald/store/sqlite"
)

// A store whose file holds a damaged event: before, /readyz said ready
// while reads of the event answered 500 "internal error". Now the 500
// names the damaged position, so a reader can read on after it, and once
// the store has met the damage, /readyz answers 503 saying the store is
// damaged.
func TestReadyzSaysDamagedStoreIsNotReady(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	sqlitedamage.Fill(t, st, 5)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	sqlitedamage.FlipBody(t, path, sqlitedamage.ID(3))

	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	if a := e.do("GET", "/readyz", nil); a.status != 200 {
		t.Fatalf("readyz before the damage was met: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?after=0", nil); a.status != 500 || !strings.Contains(string(a.body), "position 3 is damaged") {
		t.Fatalf("reading through the damaged event: %d %s; want 500 naming its position", a.status, a.body)
	}
	if a := e.do("GET", "/v1/events?after=3", nil); a.status != 200 || strings.Count(string(a.body), `"position"`) != 2 {
		t.Fatalf("reading after the damaged event: %d %s; want the 2 events after it", a.status, a.body)
	}
	a := e.do("GET", "/readyz", nil)
	if a.status != 503 || !strings.Contains(string(a.body), "damaged") {
		t.Fatalf("readyz after the damage was met: %d %s; want 503 saying the store is damaged", a.status, a.body)
	}
}
