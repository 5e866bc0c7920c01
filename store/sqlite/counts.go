package sqlite

import (
	"context"
	"strings"

	"github.com/heraldhq/herald"
)

var _ herald.CountingStore = (*Store)(nil)

// A subscription's counts live in the meta table, one row per count
// ("count/handled/<subscription>"), added to in the commit's transaction.

// countPrefix starts the meta keys of subscription counts.
const countPrefix = "count/"

// countKinds names the counts in meta keys.
var countKinds = [...]string{"handled", "failed", "retried", "dead_lettered"}

// countValues are c's counts in countKinds' order.
func countValues(c herald.SubscriptionCounts) [len(countKinds)]uint64 {
	return [...]uint64{c.Handled, c.Failed, c.Retried, c.DeadLettered}
}

// addCounts adds c to sub's counts in tx.
func (tx *wtx) addCounts(sub string, c herald.SubscriptionCounts) error {
	for i, v := range countValues(c) {
		if v == 0 {
			continue
		}
		if _, err := tx.conn.ExecContext(tx.ctx,
			`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value`,
			countPrefix+countKinds[i]+"/"+sub, int64(v)); err != nil {
			return err
		}
	}
	return nil
}

// deleteCounts sets sub's counts back to zero in tx.
func (tx *wtx) deleteCounts(sub string) error {
	for _, k := range countKinds {
		if _, err := tx.conn.ExecContext(tx.ctx, `DELETE FROM meta WHERE key = ?`, countPrefix+k+"/"+sub); err != nil {
			return err
		}
	}
	return nil
}

// SubscriptionCounts implements herald.CountingStore.
func (s *Store) SubscriptionCounts(ctx context.Context) (map[string]herald.SubscriptionCounts, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// "count/" < key < "count0": every key with the prefix.
	rows, err := s.rdb.QueryContext(ctx, `SELECT key, value FROM meta WHERE key > ? AND key < ?`, countPrefix, "count0")
	if err != nil {
		return nil, s.fail(ctx, "subscription counts", err)
	}
	defer rows.Close()
	out := map[string]herald.SubscriptionCounts{}
	for rows.Next() {
		var key string
		var v int64
		if err := rows.Scan(&key, &v); err != nil {
			return nil, s.fail(ctx, "subscription counts", err)
		}
		kind, sub, ok := strings.Cut(strings.TrimPrefix(key, countPrefix), "/")
		if !ok {
			continue
		}
		c := out[sub]
		switch kind {
		case "handled":
			c.Handled = uint64(v)
		case "failed":
			c.Failed = uint64(v)
		case "retried":
			c.Retried = uint64(v)
		case "dead_lettered":
			c.DeadLettered = uint64(v)
		}
		out[sub] = c
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "subscription counts", err)
	}
	return out, nil
}
