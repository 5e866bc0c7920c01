package sensitive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/heraldhq/herald/store/sqlite"
)

// Forget really forgets: once it returns, the subject's key is in no file
// under the store's data folder, neither while the store runs nor after it
// stops, on SQLite and on JetStream with file storage. Events of the
// subject stay, sealed under a key that no longer exists anywhere.
func TestForgetLeavesNoKeyOnDisk(t *testing.T) {
	type opened struct {
		store herald.Store
		stop  func() // closes the store and whatever serves it
	}
	stores := map[string]func(t *testing.T, dir string) opened{
		"sqlite": func(t *testing.T, dir string) opened {
			st, err := sqlite.Open(context.Background(), filepath.Join(dir, "herald.db"))
			if err != nil {
				t.Fatal(err)
			}
			return opened{st, func() { st.Close() }}
		},
		"nats": func(t *testing.T, dir string) opened {
			srv, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			st, err := natsstore.Connect(context.Background(), srv.ClientURL())
			if err != nil {
				srv.Shutdown()
				t.Fatal(err)
			}
			return opened{st, func() { st.Close(); srv.Shutdown() }}
		},
	}
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		t.Fatal(err)
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			o := open(t, dir)
			stopped := false
			defer func() {
				if !stopped {
					o.stop()
				}
			}()
			c, err := sensitive.New(o.store, sc)
			if err != nil {
				t.Fatal(err)
			}
			bus, err := herald.New(herald.WithStore(o.store), herald.WithSchemas(sc), herald.WithCodec(c))
			if err != nil {
				t.Fatal(err)
			}
			for _, subject := range []string{"customer/gone", "customer/kept", "customer/gone", "customer/kept"} {
				if _, err := bus.Publish(ctx, customer(t, subject)); err != nil {
					t.Fatal(err)
				}
			}
			gone, kept := keyPatterns(t, o.store, "customer/gone"), keyPatterns(t, o.store, "customer/kept")
			if found := filesWith(t, dir, gone); len(found) == 0 {
				t.Fatalf("the key is in no file under the data folder before Forget: the scan cannot see the store")
			}
			if err := c.Forget(ctx, "customer/gone"); err != nil {
				t.Fatal(err)
			}
			if found := filesWith(t, dir, gone); len(found) > 0 {
				t.Fatalf("after Forget, the running store still holds the forgotten key in %v", found)
			}
			if err := bus.Close(ctx); err != nil {
				t.Fatal(err)
			}
			o.stop()
			stopped = true
			if found := filesWith(t, dir, gone); len(found) > 0 {
				t.Fatalf("after Forget and a stop, the store's files still hold the forgotten key in %v", found)
			}
			if found := filesWith(t, dir, kept); len(found) == 0 {
				t.Fatalf("the key of a subject not forgotten is gone too")
			}
		})
	}
}

// keyPatterns returns the forms in which subject's key could sit in a file:
// its 32 bytes, and their base64 form as the key record stores them.
func keyPatterns(t *testing.T, kv herald.KV, subject string) [][]byte {
	t.Helper()
	sum := sha256.Sum256([]byte(subject))
	rec, err := kv.GetValue(context.Background(), sensitive.DefaultKeyBucket, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("reading the key of %s: %v", subject, err)
	}
	var k struct {
		Key []byte `json:"key"`
	}
	if err := json.Unmarshal(rec, &k); err != nil || len(k.Key) != 32 {
		t.Fatalf("key record of %s: %v", subject, err)
	}
	return [][]byte{k.Key, []byte(base64.StdEncoding.EncodeToString(k.Key))}
}

// filesWith returns the files under dir holding any of patterns.
func filesWith(t *testing.T, dir string, patterns [][]byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range patterns {
			if bytes.Contains(b, p) {
				rel, _ := filepath.Rel(dir, path)
				found = append(found, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
