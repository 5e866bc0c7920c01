package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

// rowsAre is a JavaScript expression true when the live list holds n
// events and every row drawn (those in view) passes the row test ok, a
// function of the row element.
func rowsAre(n int, ok string) string {
	return fmt.Sprintf(`(() => { const rs = [...document.querySelectorAll('#events .ev')]; return +document.getElementById('events').dataset.rows === %d && rs.length > 0 && rs.length <= %d && rs.every(%s); })()`, n, n, ok)
}

// settledChains records recordings 0 to n-1 and waits until each one's
// chain has settled; it returns their correlation ids.
func (p *pipeline) settledChains(n int) []string {
	p.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = p.record(i)
	}
	for _, id := range ids {
		p.settled(id)
	}
	return ids
}

// TestConsoleLiveFilterCorrelationSource filters the live list by a
// correlation id and then by a source: the list holds only the matching
// events, those from before the filter and those published after it, the
// filter is in the page's address, and Clear brings back every event.
func TestConsoleLiveFilterCorrelationSource(t *testing.T) {
	p := newPipeline(t, true)
	p.start()
	const n = 3
	ids := p.settledChains(n)
	tb := newTab(t, p.url)
	login(tb, p.tokens["ops"], "/ui/")
	all := rowsAre(5*n, `r => true`)
	tb.wait("the pipeline's events", all)

	// By correlation id: the five events of the second chain.
	tb.setValue("f-correlation_id", ids[1])
	tb.click("#apply")
	mine := fmt.Sprintf(`r => r.querySelector('.c').title === %q`, ids[1])
	tb.wait("the chain of "+ids[1], rowsAre(5, mine))
	if got, want := eval[string](tb, `location.search`), "?correlation_id="+ids[1]; got != want {
		t.Errorf("the page's address has %q, want %q", got, want)
	}
	// Published while filtered: an event of another correlation, then one
	// of this one; once the second is drawn, the first has been passed over.
	p.api("POST", "/v1/events", map[string]any{"name": "recording.annotated", "subject": "recording/0", "correlation_id": ids[0], "data": map[string]any{"note": "other"}}, nil)
	p.api("POST", "/v1/events", map[string]any{"name": "recording.annotated", "subject": "recording/1", "correlation_id": ids[1], "data": map[string]any{"note": "mine"}}, nil)
	tb.wait("the new event of "+ids[1], rowsAre(6, mine))
	tb.click("#filters button.secondary") // Clear
	tb.wait("every event again", rowsAre(5*n+2, `r => true`))
	if got := eval[string](tb, `location.search + document.getElementById('f-correlation_id').value`); got != "" {
		t.Errorf("after Clear the address and the field hold %q", got)
	}

	// By source: the recorder's recording.ended events only.
	tb.setValue("f-source_plugin", "recorder")
	tb.click("#apply")
	recorder := `r => r.querySelector('.src').textContent === 'recorder' && r.dataset.name === 'recording.ended'`
	tb.wait("the recorder's events", rowsAre(n, recorder))
	if got := eval[string](tb, `location.search`); got != "?source_plugin=recorder" {
		t.Errorf("the page's address has %q, want ?source_plugin=recorder", got)
	}
	// Published while filtered: the admin's event, then the recorder's
	// (whose chain follows, from other sources).
	p.api("POST", "/v1/events", map[string]any{"name": "recording.annotated", "subject": "recording/0", "data": map[string]any{"note": "by ops"}}, nil)
	p.settled(p.record(n))
	tb.wait("the recorder's new event", rowsAre(n+1, recorder))
	tb.click("#filters button.secondary")
	tb.wait("every event again", rowsAre(5*(n+1)+3, `r => true`))
	if got := eval[string](tb, `location.search + document.getElementById('f-source_plugin').value`); got != "" {
		t.Errorf("after Clear the address and the field hold %q", got)
	}
}

// holdingHook is a webhook that keeps the id of each event it accepts, in
// order, and refuses every delivery (503) while held.
type holdingHook struct {
	held atomic.Bool
	mu   sync.Mutex
	ids  []string
}

func (h *holdingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if h.held.Load() {
		http.Error(w, "held by the test", http.StatusServiceUnavailable)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, r.Header.Get("Ce-Id"))
}

// accepted returns the ids of the events accepted so far.
func (h *holdingHook) accepted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ids)
}

