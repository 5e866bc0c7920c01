package nats_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	herald "github.com/heraldhq/herald"
	natsstore "github.com/heraldhq/herald/store/nats"
	"github.com/heraldhq/herald/store/storetest"
)

// TestConformance runs the Store conformance suite against one real
// JetStream server with file storage; each test gets its own namespace
// (its own streams and buckets).
func TestConformance(t *testing.T) {
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
		s, err := natsstore.Connect(context.Background(), srv.ClientURL(), append(opts, natsstore.WithNamespace(name))...)
		if err != nil {
			t.Fatal(err)
		}
		ns[s] = name
		return s
	}
	storetest.Run(t, func(t *testing.T) herald.Store {
		return connect(t, fmt.Sprintf("t%d", n.Add(1)))
	}, storetest.Features{
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
		WakeTimeout: 5 * time.Second,
	})
}
