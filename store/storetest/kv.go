package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
)

// nameOf returns a name of exactly n bytes made of every character KV names
// allow, so that a store which maps names to something else (JetStream
// subject tokens) meets its worst case.
func nameOf(n int) string {
	const alphabet = "aZ09_.-/="
	var b strings.Builder
	for i := range n {
		b.WriteByte(alphabet[i%len(alphabet)])
	}
	return b.String()
}

// testKVNames checks that the store accepts exactly the names
// herald.ValidateKVName accepts, at its length limits too, on every call.
func (s *suite) testKVNames(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	longest := nameOf(herald.MaxKVNameLen)
	if err := herald.ValidateKVName(longest, longest); err != nil {
		t.Fatalf("ValidateKVName refuses a name of MaxKVNameLen bytes: %v", err)
	}
	if _, err := st.CreateValue(ctx, longest, longest, []byte("c")); err != nil {
		t.Fatalf("CreateValue with names of MaxKVNameLen (%d) bytes: %v", herald.MaxKVNameLen, err)
	}
	if err := st.PutValue(ctx, longest, longest, []byte("v")); err != nil {
		t.Fatalf("PutValue with names of MaxKVNameLen bytes: %v", err)
	}
	e, err := st.GetEntry(ctx, longest, longest)
	if err != nil || string(e.Value) != "v" {
		t.Fatalf("GetEntry with names of MaxKVNameLen bytes = %q, %v", e.Value, err)
	}
	if _, err := st.UpdateValue(ctx, longest, longest, []byte("u"), e.Revision); err != nil {
		t.Fatalf("UpdateValue with names of MaxKVNameLen bytes: %v", err)
	}
	if m, err := st.ListValues(ctx, longest); err != nil || string(m[longest]) != "u" || len(m) != 1 {
		t.Fatalf("ListValues of a bucket named with MaxKVNameLen bytes = %q, %v", m, err)
	}
	if err := st.DeleteValue(ctx, longest, longest); err != nil {
		t.Fatalf("DeleteValue with names of MaxKVNameLen bytes: %v", err)
	}

	tooLong := nameOf(herald.MaxKVNameLen + 1)
	bad := [][2]string{
		{"", "k"}, {"b", ""}, {"b c", "k"}, {"b", "k y"}, {"b", "ké"}, {"b", "k\x00"}, {"b", "k*"}, {"b", "k>"},
		{"b", "k\n"}, {"b", "k:"}, {tooLong, "k"}, {"b", tooLong},
	}
	for _, n := range bad {
		bucket, key := n[0], n[1]
		if herald.ValidateKVName(bucket, key) == nil {
			t.Fatalf("ValidateKVName(%.20q, %.20q) accepts a name the suite expects refused", bucket, key)
		}
		calls := map[string]error{}
		calls["PutValue"] = st.PutValue(ctx, bucket, key, []byte("v"))
		_, calls["CreateValue"] = st.CreateValue(ctx, bucket, key, []byte("v"))
		_, calls["UpdateValue"] = st.UpdateValue(ctx, bucket, key, []byte("v"), 1)
		_, calls["GetValue"] = st.GetValue(ctx, bucket, key)
		_, calls["GetEntry"] = st.GetEntry(ctx, bucket, key)
		calls["DeleteValue"] = st.DeleteValue(ctx, bucket, key)
		for call, err := range calls {
			if !errors.Is(err, herald.ErrInvalidEvent) {
				t.Errorf("%s(%.20q (%d bytes), %.20q (%d bytes)) = %v, want ErrInvalidEvent",
					call, bucket, len(bucket), key, len(key), err)
			}
		}
	}
	for _, b := range []string{"", "b c", tooLong} {
		if _, err := st.ListValues(ctx, b); !errors.Is(err, herald.ErrInvalidEvent) {
			t.Errorf("ListValues(%.20q, %d bytes) = %v, want ErrInvalidEvent", b, len(b), err)
		}
	}
}

