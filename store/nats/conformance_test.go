package nats_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/heraldhq/herald/store/storetest"
)

// TestConformance runs the Store conformance suite against one real
// JetStream server with file storage; each test gets its own namespace
// (its own streams and buckets).
//
// It runs twice: as configured by default, and with every commit's
// outcomes written as one batch (see outcomes.go), which a commit does by
// default only from 16 outcomes on.
func TestConformance(t *testing.T) {
	t.Run("Default", func(t *testing.T) { conformance(t, nil) })
	t.Run("OutcomeBatches", func(t *testing.T) {
		conformance(t, []string{"Checkpoints", "Outcomes", "DeadLetters", "Counts", "Prune", "Limits", "Durability", "Bus"},
			natsstore.WithOutcomeBatchMin(1))
	})
}

// conformance runs the groups of the suite named in only (all when nil)
// on stores opened with common.
func conformance(t *testing.T, only []string, common ...natsstore.Option) {
	dir := t.TempDir()
	srv, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var n atomic.Int64
	ns := map[herald.Store]string{}
	connect := func(t *testing.T, name string, opts ...natsstore.Option) *natsstore.Store {
		t.Helper()
		opts = append(append(opts, common...), natsstore.WithNamespace(name))
		s, err := natsstore.Connect(context.Background(), srv.ClientURL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		ns[s] = name
		return s
	}
	storetest.Run(t, func(t *testing.T) herald.Store {
		return connect(t, fmt.Sprintf("t%d", n.Add(1)))
	}, storetest.Features{
		Only: only,
		Reopen: func(t *testing.T, closed herald.Store) herald.Store {
			s := connect(t, ns[closed])
			t.Cleanup(func() { s.Close() })
			return s
		},
		OpenSecond: func(t *testing.T, s herald.Store) (herald.Store, error) {
			return connect(t, ns[s]), nil
		},
		SharedAcrossProcesses: true,
		DataDir:               func(*testing.T, herald.Store) string { return dir },
		NewBounded: func(t *testing.T, max int) herald.Store {
			return connect(t, fmt.Sprintf("t%d", n.Add(1)), natsstore.WithMaxEvents(int64(max)))
		},
	})
}
