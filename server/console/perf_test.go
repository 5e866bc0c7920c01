package console_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
)

// fill stores n events, 1,000 to a batch.
func fill(t *testing.T, bus *herald.Bus, n int) {
	t.Helper()
	ctx := context.Background()
	batch := make([]*herald.Event, 0, 1000)
	for i := range n {
		batch = append(batch, &herald.Event{Name: "recording.ended", Subject: fmt.Sprintf("recording/%d", i%5000),
			Data: []byte(fmt.Sprintf(`{"recording_id":"recording/%d","duration":90.5}`, i))})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := bus.PublishBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// TestConsoleFirstEvents measures, in the browser, the time from the
// start of the navigation to /ui/ until the live list shows its first
// events, with many events stored (-console.events; 1,000,000 for the
// figure in docs/console.md). The page reads only the newest events.
func TestConsoleFirstEvents(t *testing.T) {
	p := newPipeline(t, false)
	start := time.Now()
	fill(t, p.bus, *storedFlag)
	t.Logf("stored %d events in %v", *storedFlag, time.Since(start).Round(time.Millisecond))
	tb := newTab(t, p.url)
	// Once to warm the caches (as an operator's second visit), then measured.
	var ms []float64
	for range 3 {
		tb.open("/ui/")
		tb.wait("the first events", `performance.getEntriesByName('herald:first-events').length > 0`)
		ms = append(ms, eval[float64](tb, `performance.getEntriesByName('herald:first-events')[0].startTime`))
		if testing.Verbose() {
			t.Log(eval[string](tb, `performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + e.startTime.toFixed(0) + '→' + e.responseEnd.toFixed(0)).join('\n')`))
		}
	}
	rows := eval[int](tb, `+document.getElementById('events').dataset.rows`)
	if rows != 100 {
		t.Errorf("the live list holds %d events, want the newest 100", rows)
	}
	t.Logf("FIGURE first events on /ui/ with %d events stored: %.0f ms (first visit), %.0f ms, %.0f ms (later visits)", *storedFlag, ms[0], ms[1], ms[2])
	tb.shot("live-many")
}

// TestConsoleLongTasks publishes 2,000 events a second while /ui/ is
// open and counts the browser's long tasks (PerformanceObserver
// 'longtask': main-thread tasks over 50 ms) and the longest of them; the
// goal is none over 100 ms. It also checks that the list kept up and
// stayed capped.
func TestConsoleLongTasks(t *testing.T) {
	p := newPipeline(t, false)
	// The page opens on a log that holds events, as a live server's does:
	// its first rows are drawn while it loads (the first draw of the list
	// costs a task of about 100-150 ms, once; it is counted with the
	// loading), not at the stream's first burst.
	warm := make([]*herald.Event, 100)
	for i := range warm {
		warm[i] = &herald.Event{Name: "transcription_local.progress", Subject: fmt.Sprintf("recording/%d", i),
			Data: []byte(fmt.Sprintf(`{"recording_id":"recording/%d","percent":%d}`, i, i))}
	}
	if _, err := p.bus.PublishBatch(context.Background(), warm); err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, p.url)
	tb.open("/ui/")
	tb.wait("the live stream", `document.getElementById('live-status').textContent === 'live'`)
	tb.wait("rows drawn", `+document.getElementById('events').dataset.rows > 0`)
	// Every long task since the page opened is observed (buffered), each
	// with its start; __t0 marks when publishing begins, so that the page's
	// own loading is told apart from the stream.
	tb.do(chromedp.Evaluate[chromedp.Void](`window.__long = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true}); window.__t0 = performance.now();`))
	const rate, per = 2000, 20 // events a second, events a batch
	secs := *rateSecs
	ctx := context.Background()
	tick := time.NewTicker(time.Second * per / rate)
	defer tick.Stop()
	sent := 0
	begin := time.Now()
	for sent < rate*secs {
		<-tick.C
		batch := make([]*herald.Event, per)
		for i := range batch {
			batch[i] = &herald.Event{Name: "transcription_local.progress", Subject: fmt.Sprintf("recording/%d", sent%100),
				Data: []byte(fmt.Sprintf(`{"recording_id":"recording/%d","percent":%d}`, sent%100, sent%100))}
			sent++
		}
		if _, err := p.bus.PublishBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(begin)
	tb.wait("every event received", fmt.Sprintf(`+document.getElementById('events').dataset.received >= %d`, sent))
	t0 := eval[float64](tb, `window.__t0`)
	tasks := eval[[][2]float64](tb, `window.__long`)
	rows := eval[int](tb, `+document.getElementById('events').dataset.rows`)
	if rows != 500 {
		t.Errorf("the live list holds %d events, want its cap of 500", rows)
	}
	var longs, loading []float64
	for _, lt := range tasks {
		if lt[0] < t0 {
			loading = append(loading, lt[1])
		} else {
			longs = append(longs, lt[1])
			t.Logf("long task %.0f ms, %.1f s after publishing began", lt[1], (lt[0]-t0)/1000)
		}
	}
	worst, over := 0.0, 0
	for _, d := range longs {
		worst = max(worst, d)
		if d > 100 {
			over++
		}
	}
	t.Logf("FIGURE %d events in %v (%.0f/s) on /ui/: %d long tasks (> 50 ms), %d over 100 ms, longest %.0f ms; while the page loaded, before publishing: %d long tasks %v ms",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), len(longs), over, worst, len(loading), loading)
}
