// Package sqlitedamage damages SQLite store files the way disks and
// careless hands do, for tests: it fills a store with events whose stored
// bodies can be found in the file, then writes bytes into the file.
package sqlitedamage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// Name is the name of the events Fill appends.
const Name = "rec.made"

// ID is the id of the n-th event Fill appends (from 1).
func ID(n int) string { return fmt.Sprintf("evt-%06d", n) }

// Fill appends n events named Name with ids ID(1…n), one at a time, each
// with about 300 bytes of data, so that they take many pages.
func Fill(t testing.TB, st herald.EventLog, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		e := &herald.Event{ID: ID(i), Name: Name,
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 300)))}
		if err := e.Prepare(time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(context.Background(), []*herald.Event{e}, herald.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// BodyOffset returns where, in the closed store file at path, the stored
// body of the event with the given id starts (its format byte, 1, then
// the id's length and the id), and the file's page size.
func BodyOffset(t testing.TB, path, id string) (off, pageSize int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := append([]byte{1, byte(len(id))}, id...)
	if n := bytes.Count(b, needle); n != 1 {
		t.Fatalf("the body of %s is found %d times in the file", id, n)
	}
	return bytes.Index(b, needle), int(binary.BigEndian.Uint16(b[16:18]))
}

// FlipBody damages the stored body of the event with the given id (its
// format byte), which SQLite's own checks cannot see.
func FlipBody(t testing.TB, path, id string) {
	t.Helper()
	off, _ := BodyOffset(t, path, id)
	WriteAt(t, path, int64(off), []byte{0x7f})
}

// BadPage gives the page that holds the stored body of the event with the
// given id a type no SQLite page has.
func BadPage(t testing.TB, path, id string) {
	t.Helper()
	off, pageSize := BodyOffset(t, path, id)
	if off < pageSize {
		t.Fatalf("the body of %s is on the first page", id)
	}
	WriteAt(t, path, int64(off/pageSize*pageSize), []byte{0x07}) // types are 2, 5, 10, 13
}

// WriteAt writes p into the file at path at offset off.
func WriteAt(t testing.TB, path string, off int64, p []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}
