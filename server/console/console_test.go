package console_test

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/server"
)

// login logs a tab in with a token through the login page.
func login(tb *tab, token, next string) {
	tb.t.Helper()
	tb.open(next)
	tb.wait("the login page", `location.pathname === '/ui/login' && document.querySelector('#token') !== null`)
	tb.do(chromedp.SendKeys(chromedp.ID("token"), token))
	tb.click("#login")
	tb.wait("the page after logging in", fmt.Sprintf(`location.pathname === %q && document.querySelector('#who .identity') !== null`, next))
}

// TestConsole runs the recording pipeline with a failing webhook and checks
// every page of the console in the browser, as the admin: what each shows,
// its filters, and its actions checked through the API.
func TestConsole(t *testing.T) {
	p := newPipeline(t, true)
	p.start()
	const n = 4
	ids := make([]string, n)
	for i := range n {
		ids[i] = p.record(i)
	}
	for _, id := range ids {
		p.settled(id)
	}
	if got := len(p.dlq()); got != n {
		t.Fatalf("%d dead letters of archiver, want %d", got, n)
	}

	tb := newTab(t, p.url)
	tb.open("/ui/")
	tb.wait("the redirect to the login page", `location.pathname === '/ui/login'`)
	tb.shot("login")
	login(tb, p.tokens["ops"], "/ui/")
	if c := eval[string](tb, `document.cookie`); strings.Contains(c, "herald_session") {
		t.Errorf("the session cookie is visible to JavaScript: %q", c)
	}

	t.Run("live", func(t *testing.T) {
		tb.t = t
		tb.wait("the pipeline's events", `document.querySelectorAll('#events .ev[data-name="desktop_notification.completed"]').length === 4`)
		names := eval[[]string](tb, `[...new Set([...document.querySelectorAll('#events .ev')].map(r => r.dataset.name))].sort()`)
		want := []string{"desktop_notification.completed", "meeting_notes_local.completed", "noise_reduction.completed", "recording.ended", "transcription_local.completed"}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("the live list shows %v, want %v", names, want)
		}
		// Newest first.
		if !eval[bool](tb, `(() => { const ps = [...document.querySelectorAll('#events .ev')].map(r => +r.dataset.position); return ps.every((p, i) => i === 0 || ps[i-1] > p); })()`) {
			t.Error("the live list is not newest first")
		}
		tb.shot("live")

		// Filter by a name pattern, then by subject.
		tb.setValue("f-name", "transcription_local.*")
		tb.click("#apply")
		tb.wait("the filtered list", `(() => { const rs = [...document.querySelectorAll('#events .ev')]; return rs.length === 4 && rs.every(r => r.dataset.name === 'transcription_local.completed'); })()`)
		if got := eval[string](tb, `location.search`); got != "?name=transcription_local.*" {
			t.Errorf("the filter is not in the page's address: %q", got)
		}
		tb.setValue("f-name", "")
		tb.setValue("f-subject", "recording/2")
		tb.click("#apply")
		tb.wait("the list of recording/2", `(() => { const rs = [...document.querySelectorAll('#events .ev')]; return rs.length === 5 && rs.every(r => r.querySelector('.s').textContent === 'recording/2'); })()`)

		// Pause: a new event is received but not drawn until Resume.
		tb.click("#pause")
		before := eval[int](tb, `+document.getElementById('events').dataset.received || 0`)
		p.api("POST", "/v1/events", map[string]any{"name": "recording.annotated", "subject": "recording/2", "data": map[string]any{"note": "paused"}}, nil)
		tb.wait("the paused list to receive the event", fmt.Sprintf(`+document.getElementById('events').dataset.received > %d`, before))
		if eval[int](tb, `document.querySelectorAll('#events .ev[data-name="recording.annotated"]').length`) != 0 {
			t.Error("a paused list drew a new event")
		}
		tb.click("#pause")
		tb.wait("the event after Resume", `document.querySelectorAll('#events .ev[data-name="recording.annotated"]').length === 1`)
	})

	t.Run("event", func(t *testing.T) {
		tb.t = t
		var page struct {
			Events []herald.Event `json:"events"`
		}
		p.api("GET", "/v1/events?name=transcription_local.completed&limit=1", nil, &page)
		e := page.Events[0]
		tb.open("/ui/events/" + url.PathEscape(e.ID))
		tb.wait("the event", `document.querySelector('#event-data .badge.sensitive') !== null && document.getElementById('subject-version').textContent !== '…'`)
		meta := eval[string](tb, `document.getElementById('event-meta').innerText`)
		for _, want := range []string{e.ID, "transcription_local.completed", e.Subject, "transcriber", e.CorrelationID, e.CausationID} {
			if !strings.Contains(meta, want) {
				t.Errorf("the event's metadata lacks %q:\n%s", want, meta)
			}
		}
		if got := eval[string](tb, `document.getElementById('subject-version').textContent`); !strings.HasPrefix(got, "5 ") {
			t.Errorf("subject version shows %q, want 5 (five events of the subject)", got)
		}
		if !strings.Contains(eval[string](tb, `document.getElementById('event-data').innerText`), "Ada takes the changelog") {
			t.Error("the admin does not see the decoded transcript")
		}
		tb.shot("event")
		// The cause link leads to the event before it.
		tb.click("#to-cause")
		tb.wait("the cause", `document.querySelector('h1') && document.querySelector('h1').textContent.includes('noise_reduction.completed')`)
		// Once its subject is forgotten, the field is shown shredded.
		p.api("POST", "/v1/subjects/"+url.PathEscape(e.Subject)+"/forget", nil, nil)
		tb.open("/ui/events/" + url.PathEscape(e.ID))
		tb.wait("the shredded field", `document.querySelector('#event-data .badge.shredded') !== null`)
		if strings.Contains(eval[string](tb, `document.getElementById('event-data').innerText`), "Ada takes the changelog") {
			t.Error("a forgotten subject's transcript is still shown")
		}
	})

	t.Run("correlation", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/correlations/" + url.PathEscape(ids[0]))
		tb.wait("the chain", `document.querySelectorAll('#tree .node').length === 5 && document.querySelectorAll('#timeline circle').length === 5`)
		// Each event sits under its cause: five levels deep.
		depth := eval[int](tb, `(() => { let d = 0, n = document.querySelector('#tree .node[data-name="desktop_notification.completed"]'); while (n && n.id !== 'tree') { if (n.classList.contains('node')) d++; n = n.parentElement; } return d; })()`)
		if depth != 5 {
			t.Errorf("desktop_notification.completed is at depth %d of the causal tree, want 5", depth)
		}
		archiver := eval[string](tb, `document.querySelector('#tree .node[data-name="meeting_notes_local.completed"] > ul.outcomes .outcome[data-sub="archiver"]').innerText`)
		if !strings.Contains(archiver, "dead-lettered after 3 attempts") || !strings.Contains(archiver, "503") {
			t.Errorf("archiver's outcome shows %q", archiver)
		}
		// Each of its three failed attempts with its duration and error.
		dead := p.chain(ids[0]).full("meeting_notes_local.completed", "archiver")
		if len(dead.History) != 3 {
			t.Fatalf("archiver's dead-lettered outcome has the history %+v, want 3 attempts", dead.History)
		}
		checkAttempts(t, tb, "meeting_notes_local.completed", dead)
		tb.shot("correlation")

		// A chain that runs while the page is open fills in live; its
		// archiver fails twice (503) and then succeeds.
		p.failing.Store(false)
		p.flaky.Store(2)
		tb.open("/ui/")
		tb.wait("the live page", `document.getElementById('events') !== null`)
		id := p.record(100)
		tb.open("/ui/correlations/" + url.PathEscape(id))
		tb.wait("the live chain", `document.querySelectorAll('#tree .node').length === 5 && document.querySelector('#tree .outcome[data-sub="archiver"][data-status="succeeded"]') !== null`)
		p.failing.Store(true)
		retried := p.chain(id).full("meeting_notes_local.completed", "archiver")
		if retried.Status != herald.OutcomeSucceeded || retried.Attempts != 3 || len(retried.History) != 2 {
			t.Fatalf("archiver's retried outcome is %+v, want succeeded after 3 attempts with 2 failed ones", retried)
		}
		checkAttempts(t, tb, "meeting_notes_local.completed", retried)
		if got := eval[string](tb, `document.querySelector('#tree .outcome[data-sub="archiver"] .pill').textContent`); got != "succeeded after 3 attempts" {
			t.Errorf("the retried outcome reads %q", got)
		}
	})

	t.Run("subscriptions", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/subscriptions")
		tb.wait("the subscriptions", `document.querySelectorAll('#subs-table tbody tr').length === 5 && document.querySelectorAll('#subs-table svg.spark polyline').length === 5`)
		dead := eval[string](tb, `document.querySelector('tr[data-sub="archiver"] td:nth-child(9)').textContent`)
		if dead != "4" {
			t.Errorf("archiver shows %q dead letters, want 4", dead)
		}
		tb.shot("subscriptions")

		// Create, replay from position 0, delete.
		tb.do(chromedp.SendKeys(chromedp.ID("new-name"), "console-test"), chromedp.SendKeys(chromedp.ID("new-filter"), "recording.ended"),
			chromedp.SendKeys(chromedp.ID("new-endpoint"), p.hooks.URL+"/ok"), chromedp.SendKeys(chromedp.ID("new-attempts"), "2"))
		tb.click("#create")
		tb.wait("the new subscription", `document.querySelector('tr[data-sub="console-test"]') !== null && document.getElementById('sub-secret') !== null`)
		var sub struct {
			Filter string `json:"filter"`
			Stats  struct {
				Handled uint64 `json:"handled"`
			} `json:"stats"`
			Position uint64 `json:"position"`
		}
		p.api("GET", "/v1/subscriptions/console-test", nil, &sub)
		if sub.Filter != "recording.ended" {
			t.Errorf("the created subscription has filter %q", sub.Filter)
		}
		tb.do(chromedp.SendKeys(chromedp.CSS(`input[data-replay="console-test"]`), "0"))
		tb.click(`tr[data-sub="console-test"] button[data-action="replay"]`)
		p.until("the replay to deliver every recording.ended", func() bool {
			p.api("GET", "/v1/subscriptions/console-test", nil, &sub)
			return sub.Stats.Handled >= 5
		})
		tb.click(`tr[data-sub="console-test"] button.danger`)
		tb.click(`tr[data-sub="console-test"] button.danger`)
		tb.wait("the deleted subscription to go", `document.querySelector('tr[data-sub="console-test"]') === null`)
		if code, _ := p.call("ops", "GET", "/v1/subscriptions/console-test", nil); code != http.StatusNotFound {
			t.Errorf("the deleted subscription answers %d", code)
		}
	})

	t.Run("dlq", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/dlq")
		tb.wait("the dead letters", `document.querySelectorAll('#dlq-archiver article.dl').length === 4`)
		if got := eval[int](tb, `document.querySelectorAll('#dlq-archiver article.dl')[0].querySelectorAll('ol.errors li').length`); got != 3 {
			t.Errorf("a dead letter shows %d errors, want its 3 attempts", got)
		}
		if errs := eval[[]string](tb, `[...document.querySelectorAll('#dlq-archiver article.dl')[0].querySelectorAll('ol.errors li')].map(li => li.innerText)`); len(errs) != 3 ||
			slices.ContainsFunc(errs, func(s string) bool { return !shownDuration.MatchString(s) }) {
			t.Errorf("a dead letter's errors read %q, want each with its duration", errs)
		}
		tb.shot("dlq")
		dls := p.dlq()
		byEvent := map[string]string{} // dead letter id → correlation id
		for _, d := range dls {
			byEvent[d.ID] = d.Event.CorrelationID
		}
		first := eval[string](tb, `document.querySelectorAll('#dlq-archiver article.dl')[0].dataset.id`)
		second := eval[string](tb, `document.querySelectorAll('#dlq-archiver article.dl')[1].dataset.id`)

		// Redrive one: with the webhook mended it is delivered.
		p.failing.Store(false)
		tb.click(fmt.Sprintf(`article.dl[data-id="%s"] button[data-action="redrive"]`, first))
		p.until("the redriven event to be delivered", func() bool {
			return p.chain(byEvent[first]).outcome("meeting_notes_local.completed", "archiver") == "succeeded"
		})
		p.failing.Store(true)
		tb.open("/ui/correlations/" + url.PathEscape(byEvent[first]))
		tb.wait("the redriven outcome", `document.querySelector('#tree .outcome[data-sub="archiver"][data-redriven]') !== null`)
		if got := eval[string](tb, `document.querySelector('#tree .outcome[data-sub="archiver"] .pill').textContent`); got != "redriven, succeeded after 4 attempts" {
			t.Errorf("the redriven outcome reads %q", got)
		}
		tb.open("/ui/dlq")
		tb.wait("the dead letters", `document.querySelectorAll('#dlq-archiver article.dl').length === 3`)
		// Discard one.
		tb.click(fmt.Sprintf(`article.dl[data-id="%s"] button[data-action="discard"]`, second))
		p.until("the discarded dead letter", func() bool {
			return p.chain(byEvent[second]).outcome("meeting_notes_local.completed", "archiver") == "discarded"
		})
		tb.wait("two dead letters left", `document.querySelectorAll('#dlq-archiver article.dl').length === 2`)
		if got := len(p.dlq()); got != 2 {
			t.Fatalf("%d dead letters after a redrive and a discard, want 2", got)
		}
		// Discard all of the subscription's (a second click confirms).
		tb.click(`#dlq-archiver .group-head button.danger`)
		tb.click(`#dlq-archiver .group-head button.danger`)
		tb.wait("the empty queue", `document.getElementById('dlq-empty') !== null`)
		if got := len(p.dlq()); got != 0 {
			t.Fatalf("%d dead letters after Discard all", got)
		}
		// Redrive all of the subscription's: an event refused at once (a
		// permanent error, 1 attempt) whose redrive succeeds took 2
		// attempts, as a plain retry would, and still reads redriven.
		p.refusing.Store(true)
		id := p.record(200)
		p.settled(id)
		p.refusing.Store(false)
		tb.wait("the new dead letter", `document.querySelectorAll('#dlq-archiver article.dl').length === 1`)
		p.failing.Store(false)
		tb.click(`#dlq-archiver button[data-action="redrive-all"]`)
		p.until("the redriven subscription", func() bool {
			return p.chain(id).outcome("meeting_notes_local.completed", "archiver") == "succeeded"
		})
		p.failing.Store(true)
		tb.wait("the empty queue again", `document.getElementById('dlq-empty') !== null`)
		tb.open("/ui/correlations/" + url.PathEscape(id))
		tb.wait("the outcome redriven after a permanent error", `document.querySelector('#tree .outcome[data-sub="archiver"][data-status="succeeded"]') !== null`)
		if got := eval[string](tb, `document.querySelector('#tree .outcome[data-sub="archiver"] .pill').textContent`); got != "redriven, succeeded after 2 attempts" {
			t.Errorf("the outcome of a redrive after a permanent error reads %q", got)
		}
	})

	t.Run("schemas", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/schemas")
		tb.wait("the schema", `document.querySelector('#schema-view .badge.sensitive') !== null`)
		if got := eval[string](tb, `document.querySelector('#schema-view h2').textContent`); got != "transcription_local.completed v1" {
			t.Errorf("the schema shown is %q", got)
		}
		tb.shot("schemas")
	})

	t.Run("tokens", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/tokens")
		tb.wait("the tokens", `document.querySelectorAll('#tokens-table tbody tr').length === 6`)
		tb.do(chromedp.SendKeys(chromedp.ID("tok-identity"), "viewer"), chromedp.SendKeys(chromedp.ID("tok-subscribe"), "recording.>"))
		tb.click("#tok-create")
		tb.wait("the new token", `document.getElementById('new-token') !== null && document.querySelectorAll('#tokens-table tbody tr').length === 7`)
		secret := eval[string](tb, `document.getElementById('new-token').textContent`)
		if !strings.HasPrefix(secret, "hrld_") {
			t.Fatalf("the new token reads %q", secret)
		}
		tb.shot("tokens")
		var list struct {
			Tokens []server.Token `json:"tokens"`
		}
		p.api("GET", "/v1/tokens", nil, &list)
		var id string
		for _, tk := range list.Tokens {
			if tk.Identity == "viewer" {
				id = tk.ID
			}
		}
		tb.click(fmt.Sprintf(`tr[data-token="%s"] button.danger`, id))
		tb.click(fmt.Sprintf(`tr[data-token="%s"] button.danger`, id))
		tb.wait("the revoked token to go", fmt.Sprintf(`document.querySelector('tr[data-token="%s"]') === null`, id))
		if code, _ := p.call("", "GET", "/v1/status", nil); code != http.StatusUnauthorized {
			t.Errorf("no token: %d", code)
		}
		req, _ := http.NewRequest("GET", p.url+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the revoked token still works: %v %v", resp.StatusCode, err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/metrics")
		tb.wait("the charts", `document.querySelectorAll('#chart-publish path.line').length === 1 && document.querySelectorAll('#chart-latency path.line').length >= 1`)
		head := eval[string](tb, `document.getElementById('server-status').innerText`)
		if !strings.Contains(head, "log head") {
			t.Errorf("the server's status shows %q", head)
		}
		tb.shot("metrics")
	})

	t.Run("logout", func(t *testing.T) {
		tb.t = t
		tb.open("/ui/")
		// Log out once the page has done its requests (one still on its
		// way would be refused, 401, as it should).
		tb.wait("the live page", `document.getElementById('logout') !== null && document.getElementById('live-status').textContent === 'live'`)
		tb.click("#logout")
		tb.wait("the login page", `location.pathname === '/ui/login'`)
		tb.open("/ui/metrics")
		tb.wait("the login page again", `location.pathname === '/ui/login'`)
	})
	tb.t = t
}

