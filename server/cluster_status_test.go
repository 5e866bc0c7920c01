package server_test

import (
	"encoding/json"
	"testing"

	"github.com/heraldhq/herald/api"
	natsstore "github.com/heraldhq/herald/store/nats"
)

// TestStatusCluster: GET /v1/status shows the cluster of a NATS store
// (here one node, its own leader), in the shape openapi.json describes,
// and no cluster on a store that has none.
func TestStatusCluster(t *testing.T) {
	st, err := natsstore.OpenEmbedded(t.Context(), natsstore.EmbeddedConfig{Dir: t.TempDir(), ServerName: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	a := e.do("GET", "/v1/status", nil)
	var got api.ServerStatus
	if err := json.Unmarshal(a.body, &got); a.status != 200 || err != nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	c := got.Cluster
	if c == nil || c.Leader != "solo" || c.Replicas != 1 || len(c.Nodes) != 1 || !c.Nodes[0].Leader || c.Error != "" {
		t.Fatalf("cluster: %s", a.body)
	}

	m := newEnv(t)
	a = m.do("GET", "/v1/status", nil)
	var raw map[string]any
	if err := json.Unmarshal(a.body, &raw); a.status != 200 || err != nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if _, ok := raw["cluster"]; ok {
		t.Fatalf("a memory store has a cluster: %s", a.body)
	}
}
