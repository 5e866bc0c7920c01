package console_test

import (
	"context"
	"testing"

	natsstore "github.com/heraldhq/herald/store/nats"
)

// TestConsoleMetricsNATS: on a NATS JetStream store the metrics page shows
// the cluster GET /v1/status reports: here one embedded node, its own
// leader, and the store's consumer of a push subscription.
func TestConsoleMetricsNATS(t *testing.T) {
	e, err := natsstore.StartEmbedded(natsstore.EmbeddedConfig{Dir: t.TempDir(), ServerName: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := natsstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	p := newPipelineOn(t, st, "nats", false)
	p.start()
	p.settled(p.record(1))
	tb := newTab(t, p.url)
	tb.open("/ui/metrics")
	tb.wait("the cluster", `document.getElementById('cluster-leader') !== null && document.querySelector('#cluster-nodes tr[data-node="solo"]') !== null`)
	if got := eval[string](tb, `document.getElementById('cluster-leader').textContent`); got != "solo" {
		t.Errorf("the leader shows %q, want solo", got)
	}
	if got := eval[string](tb, `document.querySelector('#cluster-nodes tr[data-node="solo"] .pill').textContent`); got != "leader" {
		t.Errorf("solo's state shows %q, want leader", got)
	}
	tb.shot("metrics-nats")
}