// TestConsoleRestrictedToken logs in with a token that may read
// recording.> only: the console shows only its events, hides the admin
// pages, and logging out or revoking the token ends the session.
func TestConsoleRestrictedToken(t *testing.T) {
	p := newPipeline(t, true)
	p.start()
	id := p.record(1)
	p.settled(id)

	tb := newTab(t, p.url)
	login(tb, p.tokens["recorder"], "/ui/")
	tb.wait("its events", `document.querySelectorAll('#events .ev').length === 1`)
	if got := eval[[]string](tb, `[...document.querySelectorAll('#events .ev')].map(r => r.dataset.name)`); len(got) != 1 || got[0] != "recording.ended" {
		t.Errorf("the recorder sees %v, want only recording.ended", got)
	}
	if got := eval[[]string](tb, `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`); strings.Contains(strings.Join(got, " "), "dlq") || strings.Contains(strings.Join(got, " "), "tokens") {
		t.Errorf("the recorder's navigation offers %v", got)
	}
	// A new event of its own arrives live; others' do not.
	p.record(2)
	tb.wait("the live event", `document.querySelectorAll('#events .ev').length === 2`)
	p.settled(p.record(3))
	tb.wait("the third recording", `document.querySelectorAll('#events .ev').length === 3`)
	if got := eval[int](tb, `document.querySelectorAll('#events .ev:not([data-name="recording.ended"])').length`); got != 0 {
		t.Errorf("the recorder sees %d events beyond its rights", got)
	}
	// A filter beyond its rights is refused with the API's reason.
	tb.allow("/v1/events?")
	tb.allow("/v1/stream?")
	tb.setValue("f-name", "transcription_local.>")
	tb.click("#apply")
	tb.wait("the refusal", `!document.getElementById('live-error').hidden`)
	// Its correlation chain shows only the events it may read.
	tb.open("/ui/correlations/" + url.PathEscape(id))
	tb.wait("its chain", `document.querySelectorAll('#tree .node').length === 1`)
	tb.open("/ui/subscriptions")
	tb.wait("no subscriptions", `document.getElementById('subs').innerText.includes('No push subscriptions')`)
	tb.click("#logout")
	tb.wait("the login page", `location.pathname === '/ui/login'`)

	// Revoking a token ends its sessions.
	var created struct {
		Token string `json:"token"`
		Info  struct {
			ID string `json:"id"`
		} `json:"info"`
	}
	p.api("POST", "/v1/tokens", map[string]any{"identity": "temp", "subscribe": []string{"recording.>"}}, &created)
	tb2 := newTab(t, p.url)
	login(tb2, created.Token, "/ui/")
	tb2.wait("its events", `document.querySelectorAll('#events .ev').length === 3`)
	p.api("DELETE", "/v1/tokens/"+created.Info.ID, nil, nil)
	tb2.allow("/v1/")
	tb2.open("/ui/subscriptions")
	tb2.wait("the login page", `location.pathname === '/ui/login'`)
}