// testKVCreate checks create-if-absent and revisions.
func (s *suite) testKVCreate(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	rev, err := st.CreateValue(ctx, "keys", "k", []byte("first"))
	if err != nil || rev == 0 {
		t.Fatalf("CreateValue of an absent key = %d, %v; want a revision > 0", rev, err)
	}
	e, err := st.GetEntry(ctx, "keys", "k")
	if err != nil || string(e.Value) != "first" || e.Revision != rev {
		t.Fatalf("GetEntry after CreateValue = {%q %d}, %v; want {first %d}", e.Value, e.Revision, err, rev)
	}
	if _, err := st.CreateValue(ctx, "keys", "k", []byte("second")); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("CreateValue of an existing key: %v, want ErrConflict", err)
	}
	if v, _ := st.GetValue(ctx, "keys", "k"); string(v) != "first" {
		t.Fatalf("a refused CreateValue changed the value to %q", v)
	}
	// The same key in another bucket is another key.
	if _, err := st.CreateValue(ctx, "other", "k", []byte("x")); err != nil {
		t.Fatalf("CreateValue of the same key in another bucket: %v", err)
	}
	// Delete, then create again: a new, greater revision.
	if err := st.DeleteValue(ctx, "keys", "k"); err != nil {
		t.Fatal(err)
	}
	rev2, err := st.CreateValue(ctx, "keys", "k", []byte("again"))
	if err != nil {
		t.Fatalf("CreateValue after DeleteValue: %v", err)
	}
	if rev2 <= rev {
		t.Errorf("revision after delete and create = %d, want > %d", rev2, rev)
	}
	if v, _ := st.GetValue(ctx, "keys", "k"); string(v) != "again" {
		t.Errorf("value after delete and create = %q, want again", v)
	}
	// PutValue gives a new revision too, and creates.
	if err := st.PutValue(ctx, "keys", "k", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if e, err := st.GetEntry(ctx, "keys", "k"); err != nil || e.Revision <= rev2 || string(e.Value) != "put" {
		t.Errorf("GetEntry after PutValue = {%q %d}, %v; want {put >%d}", e.Value, e.Revision, err, rev2)
	}
	if _, err := st.CreateValue(ctx, "keys", "k", nil); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("CreateValue of a key PutValue wrote: %v, want ErrConflict", err)
	}
	// A nil value is stored as empty.
	if _, err := st.CreateValue(ctx, "keys", "empty", nil); err != nil {
		t.Fatal(err)
	}
	if e, err := st.GetEntry(ctx, "keys", "empty"); err != nil || e.Value == nil || len(e.Value) != 0 {
		t.Errorf("GetEntry of an empty value = %#v, %v; want an empty, non-nil value", e.Value, err)
	}
	if _, err := st.GetEntry(ctx, "keys", "missing"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("GetEntry of a missing key: %v, want ErrNotFound", err)
	}
}

// testKVCreateRace runs many creates of one key at once: exactly one wins,
// every loser gets ErrConflict and then reads the winner's value.
func (s *suite) testKVCreateRace(t *testing.T) {
	st := s.open(t)
	kvCreateRace(t, []herald.KV{st}, 24, 5)
}

// testKVSharedCreateRace is testKVCreateRace across two handles on one
// store, as two processes sharing it.
func (s *suite) testKVSharedCreateRace(t *testing.T) {
	if s.f.OpenSecond == nil || !s.f.SharedAcrossProcesses {
		t.Skip("the store is not shared across processes")
	}
	st := s.open(t)
	second, err := s.f.OpenSecond(t, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Close() })
	kvCreateRace(t, []herald.KV{st, second}, 24, 5)
}

