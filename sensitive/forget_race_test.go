package sensitive_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
)

// slowDeleteKV runs during() inside DeleteValue, before the delete: a read
// that overlaps the delete finds the key still stored.
type slowDeleteKV struct {
	herald.KV
	during func()
}

func (k *slowDeleteKV) DeleteValue(ctx context.Context, bucket, key string) error {
	if k.during != nil {
		k.during()
	}
	return k.KV.DeleteValue(ctx, bucket, key)
}

// A Decode that runs while Forget deletes the key may still read it, but
// must not leave it cached: once Forget returns, the fields read as shredded.
func TestForgetRacingDecodeLeavesNoKeyCached(t *testing.T) {
	st := herald.NewMemoryStore()
	t.Cleanup(func() { st.Close() })
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		t.Fatal(err)
	}
	kv := &slowDeleteKV{KV: st}
	c, err := sensitive.New(kv, sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := customer(t, "customer/race")
	if err := c.Encode(ctx, e); err != nil {
		t.Fatal(err)
	}
	stored := e.Clone()
	kv.during = func() {
		// Not from the cache: a fresh Decode reads the key from the KV.
		d := stored.Clone()
		if err := c.Decode(ctx, d); err != nil {
			t.Errorf("decode during forget: %v", err)
		}
	}
	if err := c.Forget(ctx, "customer/race"); err != nil {
		t.Fatal(err)
	}
	kv.during = nil
	d := stored.Clone()
	if err := c.Decode(ctx, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(d.Data), email) {
		t.Fatalf("after Forget the key is still in use: %s", d.Data)
	}
	if d.Metadata[sensitive.ShreddedMetadata] == "" {
		t.Fatalf("after Forget no field is listed as shredded: %v", d.Metadata)
	}
}
