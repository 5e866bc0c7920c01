package herald

import (
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDFormat(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewID()
	after := time.Now().UnixMilli()
	if !uuidV7.MatchString(id) {
		t.Fatalf("NewID() = %q, not a UUIDv7", id)
	}
	// The first 48 bits are the Unix time in milliseconds.
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")[:12])
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	for _, c := range b {
		ms = ms<<8 | int64(c)
	}
	if ms < before || ms > after {
		t.Errorf("id time %d not within [%d, %d]", ms, before, after)
	}
}

func TestNewIDUnique(t *testing.T) {
	const goroutines, each = 8, 2000
	var mu sync.Mutex
	seen := make(map[string]bool, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, each)
			for i := range ids {
				ids[i] = NewID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}

func TestNewIDSortsByTime(t *testing.T) { synctest.Test(t, testNewIDSortsByTime) }

func testNewIDSortsByTime(t *testing.T) {
	a := NewID()
	time.Sleep(2 * time.Millisecond) // the bubble's clock: exact, and at once
	b := NewID()
	if !(a < b) {
		t.Errorf("id %s made before %s does not sort first", a, b)
	}
}

func TestChildID(t *testing.T) {
	parent := "0190a0b2-0000-7000-8000-000000000001"
	id := ChildID(parent, "transcriber", 0)
	if !uuidV8.MatchString(id) {
		t.Fatalf("ChildID = %q, not a UUIDv8", id)
	}
	if again := ChildID(parent, "transcriber", 0); again != id {
		t.Errorf("ChildID is not deterministic: %s then %s", id, again)
	}
	// Every input changes the id.
	others := map[string]string{
		"index 1":          ChildID(parent, "transcriber", 1),
		"other sub":        ChildID(parent, "notes", 0),
		"other parent":     ChildID(parent[:len(parent)-1]+"2", "transcriber", 0),
		"dead letter":      DeadLetterID("transcriber", parent),
		"shifted boundary": ChildID(parent+"t", "ranscriber", 0),
	}
	seen := map[string]string{id: "base"}
	for name, o := range others {
		if prev, dup := seen[o]; dup {
			t.Errorf("%s collides with %s: %s", name, prev, o)
		}
		seen[o] = name
	}
	// Pinned value, the first 16 bytes of SHA-256("p\x00s\x000") with the
	// version and variant bits set: a change here breaks every stored
	// idempotency key.
	if got, want := ChildID("p", "s", 0), "991249f5-333b-8a8d-94ba-2545863d012f"; got != want {
		t.Errorf("ChildID(p, s, 0) = %s, want %s", got, want)
	}
	if got := DeadLetterID("sub", "ev"); got != ChildID("ev", "sub", -1) {
		t.Errorf("DeadLetterID = %s, want ChildID(ev, sub, -1)", got)
	}
}