// TestConsoleOpenServer: a server without tokens needs no login, and its
// console acts with every right.
func TestConsoleOpenServer(t *testing.T) {
	p := newPipeline(t, false)
	p.start()
	tb := newTab(t, p.url)
	tb.open("/ui/")
	tb.wait("the live page", `document.getElementById('events') !== null && document.getElementById('who').innerText.includes('open server')`)
	id := p.record(1)
	p.settled(id)
	tb.wait("the chain's events", `document.querySelectorAll('#events .ev').length === 5`)
	tb.open("/ui/login")
	tb.wait("the redirect away from the login page", `location.pathname === '/ui/'`)
	tb.open("/ui/dlq")
	tb.wait("the dead letter", `document.querySelectorAll('#dlq-archiver article.dl').length === 1`)
}

// checkAttempts checks that the correlation page shows o, a subscription's
// outcome of the event name, with each attempt of its history — its
// number, its duration as the API gives it and shown rounded, its error
// — and, when o succeeded, the successful attempt with its duration.
func checkAttempts(t *testing.T, tb *tab, name string, o herald.Outcome) {
	t.Helper()
	type row struct {
		Attempt  int    `json:"attempt"`
		Duration string `json:"duration"`
		Failed   bool   `json:"failed"`
		Text     string `json:"text"`
	}
	rows := eval[[]row](tb, fmt.Sprintf(`[...document.querySelectorAll('#tree .node[data-name=%q] > ul.outcomes .outcome[data-sub=%q] ol.attempts li.attempt')].map(li => (
		{attempt: +li.dataset.attempt, duration: li.dataset.duration, failed: li.classList.contains('failed'), text: li.innerText}))`, name, o.Subscription))
	want := make([]row, 0, len(o.History)+1)
	for _, ae := range o.History {
		want = append(want, row{Attempt: ae.Attempt, Duration: ae.Duration.String(), Failed: true, Text: ae.Error})
	}
	if o.Status == herald.OutcomeSucceeded {
		want = append(want, row{Attempt: o.Attempts, Duration: o.Duration.String(), Text: "succeeded"})
	}
	if len(rows) != len(want) {
		t.Fatalf("%s's outcome shows %d attempts %+v, want %d: %+v", o.Subscription, len(rows), rows, len(want), want)
	}
	for i, r := range rows {
		w := want[i]
		if r.Attempt != w.Attempt || r.Duration != w.Duration || r.Failed != w.Failed || !strings.Contains(r.Text, w.Text) {
			t.Errorf("%s's attempt row %d is %+v, want %+v", o.Subscription, i, r, w)
		}
		d, _ := herald.ParseDuration(w.Duration)
		if !showsDuration(r.Text, d.Std()) {
			t.Errorf("%s's attempt row %d reads %q, which does not show its duration %v", o.Subscription, i, r.Text, d.Std())
		}
	}
}

// shownDuration finds a duration as the console shows it ("850 µs",
// "12.3 ms", "1.25 s").
var shownDuration = regexp.MustCompile(`(\d+)(?:\.(\d+))? (µs|ms|s)\b`)

// showsDuration reports whether text shows d, rounded to the digits it
// shows.
func showsDuration(text string, d time.Duration) bool {
	m := shownDuration.FindStringSubmatch(text)
	if m == nil {
		return false
	}
	v, err := strconv.ParseFloat(m[1]+"."+m[2]+"0", 64)
	if err != nil {
		return false
	}
	unit := map[string]time.Duration{"µs": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
	half := 0.5 * math.Pow10(-len(m[2])) // half the last digit shown, in unit
	return math.Abs(float64(d)/float64(unit)-v) <= half*1.0001
}
