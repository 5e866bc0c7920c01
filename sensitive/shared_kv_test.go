package sensitive_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/heraldhq/herald/store/sqlite"
)

// sharedKVs returns, per store technology, two handles on one store as two
// processes would hold them: the same store value where a store has one
// owner (memory, SQLite), two connections to one JetStream server.
func sharedKVs(t *testing.T) map[string][2]herald.KV {
	ctx := context.Background()
	mem := herald.NewMemoryStore()
	t.Cleanup(func() { mem.Close() })
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	srv, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var js [2]herald.KV
	for i := range js {
		s, err := natsstore.Connect(ctx, srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		js[i] = s
	}
	return map[string][2]herald.KV{"memory": {mem, mem}, "sqlite": {lite, lite}, "nats": js}
}

// Two codecs sharing one store make the first keys of the same subjects at
// the same instant. They must agree on one key per subject: every event
// either sealed decodes, with both codecs and with a third that starts
// later, and none reads as forgotten.
func TestCodecsSharingAStoreAgreeOnKeys(t *testing.T) {
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		t.Fatal(err)
	}
	for name, kvs := range sharedKVs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var codecs [2]*sensitive.Codec
			for i := range codecs {
				c, err := sensitive.New(kvs[i], sc)
				if err != nil {
					t.Fatal(err)
				}
				codecs[i] = c
			}
			const subjects, perCodec = 40, 3
			sealed := make([][]*herald.Event, subjects)
			for s := range subjects {
				subject := fmt.Sprintf("customer/%s-%d", name, s)
				start := make(chan struct{})
				var wg sync.WaitGroup
				var mu sync.Mutex
				for i, c := range codecs {
					for range perCodec {
						wg.Go(func() {
							e := customer(t, subject)
							e.Metadata = map[string]string{"codec": fmt.Sprint(i)}
							<-start
							if err := c.Encode(ctx, e); err != nil {
								t.Errorf("codec %d: encode: %v", i, err)
								return
							}
							mu.Lock()
							sealed[s] = append(sealed[s], e)
							mu.Unlock()
						})
					}
				}
				close(start)
				wg.Wait()
			}
			if t.Failed() {
				t.FailNow()
			}
			later, err := sensitive.New(kvs[0], sc)
			if err != nil {
				t.Fatal(err)
			}
			readers := map[string]*sensitive.Codec{"codec 0": codecs[0], "codec 1": codecs[1], "a later codec": later}
			for s, evs := range sealed {
				for _, e := range evs {
					for who, c := range readers {
						d := e.Clone()
						if err := c.Decode(ctx, d); err != nil {
							t.Fatalf("subject %d, sealed by codec %s, read by %s: %v", s, e.Metadata["codec"], who, err)
						}
						if m := d.Metadata[sensitive.ShreddedMetadata]; m != "" || !bytes.Contains(d.Data, []byte(email)) {
							t.Fatalf("subject %d, sealed by codec %s, read by %s: reads as forgotten (%s=%q): %s",
								s, e.Metadata["codec"], who, sensitive.ShreddedMetadata, m, d.Data)
						}
					}
				}
			}
			if keys, err := kvs[0].ListValues(ctx, sensitive.DefaultKeyBucket); err != nil || len(keys) != subjects {
				t.Fatalf("%d keys for %d subjects, %v", len(keys), subjects, err)
			}
		})
	}
}
