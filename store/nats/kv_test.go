package nats_test

import (
	"context"
	"errors"
	"testing"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/nats-io/nats.go/jetstream"
)

// A KV bucket made by an earlier herald (a plain JetStream KV bucket, which
// denies message deletes) still works: values are created, updated and
// deleted; deletes purge instead of erasing.
func TestKVBucketOfAnEarlierHerald(t *testing.T) {
	e := server(t)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "old_kv", History: 1}); err != nil {
		t.Fatal(err)
	}
	s := open(t, e, natsstore.WithNamespace("old"))
	rev, err := s.CreateValue(ctx, "keys", "k", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateValue(ctx, "keys", "k", []byte("v2"), rev); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteValue(ctx, "keys", "k"); err != nil {
		t.Fatalf("DeleteValue on a bucket that denies message deletes: %v", err)
	}
	if _, err := s.GetValue(ctx, "keys", "k"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("GetValue after DeleteValue: %v", err)
	}
	if _, err := s.CreateValue(ctx, "keys", "k", []byte("v3")); err != nil {
		t.Fatalf("CreateValue after DeleteValue: %v", err)
	}
}