func kvCreateRace(t *testing.T, kvs []herald.KV, racers, keys int) {
	ctx := t.Context()
	for k := range keys {
		key := "race-" + strconv.Itoa(k)
		type result struct {
			rev uint64
			err error
			// read is what the racer read after losing.
			read herald.KVEntry
		}
		results := make([]result, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				kv := kvs[i%len(kvs)]
				<-start
				r := &results[i]
				r.rev, r.err = kv.CreateValue(ctx, "keys", key, []byte("racer-"+strconv.Itoa(i)))
				if r.err != nil {
					r.read, _ = kv.GetEntry(ctx, "keys", key)
				}
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, r := range results {
			switch {
			case r.err == nil && winner >= 0:
				t.Fatalf("%s: racers %d and %d both created the key", key, winner, i)
			case r.err == nil:
				winner = i
			case !errors.Is(r.err, herald.ErrConflict):
				t.Fatalf("%s: racer %d: %v, want ErrConflict", key, i, r.err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no racer created the key", key)
		}
		want := fmt.Sprintf("racer-%d", winner)
		for i, r := range results {
			if i != winner && (string(r.read.Value) != want || r.read.Revision != results[winner].rev) {
				t.Fatalf("%s: losing racer %d read {%q %d}, want the winner's {%q %d}",
					key, i, r.read.Value, r.read.Revision, want, results[winner].rev)
			}
		}
	}
}

// testKVUpdate checks compare-and-set by revision.
func (s *suite) testKVUpdate(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	if _, err := st.UpdateValue(ctx, "subs", "missing", []byte("x"), 1); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("UpdateValue of a missing key: %v, want ErrConflict", err)
	}
	if _, err := st.UpdateValue(ctx, "subs", "missing", []byte("x"), 0); !errors.Is(err, herald.ErrConflict) {
		t.Errorf("UpdateValue of a missing key at revision 0: %v, want ErrConflict", err)
	}
	if _, err := st.GetValue(ctx, "subs", "missing"); !errors.Is(err, herald.ErrNotFound) {
		t.Errorf("a refused UpdateValue created the key: %v", err)
	}
	r1, err := st.CreateValue(ctx, "subs", "s", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := st.UpdateValue(ctx, "subs", "s", []byte("v2"), r1)
	if err != nil || r2 <= r1 {
		t.Fatalf("UpdateValue at the current revision = %d, %v; want a revision > %d", r2, err, r1)
	}
	if e, _ := st.GetEntry(ctx, "subs", "s"); string(e.Value) != "v2" || e.Revision != r2 {
		t.Fatalf("after UpdateValue: {%q %d}, want {v2 %d}", e.Value, e.Revision, r2)
	}
	// At a stale revision, nothing changes.
	if _, err := st.UpdateValue(ctx, "subs", "s", []byte("stale"), r1); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue at a stale revision: %v, want ErrConflict", err)
	}
	if _, err := st.UpdateValue(ctx, "subs", "s", []byte("zero"), 0); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue of an existing key at revision 0: %v, want ErrConflict", err)
	}
	if e, _ := st.GetEntry(ctx, "subs", "s"); string(e.Value) != "v2" || e.Revision != r2 {
		t.Fatalf("a refused UpdateValue changed the entry: {%q %d}", e.Value, e.Revision)
	}
	// A PutValue in between moves the revision.
	if err := st.PutValue(ctx, "subs", "s", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateValue(ctx, "subs", "s", []byte("late"), r2); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue at the revision before a PutValue: %v, want ErrConflict", err)
	}
	// Deleted, then created again: the revision read before the delete no
	// longer matches, even though the key exists again.
	e, _ := st.GetEntry(ctx, "subs", "s")
	if err := st.DeleteValue(ctx, "subs", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateValue(ctx, "subs", "s", []byte("gone"), e.Revision); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue of a deleted key: %v, want ErrConflict", err)
	}
	if _, err := st.CreateValue(ctx, "subs", "s", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateValue(ctx, "subs", "s", []byte("aba"), e.Revision); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue at a revision from before a delete and create: %v, want ErrConflict", err)
	}
	if v, _ := st.GetValue(ctx, "subs", "s"); string(v) != "new" {
		t.Fatalf("value = %q, want new", v)
	}
}

// testKVUpdateRace increments a counter from several goroutines with
// read-then-UpdateValue loops: no increment is lost.
func (s *suite) testKVUpdateRace(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	if _, err := st.CreateValue(ctx, "counters", "c", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := increment(ctx, st, "counters", "c"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := st.GetValue(ctx, "counters", "c"); string(v) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d increments: updates were lost", v, workers*each)
	}
}

func increment(ctx context.Context, kv herald.KV, bucket, key string) error {
	for {
		e, err := kv.GetEntry(ctx, bucket, key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(e.Value))
		if err != nil {
			return err
		}
		_, err = kv.UpdateValue(ctx, bucket, key, []byte(strconv.Itoa(n+1)), e.Revision)
		if !errors.Is(err, herald.ErrConflict) {
			return err
		}
	}
}

// testKVDeleteErases checks that a deleted value is gone from every file
// of the store, not only unlinked: key material deleted to forget a
// subject must not be recoverable from the disk.
func (s *suite) testKVDeleteErases(t *testing.T) {
	if s.f.DataDir == nil {
		t.Skip("Features.DataDir is nil")
	}
	st := s.open(t)
	ctx := t.Context()
	dir := s.f.DataDir(t, st)
	secret := func() []byte {
		b := make([]byte, 24)
		rand.Read(b)
		return []byte("secret-" + hex.EncodeToString(b))
	}
	var kept, gone [][]byte
	// Values before, among and after the deleted ones, in several
	// transactions, so that the deleted ones share pages and blocks with
	// values that stay.
	for i := range 60 {
		v := secret()
		key := "k" + strconv.Itoa(i)
		if _, err := st.CreateValue(ctx, "keys", key, v); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			gone = append(gone, v)
		} else {
			kept = append(kept, v)
		}
	}
	for i := 1; i < 60; i += 3 {
		if err := st.DeleteValue(ctx, "keys", "k"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 { // writes after the delete
		if err := st.PutValue(ctx, "other", "o"+strconv.Itoa(i), bytes.Repeat([]byte("x"), 500)); err != nil {
			t.Fatal(err)
		}
	}
	assertErased(t, dir, "while the store is open", gone)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	assertErased(t, dir, "after Close", gone)
	// The check itself finds values that are there.
	if found := filesHolding(t, dir, kept[0]); len(found) == 0 {
		t.Fatalf("a kept value is in no file under %s: the check cannot see the store's files", dir)
	}
}

func assertErased(t *testing.T, dir, when string, gone [][]byte) {
	t.Helper()
	for i, v := range gone {
		if found := filesHolding(t, dir, v); len(found) > 0 {
			t.Fatalf("%s: deleted value %d is still in %v", when, i, found)
		}
	}
}

// filesHolding returns the files under dir whose bytes contain v.
func filesHolding(t *testing.T, dir string, v []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a WAL at Close)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, v) {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
