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
// the same value and counts nothing twice. Only that handle writes its
// key, so processes sharing the bucket never contend for a counter.
//
// A handle that closes marks its key closed. The next handle to count the
// subscription folds the closed keys into its own: it claims each with a
// compare-and-set (so two handles starting at once never both fold one),
// adds its totals to its own, lists it (and what it had folded) in its own
// value, and deletes it once its own value is stored. The subscription's
// totals are the sum of its keys but those some key lists as folded, so a
// folded key counts once whether or not it is deleted yet, and a key
// claimed by a handle that died before storing its value still counts
// itself. So the keys of a subscription are its live handles' and those of
// handles that died without closing, not one per process run.

// countKeyPrefix is the key prefix of sub's counts.
func countKeyPrefix(sub string) string { return "n." + encodeToken(sub) + "." }

// countValue is the value of a count key.
type countValue struct {
	herald.SubscriptionCounts
	// Closed: the handle closed; its totals may be folded into another's.
	Closed bool `json:"closed,omitempty"`
	// Folded lists the handles whose totals this value includes.
	Folded []string `json:"folded,omitempty"`
	// FoldedBy is the handle that claimed this key to fold it.
	FoldedBy string `json:"folded_by,omitempty"`
}

// handleCounts are this handle's totals of one subscription.
type handleCounts struct {
	mu     sync.Mutex
	total  herald.SubscriptionCounts
	folded []string // handles whose totals total includes
	tidy   []string // keys of folded handles, deleted once total is stored
	ready  bool     // closed keys were folded (or tried)
}

// countEntry locks this handle's totals of sub and returns the key and
// value holding them with c added. done(true) keeps the new totals (the
// commit succeeded); either way done unlocks. A handle commits one
// subscription's progress from one committer at a time, so the lock is
// never waited for in practice. The first entry of a subscription folds
// the keys of closed handles (see above).
func (s *Store) countEntry(ctx context.Context, sub string, c herald.SubscriptionCounts) (key string, value []byte, done func(committed bool), err error) {
	s.countOnce.Do(func() { s.countHandle = encodeToken(herald.NewID()) })
	v, _ := s.counted.LoadOrStore(sub, &handleCounts{})
	hc := v.(*handleCounts)
	hc.mu.Lock()
	if !hc.ready {
		hc.ready = true
		s.foldClosed(ctx, sub, hc)
	}
	next := hc.total.Add(c)
	b, err := json.Marshal(countValue{SubscriptionCounts: next, Folded: hc.folded})
	if err != nil {
		hc.mu.Unlock()
		return "", nil, nil, fmt.Errorf("nats store: commit: %w", err)
	}
	return countKeyPrefix(sub) + s.countHandle, b, func(committed bool) {
		if committed {
			hc.total = next
			s.tidyFolded(ctx, hc)
		}
		hc.mu.Unlock()
	}, nil
}

// foldClosed claims the closed, unclaimed count keys of sub that no key
// lists as folded, and adds them to hc (hc.mu is held). Folding is
// tidying: a key it cannot claim stays and counts itself.
func (s *Store) foldClosed(ctx context.Context, sub string, hc *handleCounts) {
	type entry struct {
		key string
		rev uint64
		v   countValue
	}
	var es []entry
	listed := map[string]bool{}
	present := map[string]bool{}
	prefix := countKeyPrefix(sub)
	err := s.scanBucketSeq(ctx, s.cfg.namespace+"_subs", prefix+"*", func(key string, seq uint64, b []byte) error {
		var v countValue
		if json.Unmarshal(b, &v) != nil {
			return nil // corrupt: SubscriptionCounts says so
		}
		h := strings.TrimPrefix(key, prefix)
		present[h] = true
		for _, f := range v.Folded {
			listed[f] = true
		}
		if h != s.countHandle {
			es = append(es, entry{key, seq, v})
		}
		return nil
	})
	if err != nil {
		return
	}
	for _, e := range es {
		h := strings.TrimPrefix(e.key, prefix)
		if !e.v.Closed || e.v.FoldedBy != "" || listed[h] {
			continue
		}
		claimed := e.v
		claimed.FoldedBy = s.countHandle
		b, err := json.Marshal(claimed)
		if err != nil {
			continue
		}
		if _, err := s.subs.Update(ctx, e.key, b, e.rev); err != nil {
			continue // another handle claimed it, or it changed
		}
		hc.total = hc.total.Add(e.v.SubscriptionCounts)
		hc.folded = append(hc.folded, h)
		hc.tidy = append(hc.tidy, e.key)
		for _, f := range e.v.Folded {
			if present[f] { // not deleted yet: it must stay excluded
				hc.folded = append(hc.folded, f)
				hc.tidy = append(hc.tidy, prefix+f)
			}
		}
	}
}

// tidyFolded deletes the keys hc folded, now that its value listing them
// is stored (hc.mu is held). A key that stays is excluded all the same.
func (s *Store) tidyFolded(ctx context.Context, hc *handleCounts) {
	for _, k := range hc.tidy {
		if s.purgeSubject(ctx, s.subsStream, s.subsSubject(k)) != nil {
			return
		}
	}
	hc.tidy = nil
}

// closeCounts marks this handle's count keys closed, so that the next
// handle folds them, and deletes what it folded.
func (s *Store) closeCounts(ctx context.Context) {
	s.counted.Range(func(k, v any) bool {
		sub, hc := k.(string), v.(*handleCounts)
		hc.mu.Lock()
		defer hc.mu.Unlock()
		if !hc.ready {
			return true // never counted here: no key
		}
		b, err := json.Marshal(countValue{SubscriptionCounts: hc.total, Closed: true, Folded: hc.folded})
		if err != nil {
			return true
		}
		if _, err := s.subs.Put(ctx, countKeyPrefix(sub)+s.countHandle, b); err == nil {
			s.tidyFolded(ctx, hc)
		}
		return true
	})
}

// SubscriptionCounts implements herald.CountingStore: the sum of every
// handle's totals of each subscription.
func (s *Store) SubscriptionCounts(ctx context.Context) (map[string]herald.SubscriptionCounts, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	type keyed struct {
		sub, handle string
		v           countValue
	}
	var keys []keyed
	listed := map[[2]string]bool{} // subscription and handle of each folded key
	err := s.scanBucket(ctx, s.cfg.namespace+"_subs", "n.*.*", func(key string, b []byte) error {
		tok, handle, _ := strings.Cut(strings.TrimPrefix(key, "n."), ".")
		sub, ok := decodeToken(tok)
		var v countValue
		if err := json.Unmarshal(b, &v); !ok || err != nil {
			return fmt.Errorf("nats store: subscription counts %q are corrupt: %w", key, herald.ErrIncompatibleStore)
		}
		for _, f := range v.Folded {
			listed[[2]string{sub, f}] = true
		}
		keys = append(keys, keyed{sub, handle, v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]herald.SubscriptionCounts{}
	for _, k := range keys {
		if !listed[[2]string{k.sub, k.handle}] {
			out[k.sub] = out[k.sub].Add(k.v.SubscriptionCounts)
		}
	}
	return out, nil
}

// deleteCounts removes every handle's counts of sub, and forgets this
// handle's.
func (s *Store) deleteCounts(ctx context.Context, sub string) error {
	s.counted.Delete(sub)
	return s.purgeSubject(ctx, s.subsStream, s.subsSubject(countKeyPrefix(sub)+"*"))
}
