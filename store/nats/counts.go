package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/heraldhq/herald"
)

var _ herald.CountingStore = (*Store)(nil)

// Subscription counts: every Store handle keeps its own running totals of
// each subscription under the state key "n.<sub>.<handle>" and writes them
// whole with each commit that changes them (pipelined with its outcomes,
// or in its atomic batch), so a commit tried again after a failure writes
// the same value and counts nothing twice. Only that
// handle writes its key, so processes sharing the bucket never contend for
// a counter; the subscription's totals are the sum of its keys, the keys
// of handles that have closed (earlier runs of a process) included.

// countKeyPrefix is the key prefix of sub's counts.
func countKeyPrefix(sub string) string { return "n." + encodeToken(sub) + "." }

// handleCounts are this handle's totals of one subscription.
type handleCounts struct {
	mu    sync.Mutex
	total herald.SubscriptionCounts
}

// countEntry locks this handle's totals of sub and returns the key and
// value holding them with c added. done(true) keeps the new totals (the
// commit succeeded); either way done unlocks. A handle commits one
// subscription's progress from one committer at a time, so the lock is
// never waited for in practice.
func (s *Store) countEntry(sub string, c herald.SubscriptionCounts) (key string, value []byte, done func(committed bool), err error) {
	s.countOnce.Do(func() { s.countHandle = encodeToken(herald.NewID()) })
	v, _ := s.counted.LoadOrStore(sub, &handleCounts{})
	hc := v.(*handleCounts)
	hc.mu.Lock()
	next := hc.total.Add(c)
	b, err := json.Marshal(next)
	if err != nil {
		hc.mu.Unlock()
		return "", nil, nil, fmt.Errorf("nats store: commit: %w", err)
	}
	return countKeyPrefix(sub) + s.countHandle, b, func(committed bool) {
		if committed {
			hc.total = next
		}
		hc.mu.Unlock()
	}, nil
}

// SubscriptionCounts implements herald.CountingStore: the sum of every
// handle's totals of each subscription.
func (s *Store) SubscriptionCounts(ctx context.Context) (map[string]herald.SubscriptionCounts, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	out := map[string]herald.SubscriptionCounts{}
	err := s.scanBucket(ctx, s.cfg.namespace+"_subs", "n.*.*", func(key string, v []byte) error {
		tok, _, _ := strings.Cut(strings.TrimPrefix(key, "n."), ".")
		sub, ok := decodeToken(tok)
		var c herald.SubscriptionCounts
		if err := json.Unmarshal(v, &c); !ok || err != nil {
			return fmt.Errorf("nats store: subscription counts %q are corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		out[sub] = out[sub].Add(c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deleteCounts removes every handle's counts of sub, and forgets this
// handle's.
func (s *Store) deleteCounts(ctx context.Context, sub string) error {
	s.counted.Delete(sub)
	return s.purgeSubject(ctx, s.subsStream, s.subsSubject(countKeyPrefix(sub)+"*"))
}
