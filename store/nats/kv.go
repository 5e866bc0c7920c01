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
// become the two tokens "<bucket>.<key>" (encodeToken forms). A value's
// revision is its message's stream sequence.

func kvKey(bucket, key string) string { return encodeToken(bucket) + "." + encodeToken(key) }

// PutValue implements herald.KV.
func (s *Store) PutValue(ctx context.Context, bucket, key string, value []byte) error {
	_, err := s.writeValue(ctx, "storing a value", bucket, key, value, func(ctx context.Context, k string, v []byte) (uint64, error) {
		return s.kv.Put(ctx, k, v)
	})
	return err
}

// CreateValue implements herald.KV with KeyValue.Create.
func (s *Store) CreateValue(ctx context.Context, bucket, key string, value []byte) (uint64, error) {
	return s.writeValue(ctx, "creating a value", bucket, key, value, func(ctx context.Context, k string, v []byte) (uint64, error) {
		rev, err := s.kv.Create(ctx, k, v)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("%w: kv %s/%s exists", herald.ErrConflict, bucket, key)
		}
		return rev, err
	})
}

// UpdateValue implements herald.KV with KeyValue.Update.
func (s *Store) UpdateValue(ctx context.Context, bucket, key string, value []byte, rev uint64) (uint64, error) {
	return s.writeValue(ctx, "updating a value", bucket, key, value, func(ctx context.Context, k string, v []byte) (uint64, error) {
		conflict := fmt.Errorf("%w: kv %s/%s is not at revision %d", herald.ErrConflict, bucket, key, rev)
		if rev == 0 {
			return 0, conflict // to JetStream, revision 0 means "absent"
		}
		n, err := s.kv.Update(ctx, k, v, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return 0, conflict
		}
		return n, err
	})
}

// writeValue checks the names and runs write with the KV key and value.
func (s *Store) writeValue(ctx context.Context, op, bucket, key string, value []byte,
	write func(ctx context.Context, k string, v []byte) (uint64, error)) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if value == nil {
		value = []byte{}
	}
	rev, err := write(ctx, kvKey(bucket, key), value)
	if errors.Is(err, herald.ErrConflict) {
		return 0, err
	}
	if err != nil {
		return 0, s.mapErr(op, err)
	}
	return rev, nil
}

// GetValue implements herald.KV.
func (s *Store) GetValue(ctx context.Context, bucket, key string) ([]byte, error) {
	e, err := s.GetEntry(ctx, bucket, key)
	return e.Value, err
}

// GetEntry implements herald.KV.
func (s *Store) GetEntry(ctx context.Context, bucket, key string) (herald.KVEntry, error) {
	if err := s.check(); err != nil {
		return herald.KVEntry{}, err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return herald.KVEntry{}, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, kvKey(bucket, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return herald.KVEntry{}, fmt.Errorf("%s/%s: %w", bucket, key, herald.ErrNotFound)
	}
	if err != nil {
		return herald.KVEntry{}, s.mapErr("reading a value", err)
	}
	v := e.Value()
	if v == nil {
		v = []byte{}
	}
	return herald.KVEntry{Value: v, Revision: e.Revision()}, nil
}

// DeleteValue implements herald.KV. The value is erased, not only marked
// deleted: every message of the key still in the stream is overwritten on
// disk (a secure delete), then the key's subject is purged. A value
// replaced earlier by PutValue or UpdateValue was removed by the bucket's
// one-revision history when it was replaced; JetStream drops its bytes
// when it compacts the block that held it.
func (s *Store) DeleteValue(ctx context.Context, bucket, key string) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := herald.ValidateKVName(bucket, key); err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	return s.eraseSubject(ctx, "KV_"+s.cfg.namespace+"_kv", "$KV."+s.cfg.namespace+"_kv."+kvKey(bucket, key))
}

// ListValues implements herald.KV.
func (s *Store) ListValues(ctx context.Context, bucket string) (map[string][]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := herald.ValidateKVBucket(bucket); err != nil {
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

// eraseSubject overwrites every message of subject in stream with random
// bytes on disk (SecureDeleteMsg), newest first, when the kv bucket allows
// message deletes, then purges the subject.
func (s *Store) eraseSubject(ctx context.Context, stream, subject string) error {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return s.mapErr("deleting", err)
	}
	// Bounded, in case writers keep writing the key while it is erased.
	for i := 0; s.kvErasable && i < 1000; i++ {
		m, err := st.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return s.mapErr("deleting", err)
		}
		if err := st.SecureDeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return s.mapErr("deleting", err)
		}
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return s.mapErr("deleting", err)
	}
	return nil
}
