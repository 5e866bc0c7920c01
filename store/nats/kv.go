package nats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	herald "github.com/heraldhq/herald"
	"github.com/nats-io/nats.go/jetstream"
)

// herald's KV space is one JetStream KV bucket; a herald bucket and key
// become the two tokens "<bucket>.<key>" (encodeToken forms).

func validKVName(what, s string) error {
	if s == "" || len(s) > 256 {
		return fmt.Errorf("%w: %s %q must be 1 to 256 bytes", herald.ErrInvalidEvent, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-/=", c) >= 0) {
			return fmt.Errorf("%w: %s %q: only [A-Za-z0-9_.-/=] are allowed", herald.ErrInvalidEvent, what, s)
		}
	}
	return nil
}

func kvKey(bucket, key string) string { return encodeToken(bucket) + "." + encodeToken(key) }

// PutValue implements herald.KV.
func (s *Store) PutValue(ctx context.Context, bucket, key string, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := errors.Join(validKVName("bucket", bucket), validKVName("key", key)); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if value == nil {
		value = []byte{}
	}
	if _, err := s.kv.Put(ctx, kvKey(bucket, key), value); err != nil {
		return s.mapErr("storing a value", err)
	}
	return nil
}

// GetValue implements herald.KV.
func (s *Store) GetValue(ctx context.Context, bucket, key string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := errors.Join(validKVName("bucket", bucket), validKVName("key", key)); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, kvKey(bucket, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, herald.ErrNotFound)
	}
	if err != nil {
		return nil, s.mapErr("reading a value", err)
	}
	return e.Value(), nil
}

// DeleteValue implements herald.KV. The value is purged from the stream,
// not only marked deleted.
func (s *Store) DeleteValue(ctx context.Context, bucket, key string) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := errors.Join(validKVName("bucket", bucket), validKVName("key", key)); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	return s.purgeSubject(ctx, "KV_"+s.cfg.namespace+"_kv", "$KV."+s.cfg.namespace+"_kv."+kvKey(bucket, key))
}

// ListValues implements herald.KV.
func (s *Store) ListValues(ctx context.Context, bucket string) (map[string][]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := validKVName("bucket", bucket); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	out := map[string][]byte{}
	err := s.scanBucket(ctx, s.cfg.namespace+"_kv", encodeToken(bucket)+".*", func(k string, v []byte) error {
		_, kt, _ := strings.Cut(k, ".")
		key, ok := decodeToken(kt)
		if !ok {
			return fmt.Errorf("nats store: key %q is corrupt: %w", k, herald.ErrIncompatibleStore)
		}
		out[key] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sleepCtx waits before retry number attempt: a random time up to
// min(2ms × 2^attempt, 50ms).
func sleepCtx(ctx context.Context, attempt int) error {
	d := min(2*time.Millisecond<<min(attempt, 5), 50*time.Millisecond)
	t := time.NewTimer(rand.N(d) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