// TestConsoleReplayFromTime replays a subscription from a time between two
// batches of events on the subscriptions page: its checkpoint moves to just
// before the first event at or after that time, and the second batch, and
// only it, is delivered again (in any order: its events' subjects differ).
func TestConsoleReplayFromTime(t *testing.T) {
	p := newPipeline(t, true)
	hook := &holdingHook{}
	hs := httptest.NewServer(hook)
	t.Cleanup(hs.Close)
	p.api("PUT", "/v1/subscriptions/replayer", map[string]any{"filter": "recording.>", "endpoint": hs.URL,
		"max_attempts": 100, "backoff": map[string]any{"initial": "100ms", "max": "200ms"}}, nil)
	events := func() []herald.Event {
		var page struct {
			Events []herald.Event `json:"events"`
		}
		p.api("GET", "/v1/events?after=0&limit=100", nil, &page)
		return page.Events
	}
	delivered := func(n int) {
		p.until(fmt.Sprintf("%d deliveries", n), func() bool { return len(hook.accepted()) >= n })
	}
	subscription := func() (position uint64) {
		var sub struct {
			Position uint64 `json:"position"`
		}
		p.api("GET", "/v1/subscriptions/replayer", nil, &sub)
		return sub.Position
	}

	const n = 3
	for i := range n {
		p.record(i)
	}
	delivered(n)
	// The replay time is the millisecond after the first batch's last
	// event (the console sends times to the millisecond); the second batch
	// is published once the clock has passed it.
	from := events()[n-1].Timestamp.Truncate(time.Millisecond).Add(time.Millisecond)
	testwait.For(t, "the clock to pass the replay time", func() bool { return time.Now().After(from) })
	for i := n; i < 2*n; i++ {
		p.record(i)
	}
	delivered(2 * n)
	all := events()
	if len(all) != 2*n || all[n].Timestamp.Before(from) {
		t.Fatalf("%d events, the second batch's first at %v, want %d events and the second batch at or after %v", len(all), all[n].Timestamp, 2*n, from)
	}
	var second []string
	for _, e := range all[n:] {
		second = append(second, e.ID)
	}

	tb := newTab(t, p.url)
	login(tb, p.tokens["ops"], "/ui/subscriptions")
	tb.wait("the subscription", `document.querySelector('tr[data-sub="replayer"]') !== null`)
	// Held, the webhook keeps the checkpoint where the replay put it.
	hook.held.Store(true)
	tb.do(chromedp.SendKeys(chromedp.CSS(`input[data-replay="replayer"]`), from.UTC().Format("2006-01-02T15:04:05.000Z07:00")))
	tb.click(`tr[data-sub="replayer"] button[data-action="replay"]`)
	want := all[n].Position - 1
	p.until(fmt.Sprintf("the checkpoint to move to %d", want), func() bool { return subscription() == want })
	tb.wait("the page to show the new position", fmt.Sprintf(`document.querySelector('tr[data-sub="replayer"] td:nth-child(4)').textContent === %q`, fmt.Sprint(want)))

	hook.held.Store(false)
	delivered(3 * n)
	p.until("the checkpoint back at the head", func() bool { return subscription() == all[2*n-1].Position })
	// Each event of the batch has a subject of its own: retried, they may
	// be delivered in any order.
	got := hook.accepted()[2*n:]
	slices.Sort(got)
	slices.Sort(second)
	if !slices.Equal(got, second) {
		t.Errorf("the replay delivered %v, want the second batch %v", got, second)
	}
}

// chartSum is a JavaScript expression: the sum of the values a line of a
// chart draws (its path's points read back through the chart's own grid,
// whose first line is at 0 and last at the top label's value), rounded;
// -1 before the chart is drawn.
func chartSum(chart, line string) string {
	return fmt.Sprintf(`(() => {
		const svg = document.getElementById(%q), path = svg && svg.querySelector(%q);
		if (!path) return -1;
		const grid = [...svg.querySelectorAll('line.grid')], labels = [...svg.querySelectorAll('text.axis')];
		const y0 = +grid[0].getAttribute('y1'), yTop = +grid[grid.length - 1].getAttribute('y1');
		const top = labels[grid.length - 1].textContent.replace(/[^0-9.k]/g, '');
		const max = parseFloat(top) * (top.endsWith('k') ? 1000 : 1);
		let sum = 0;
		for (const [, y] of path.getAttribute('d').matchAll(/[ML][-0-9.]+,([-0-9.]+)/g)) sum += max * (y0 - y) / (y0 - yTop);
		return Math.round(sum);
	})()`, chart, line)
}

// TestConsoleErrorsChart dead-letters events of the pipeline's failing
// webhook and checks the metrics page's errors chart: its failed-attempts
// line adds up to the subscriptions' failed attempts, and its
// dead-lettered line to their dead letters.
func TestConsoleErrorsChart(t *testing.T) {
	p := newPipeline(t, true)
	p.start()
	const n = 2
	p.settledChains(n)
	var subs struct {
		Subscriptions []struct {
			Stats struct {
				Failed       int `json:"failed"`
				DeadLettered int `json:"dead_lettered"`
			} `json:"stats"`
		} `json:"subscriptions"`
	}
	p.api("GET", "/v1/subscriptions", nil, &subs)
	failed, dead := 0, 0
	for _, s := range subs.Subscriptions {
		failed += s.Stats.Failed
		dead += s.Stats.DeadLettered
	}
	if failed == 0 || dead != n {
		t.Fatalf("the subscriptions count %d failed attempts and %d dead letters, want some and %d", failed, dead, n)
	}

	tb := newTab(t, p.url)
	t.Logf("%d failed attempts, %d dead letters", failed, dead)
	login(tb, p.tokens["ops"], "/ui/metrics")
	tb.wait("the errors chart", fmt.Sprintf(`%s === %d && %s === %d`,
		chartSum("chart-errors", "path.line.c2"), failed, chartSum("chart-errors", "path.line.c3"), dead))
}
