package console_test

// The console's tests drive a real headless Chromium (Debian's chromium
// package; .ci/run installs it) through the DevTools protocol with
// chromedp. One browser serves every test of the package; each test opens
// its tabs in a browser context of its own (its own cookies). A tab fails
// its test on any uncaught JavaScript exception, any request that fails,
// any answer of 400 or more the test did not expect, and any error the
// browser logs (a Content-Security-Policy violation among them).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/testwait"
)

var (
	screenshots = flag.Bool("console.screenshots", false, "save a PNG of each page to docs/console/")
	storedFlag  = flag.Int("console.events", 20000, "events stored before measuring the time to the first events (1000000 for the documented figure)")
	rateSecs    = flag.Int("console.rate-seconds", 5, "seconds of publishing at 2,000 events/s while counting long tasks")
)

// shared is the package's one browser, started by the first test that
// needs it and stopped by TestMain.
var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	dir    string
	err    error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
		for range 50 { // the browser's children may write for a moment more
			if os.RemoveAll(shared.dir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

var errNoChromium = errors.New("no Chromium found (install Debian's chromium package, or set HERALD_CHROMIUM to a Chrome or Chromium binary)")

func findChromium() string {
	if p := os.Getenv("HERALD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser returns the shared browser's context, starting it once; without
// a Chromium the test is skipped, loudly.
func browser(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(func() {
		path := findChromium()
		if path == "" {
			shared.err = errNoChromium
			return
		}
		dir, err := os.MkdirTemp("", "herald-chromium-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		// The flags keep a headless Chromium from reaching any network
		// of its own: no QUIC, no background updates, sync or first-run
		// work, in a profile made for this run.
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 860),
			chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
			chromedp.Flag("no-default-browser-check", true),
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.Flag("disable-extensions", true),
			chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("mute-audio", true),
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		if err := chromedp.Do(bctx); err != nil {
			bcancel()
			acancel()
			shared.err = fmt.Errorf("starting %s: %w", path, err)
			return
		}
		shared.ctx, shared.cancel = bctx, func() { bcancel(); acancel() }
	})
	if errors.Is(shared.err, errNoChromium) {
		t.Skipf("\n\n!!! BROWSER TESTS SKIPPED: %v !!!\n\n", shared.err)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// tab is one browser tab in a browser context of its own.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
	allowed  []string // URL parts whose error answers the test expects
}

// newTab opens a tab on the server at base, in a new browser context.
func newTab(t *testing.T, base string) *tab {
	t.Helper()
	tb := &tab{t: t, base: base}
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	tb.ctx = ctx
	t.Cleanup(func() {
		cancel()
		tb.check()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 860)); err != nil {
		t.Fatal(err)
	}
	return tb
}

// allow says that error answers to URLs containing part are expected.
func (tb *tab) allow(part string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.allowed = append(tb.allowed, part)
}

func (tb *tab) expected(url string) bool {
	for _, a := range tb.allowed {
		if strings.Contains(url, a) {
			return true
		}
	}
	return false
}

func (tb *tab) problem(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = append(tb.problems, fmt.Sprintf(format, args...))
}

func (tb *tab) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		tb.problem("uncaught JavaScript exception: %s (%s:%d)", msg, d.URL, d.LineNumber)
	case *network.EventLoadingFailed:
		// A stream or a fetch cut short by leaving the page is canceled,
		// not failed.
		if ev.Canceled || strings.Contains(ev.ErrorText, "ERR_ABORTED") {
			return
		}
		tb.problem("request failed: %s %s", ev.ErrorText, ev.BlockedReason)
	case *network.EventResponseReceived:
		tb.mu.Lock()
		ok := ev.Response.Status < 400 || tb.expected(ev.Response.URL)
		tb.mu.Unlock()
		if !ok {
			tb.problem("answer %d to %s", ev.Response.Status, ev.Response.URL)
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		tb.mu.Lock()
		ok := ev.Entry.URL != "" && tb.expected(ev.Entry.URL) && strings.Contains(ev.Entry.Text, "status of")
		tb.mu.Unlock()
		if !ok {
			tb.problem("browser error: %s (%s)", ev.Entry.Text, ev.Entry.URL)
		}
	}
}

// check fails the test on every problem seen so far, and forgets them.
func (tb *tab) check() {
	tb.t.Helper()
	tb.mu.Lock()
	ps := tb.problems
	tb.problems = nil
	tb.mu.Unlock()
	for _, p := range ps {
		tb.t.Errorf("in the browser: %s", p)
	}
}

// do runs actions, failing the test on an error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.check()
		tb.t.Fatal(err)
	}
}

// open navigates to a path of the server.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.base + path))
}

// wait polls a JavaScript expression until it is truthy (a promise is
// awaited). A navigation under way is waited out.
func (tb *tab) wait(what, expr string) {
	tb.t.Helper()
	js := "Promise.resolve((() => { try { return (" + expr + "); } catch { return false; } })()).then(v => !!v, () => false)"
	var err error
	if testwait.Until(60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		defer cancel()
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		return (err == nil && ok) || tb.ctx.Err() != nil
	}) && tb.ctx.Err() == nil {
		return
	}
	tb.check()
	text, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`(document.getElementById('main') || document.body).innerText.slice(0, 2000)`))
	tb.t.Fatalf("waiting for %s (%s): timed out (last error: %v)\nthe page shows:\n%s", what, expr, err, text)
}

// click clicks the first element that matches a CSS selector, with the
// mouse. A page that redraws the element between finding it and clicking
// it (its lists refresh) gets the click again on the new element.
func (tb *tab) click(css string) {
	tb.t.Helper()
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css)))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "node") {
			break
		}
	}
	if err != nil {
		tb.check()
		tb.t.Fatalf("clicking %s: %v", css, err)
	}
}

// setValue sets the value of the input with this id.
func (tb *tab) setValue(id, v string) {
	tb.t.Helper()
	tb.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = %q`, id, v)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// shot saves the page as docs/console/<name>.png with -console.screenshots.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	if !*screenshots {
		return
	}
	// Let the last frame paint, and leave no caret or hover behind.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	b, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// TestBrowserReportsProblems proves the harness: an uncaught exception, a
// request the Content-Security-Policy blocks and an unexpected error
// answer are each seen.
func TestBrowserReportsProblems(t *testing.T) {
	p := newPipeline(t, false)
	tb := newTab(t, p.url)
	tb.open("/ui/")
	tb.wait("the live page", `document.querySelector('#events') !== null`)
	tb.do(chromedp.Evaluate[chromedp.Void](`setTimeout(() => { throw new Error('deliberate') }, 0);
		fetch('/v1/nowhere').catch(() => {});
		fetch('http://127.0.0.1:1/').catch(() => {});`))
	// The browser reports each problem when it happens, on its own time:
	// wait for all three (on a loaded machine that may take seconds).
	wants := []string{"deliberate", "answer 404", "Content Security Policy"}
	var got string
	testwait.Until(60*time.Second, func() bool {
		tb.mu.Lock()
		got = strings.Join(tb.problems, "\n")
		tb.mu.Unlock()
		for _, want := range wants {
			if !strings.Contains(got, want) {
				return false
			}
		}
		return true
	})
	tb.mu.Lock()
	tb.problems = nil
	tb.mu.Unlock()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("the harness did not report %q; it reported:\n%s", want, got)
		}
	}
}
