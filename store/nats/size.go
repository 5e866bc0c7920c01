package nats

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald"
)

var _ herald.Sizer = (*Store)(nil)

// Size implements herald.Sizer: the bytes JetStream holds in herald's
// streams, the events and the buckets behind idempotency, subscription
// state and the KV (per replica: a stream replicated three times takes
// three times this across the cluster).
func (s *Store) Size(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, herald.ErrClosed
	}
	info, err := s.events.Info(ctx)
	if err != nil {
		return 0, err
	}
	n := int64(info.State.Bytes)
	ids, err := s.js.Stream(ctx, s.idsStreamName())
	if err != nil {
		return 0, err
	}
	n += int64(ids.CachedInfo().State.Bytes)
	for _, b := range []jetstream.KeyValue{s.ids, s.subs, s.kv} {
		if b == nil {
			continue
		}
		st, err := b.Status(ctx)
		if err != nil {
			return 0, err
		}
		n += int64(st.Bytes())
	}
	return n, nil
}
