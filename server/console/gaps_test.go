package console_test

import (
	"fmt"
	"testing"
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
