package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

var (
	abuseDuration = flag.Duration("abuse.duration", 0,
		"run TestAbuse this long, holding the well-behaved client to the goals themselves (default: a short run with margins)")
	abuseOnly = flag.String("abuse.only", "",
		"run only these abuses of TestAbuse, comma-separated: slowloris, flood, paths, bodies, pages, push, sse (default: all)")
)

// abuseOn reports whether TestAbuse runs the abuse called name.
func abuseOn(name string) bool {
	return *abuseOnly == "" || slices.Contains(strings.Split(*abuseOnly, ","), name)
}

// The goals of the abuse run (docs/security.md, "Under abuse").
const (
	goalP99    = 100 * time.Millisecond
	goalRSS    = 512 << 20
	abuseFDCap = 4096 // the server's RLIMIT_NOFILE in the run
)

// The abuse run's tokens (plain; the configuration hashes them).
const (
	abuseAdmin   = "hrld_abuse-ops"
	abuseGood    = "hrld_abuse-good"
	abuseMallory = "hrld_abuse-mallory"
	abuseReader  = "hrld_abuse-reader"
	abuseScraper = "hrld_abuse-scraper"
)

const abuseConfig = `tokens:
  - {identity: ops, token: ` + abuseAdmin + `, admin: true}
  - {identity: good, token: ` + abuseGood + `, publish: ["good.>"], subscribe: ["good.>"]}
  - {identity: mallory, token: ` + abuseMallory + `, publish: ["mal.>"], subscribe: [">"], rate: 200, burst: 400}
  - {identity: reader, token: ` + abuseReader + `, subscribe: [">"], rate: 200, burst: 400}
  - {identity: scraper, token: ` + abuseScraper + `, subscribe: [">"], rate: 20, burst: 40}
`

// tally counts outcomes by kind of request.
type tally struct {
	mu sync.Mutex
	m  map[string]map[string]int
}

func (t *tally) add(kind, outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]map[string]int{}
	}
	if t.m[kind] == nil {
		t.m[kind] = map[string]int{}
	}
	t.m[kind][outcome]++
}

// status is the outcome of an HTTP exchange: its status code, or what
// went wrong on the connection.
func status(resp *http.Response, err error) string {
	switch {
	case err == nil:
		return strconv.Itoa(resp.StatusCode)
	case os.IsTimeout(err) || strings.Contains(err.Error(), "deadline"):
		return "timeout"
	case strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "EOF"):
		return "closed"
	case strings.Contains(err.Error(), "refused"):
		return "refused"
	}
	return "error"
}

// from is a dialer whose connections leave from the loopback address ip,
// so that each kind of client is its own client address to the server.
func from(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

func clientFrom(ip string, conns int) *http.Client {
	tr := &http.Transport{DialContext: from(ip).DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// heraldProc is a `herald serve` child process.
type heraldProc struct {
	cmd  *exec.Cmd
	url  string
	data string
	logs string
}

// startHerald builds cmd/herald and runs `herald serve` on a loopback port
// with a temporary data folder, the abuse tokens, and at most fdCap open
// files.
func startHerald(t *testing.T, fdCap int) *heraldProc {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build herald with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building herald: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfg, []byte(abuseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &heraldProc{data: filepath.Join(dir, "data"), logs: filepath.Join(dir, "herald.log")}
	logf, err := os.Create(p.logs)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// sh sets the limit and execs herald: the process keeps its pid. The
	// graceful stop may take 50 s (the default is 30 s), under the 60 s
	// stop waits for: a machine loaded by other test runs made one stop
	// exit 1 (its log was not kept then; a timeout is the likely cause).
	p.cmd = exec.Command("sh", "-c", `ulimit -n "$0" && exec "$1" serve --addr 127.0.0.1:0 --data "$2" --config "$3" --shutdown-timeout 50s`,
		strconv.Itoa(fdCap), bin, p.data, cfg)
	p.cmd.Stderr = logf
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		t.Fatalf("herald serve said nothing: %v", lines.Err())
	}
	_, rest, ok := strings.Cut(lines.Text(), "listening on ")
	if !ok {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		t.Fatalf("first line %q does not say where it listens", lines.Text())
	}
	p.url, _, _ = strings.Cut(rest, ",")
	go io.Copy(io.Discard, stdout)
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *heraldProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("herald serve stopped with %v; the end of its log:\n%s", err, p.logTail(4096))
		}
	case <-time.After(60 * time.Second):
		// SIGQUIT makes the Go runtime write every goroutine's stack to
		// the log before it exits: what the stop was waiting for.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		t.Errorf("herald serve did not stop within 60 s of SIGTERM; its log, with its goroutines:\n%s", p.logTail(256<<10))
	}
}

// logTail is the last n bytes of the server's log.
func (p *heraldProc) logTail(n int) string {
	b, err := os.ReadFile(p.logs)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-n):])
}

// procFigures reads the process's resident set (now and its peak) and
// its open file descriptors from /proc.
func procFigures(pid int) (rss, hwm int64, fds int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return rss, hwm, len(ents), err
}

// cpuSeconds reads the CPU time (user and system) process pid used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// loadAvg is the machine's one-minute load average.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// latencies collects durations safely.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantile returns the q-quantile (0 < q <= 1) and the count.
func (l *latencies) quantile(q float64) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))], len(s)
}

// hangingEndpoint accepts connections and reads them, never answering.
type hangingEndpoint struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newHangingEndpoint(t *testing.T) *hangingEndpoint {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingEndpoint{l: l}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() { defer h.wg.Done(); io.Copy(io.Discard, c) }()
		}
	}()
	return h
}

func (h *hangingEndpoint) close() {
	h.l.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// on is n when TestAbuse runs the abuse called name, else 0.
func on(name string, n int) int {
	if abuseOn(name) {
		return n
	}
	return 0
}

// abuseRun is one run of TestAbuse.
type abuseRun struct {
	t       *testing.T
	url     string
	refused tally
	wg      sync.WaitGroup
}

// loop runs f in n goroutines until ctx ends.
func (r *abuseRun) loop(ctx context.Context, n int, f func(ctx context.Context, i int)) {
	for i := range n {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for ctx.Err() == nil {
				f(ctx, i)
			}
		}()
	}
}

func (r *abuseRun) request(ctx context.Context, cl *http.Client, method, path, token string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, body)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	return cl.Do(req)
}

// exchange makes a request, reads the answer away and counts its outcome
// under kind (unless ctx ended).
func (r *abuseRun) exchange(ctx context.Context, kind string, cl *http.Client, method, path, token string, body io.Reader) {
	resp, err := r.request(ctx, cl, method, path, token, body)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if ctx.Err() == nil {
		r.refused.add(kind, status(resp, err))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// slowloris opens connections that send a request's headers, one byte of
// the 1,000 they promise, and nothing more; half carry a token that may
// publish. Each reconnects when the server closes it.
func (r *abuseRun) slowloris(ctx context.Context, conns int) {
	host := strings.TrimPrefix(r.url, "http://")
	r.loop(ctx, conns, func(ctx context.Context, i int) {
		c, err := from("127.0.0.11").DialContext(ctx, "tcp", host)
		if err != nil {
			if ctx.Err() == nil {
				r.refused.add("slowloris", "dial error")
				sleepCtx(ctx, 100*time.Millisecond)
			}
			return
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		defer c.Close()
		auth := ""
		if i%2 == 0 {
			auth = "Authorization: Bearer " + abuseMallory + "\r\n"
		}
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: herald\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if ctx.Err() != nil {
			return
		}
		kind := "slowloris (no token)"
		if auth != "" {
			kind = "slowloris (token)"
		}
		r.refused.add(kind, status(resp, err))
		sleepCtx(ctx, 100*time.Millisecond)
	})
}

// connFlood holds as many connections from one address as it can,
// sending nothing, and opens a new one whenever one is closed.
func (r *abuseRun) connFlood(ctx context.Context, dialers, perDialer int) {
	host := strings.TrimPrefix(r.url, "http://")
	for range dialers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			slots := make(chan struct{}, perDialer)
			var held sync.WaitGroup
			defer held.Wait()
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				c, err := from("127.0.0.12").DialContext(ctx, "tcp", host)
				if err != nil {
					<-slots
					if ctx.Err() == nil {
						r.refused.add("connection flood", "dial error")
						sleepCtx(ctx, 10*time.Millisecond)
					}
					continue
				}
				held.Add(1)
				go func() {
					defer held.Done()
					defer func() { <-slots }()
					stop := context.AfterFunc(ctx, func() { c.Close() })
					defer stop()
					start := time.Now()
					c.Read(make([]byte, 1))
					c.Close()
					if ctx.Err() != nil {
						return
					}
					if time.Since(start) < time.Second {
						r.refused.add("connection flood", "closed at once")
					} else {
						r.refused.add("connection flood", "closed when idle")
					}
				}()
			}
		}()
	}
}

// seed publishes mb megabytes of 90 KB events as the admin, in batches.
func (r *abuseRun) seed(ctx context.Context, cl *http.Client, mb int) {
	data := `{"blob":"` + strings.Repeat("x", 90_000) + `"}`
	var batch bytes.Buffer
	for n := 0; n < mb*1_000_000/90_000; n += 40 {
		batch.Reset()
		batch.WriteString(`{"events":[`)
		for i := range 40 {
			if i > 0 {
				batch.WriteByte(',')
			}
			fmt.Fprintf(&batch, `{"name":"big.seed","data":%s}`, data)
		}
		batch.WriteString(`]}`)
		resp, err := r.request(ctx, cl, "POST", "/v1/events", abuseAdmin, bytes.NewReader(batch.Bytes()))
		if err != nil {
			r.t.Fatalf("seeding: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			r.t.Fatalf("seeding: %d", resp.StatusCode)
		}
	}
}

// goodClient is the well-behaved client: it publishes small events with
// ids of its own and reads its events back, page after page.
type goodClient struct {
	r                 *abuseRun
	cl                *http.Client
	publish, read, hz latencies
	acked             []string
	seen              map[string]int // by the reader during the run
	errors            tally
}

func (g *goodClient) run(ctx context.Context, wg *sync.WaitGroup, interval time.Duration) {
	g.seen = map[string]int{}
	wg.Add(3)
	go func() { // publisher
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			id := fmt.Sprintf("good-%d", n)
			body := fmt.Sprintf(`{"id":%q,"name":"good.tick","data":{"n":%d}}`, id, n)
			for ctx.Err() == nil { // until acknowledged: the id makes a retry safe
				start := time.Now()
				resp, err := g.r.request(context.Background(), g.cl, "POST", "/v1/events", abuseGood, strings.NewReader(body))
				d := time.Since(start)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				g.publish.add(d)
				if err == nil && (resp.StatusCode == 201 || resp.StatusCode == 200) {
					g.acked = append(g.acked, id)
					break
				}
				g.errors.add("publish", status(resp, err))
				sleepCtx(ctx, 50*time.Millisecond)
			}
			sleepCtx(ctx, interval)
		}
	}()
	go func() { // reader
		defer wg.Done()
		after := uint64(0)
		for ctx.Err() == nil {
			after = g.readPage(after, g.seen)
			sleepCtx(ctx, 5*interval)
		}
	}()
	go func() { // health probe
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			resp, err := g.r.request(context.Background(), g.cl, "GET", "/healthz", "", nil)
			g.hz.add(time.Since(start))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				g.errors.add("healthz", status(resp, err))
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}()
}

// readPage reads the client's events after a position, counts them in
// seen, and returns where the next page starts.
func (g *goodClient) readPage(after uint64, seen map[string]int) uint64 {
	start := time.Now()
	resp, err := g.r.request(context.Background(), g.cl, "GET", fmt.Sprintf("/v1/events?name=good.%%3E&after=%d&limit=1000", after), abuseGood, nil)
	if err != nil {
		g.read.add(time.Since(start))
		g.errors.add("read", status(resp, err))
		return after
	}
	defer resp.Body.Close()
	var page struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
		NextAfter uint64 `json:"next_after"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	g.read.add(time.Since(start))
	if err != nil || resp.StatusCode != 200 {
		g.errors.add("read", status(resp, err))
		return after
	}
	for _, e := range page.Events {
		seen[e.ID]++
	}
	if page.NextAfter > after {
		return page.NextAfter
	}
	return after
}

// TestAbuse runs the abuse of docs/security.md against one `herald serve`
// process while a well-behaved client publishes and reads, and checks the
// goals: the well-behaved client loses nothing and keeps its p99 under
// 100 ms, the server's resident set stays under 512 MB and its file
// descriptors under their cap. By default it runs about 20 s, checks
// that every request of the well-behaved client succeeds and allows its
// p99 a wide margin (a noisy CI machine); -abuse.duration=5m runs longer
// and holds the p99 to the goal itself. Run it with -v for the figures.
func TestAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("the abuse run takes 30 s")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the abuse run reads the server's figures from /proc")
	}
	// The short run shares two cores with its own attackers and, under
	// go test ./..., with other packages' tests: on a loaded machine its
	// p99 ranged from 0.4 to 1.7 s. It is held to 3 s, which catches
	// stalls, not the goal; every request of the well-behaved client must
	// succeed. The long run is held to the goal.
	d, p99Limit, seedMB := 20*time.Second, 30*goalP99, 100
	if *abuseDuration > 0 {
		d, p99Limit = *abuseDuration, goalP99
	}
	p := startHerald(t, abuseFDCap)
	defer p.stop(t)
	pid := p.cmd.Process.Pid
	r := &abuseRun{t: t, url: p.url}
	ctx := t.Context()

	// The log holds large events before the abuse starts.
	admin := clientFrom("127.0.0.3", 4)
	defer admin.CloseIdleConnections()
	seedStart := time.Now()
	r.seed(ctx, admin, seedMB)
	t.Logf("seeded %d MB in %v", seedMB, time.Since(seedStart).Round(time.Millisecond))

	// Figures of the server process, sampled every 100 ms.
	var peakFDs atomic.Int64
	var peakHeld, peakHeap atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			if _, _, fds, err := procFigures(pid); err == nil && int64(fds) > peakFDs.Load() {
				peakFDs.Store(int64(fds))
			}
			if n%10 == 0 {
				held, heap := scrapeHeld(admin, p.url)
				if held > peakHeld.Load() {
					peakHeld.Store(held)
				}
				if heap > peakHeap.Load() {
					peakHeap.Store(heap)
				}
			}
			select {
			case <-tick.C:
			case <-sampleCtx.Done():
				return
			}
		}
	}()

	// The tenant's push subscriptions to an endpoint that never answers:
	// first at the most concurrency a subscription may have, then at what
	// its caps allow, more than it may own.
	// It closes after the server has stopped (cleanups run after the
	// deferred stop): closed first, it refused every delivery, and 20
	// subscriptions dead-lettering 90 KB events as fast as they could
	// kept the stop writing for over a minute on a loaded machine.
	hang := newHangingEndpoint(t)
	t.Cleanup(hang.close)
	mal := clientFrom("127.0.0.16", 8)
	defer mal.CloseIdleConnections()
	for i := range 25 {
		if !abuseOn("push") {
			break
		}
		for _, conc := range []int{1024, 3} {
			body := fmt.Sprintf(`{"filter":">","endpoint":"http://%s/hook","concurrency":%d}`, hang.l.Addr(), conc)
			r.exchange(ctx, "push subscription", mal, "PUT", fmt.Sprintf("/v1/subscriptions/mal-%d", i), abuseMallory, strings.NewReader(body))
		}
	}

	cpu0, self0, load0 := cpuSeconds(pid), cpuSeconds(os.Getpid()), loadAvg()
	abuseCtx, stopAbuse := context.WithTimeout(ctx, d)
	defer stopAbuse()
	attackers := startAttackers(t, r, abuseCtx, d)
	good := &goodClient{r: r, cl: clientFrom("127.0.0.2", 4)}
	defer good.cl.CloseIdleConnections()
	var goodWG sync.WaitGroup
	good.run(abuseCtx, &goodWG, 10*time.Millisecond)

	<-abuseCtx.Done()
	goodWG.Wait()
	attackCPU := attackers.wait(t)
	stopSampling()
	sampler.Wait()
	serverCPU, selfCPU, load1 := cpuSeconds(pid)-cpu0, cpuSeconds(os.Getpid())-self0+attackCPU, loadAvg()
	rss, hwm, fds, err := procFigures(pid)
	if err != nil {
		t.Fatal(err)
	}

	// Every acknowledged event is there exactly once, read page by page
	// during the run and read again from the start.
	final := map[string]int{}
	for after := uint64(0); ; {
		next := good.readPage(after, final)
		if next == after {
			break
		}
		after = next
	}
	lost, dup := 0, 0
	for _, id := range good.acked {
		if final[id] == 0 {
			lost++
		}
	}
	for _, seen := range []map[string]int{final, good.seen} {
		for _, n := range seen {
			if n > 1 {
				dup++
			}
		}
	}

	pubP50, pubN := good.publish.quantile(0.5)
	pubP99, _ := good.publish.quantile(0.99)
	readP50, readN := good.read.quantile(0.5)
	readP99, _ := good.read.quantile(0.99)
	hzP99, hzN := good.hz.quantile(0.99)
	auditSize := dirSize(p.data, "audit.log")
	logInfo, _ := os.Stat(p.logs)

	var tab strings.Builder
	w := tabwriter.NewWriter(&tab, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "abuse run of %v against one herald serve (%d MB of 90 KB events in the log)\n", d, seedMB)
	fmt.Fprintf(w, "kind\toutcomes\n")
	kinds := make([]string, 0, len(r.refused.m))
	for k := range r.refused.m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "%s\t%s\n", k, outcomes(r.refused.m[k]))
	}
	fmt.Fprintf(w, "well-behaved publish\t%d requests, p50 %v, p99 %v\n", pubN, ms(pubP50), ms(pubP99))
	fmt.Fprintf(w, "well-behaved read\t%d pages, p50 %v, p99 %v\n", readN, ms(readP50), ms(readP99))
	fmt.Fprintf(w, "/healthz\t%d probes, p99 %v\n", hzN, ms(hzP99))
	fmt.Fprintf(w, "well-behaved errors\t%s\n", allOutcomes(&good.errors))
	fmt.Fprintf(w, "well-behaved events\t%d acknowledged, %d lost, %d not exactly once\n", len(good.acked), lost, dup)
	fmt.Fprintf(w, "server RSS\tpeak %d MB (now %d MB), goal < %d MB; Go heap in use: peak %d MB (sampled every second)\n", hwm>>20, rss>>20, goalRSS>>20, peakHeap.Load()>>20)
	fmt.Fprintf(w, "server fds\tpeak %d (now %d), cap %d\n", peakFDs.Load(), fds, abuseFDCap)
	fmt.Fprintf(w, "push read-ahead\tpeak %d MB held (herald_subscription_held_bytes)\n", peakHeld.Load()>>20)
	fmt.Fprintf(w, "CPU\tserver %.0f s, attackers and client %.0f s (attackers %s), in %v on %d cores; load average %s at the start, %s at the end\n",
		serverCPU, selfCPU, attackers.where, d, runtime.NumCPU(), load0, load1)
	fmt.Fprintf(w, "audit.log\t%d MB\n", auditSize>>20)
	if logInfo != nil {
		fmt.Fprintf(w, "server log\t%d KB\n", logInfo.Size()>>10)
	}
	w.Flush()
	t.Log("\n" + tab.String())

	if lost > 0 || dup > 0 || len(good.acked) == 0 {
		t.Errorf("the well-behaved client lost %d of %d events, %d not exactly once", lost, len(good.acked), dup)
	}
	switch {
	case raceEnabled && *abuseDuration == 0:
		// The well-behaved client runs in this process, which the race
		// detector slows many times over: its p99 says little of the
		// server's.
		t.Log("with -race, the well-behaved client's p99 is reported, not checked")
	case pubP99 > p99Limit || readP99 > p99Limit:
		t.Errorf("the well-behaved client's p99: publish %v, read %v; want under %v", pubP99, readP99, p99Limit)
	}
	if _, n := good.hz.quantile(1); n == 0 || len(good.errors.m) > 0 {
		t.Errorf("the well-behaved client's requests failed: %s", allOutcomes(&good.errors))
	}
	if hwm >= goalRSS {
		t.Errorf("the server's peak RSS is %d MB, over %d MB", hwm>>20, goalRSS>>20)
	}
	if peakFDs.Load() >= abuseFDCap {
		t.Errorf("the server reached %d fds, its cap is %d", peakFDs.Load(), abuseFDCap)
	}
}

// attack runs the abuses of the run (but the push subscriptions, made
// before it) against r.url until ctx ends, counting what each got in
// r.refused, and returns when every attacker has stopped.
func (r *abuseRun) attack(abuseCtx context.Context) {
	if abuseOn("slowloris") {
		r.slowloris(abuseCtx, 300)
	}
	if abuseOn("flood") {
		r.connFlood(abuseCtx, 4, 500)
	}

	longPath := "/v1/events/" + strings.Repeat("a", 60_000)
	audit := clientFrom("127.0.0.13", 4)
	defer audit.CloseIdleConnections()
	r.loop(abuseCtx, on("paths", 4), func(ctx context.Context, _ int) {
		r.exchange(ctx, "unauthenticated 60 KB path", audit, "GET", longPath, "", nil)
	})

	big := bytes.Repeat([]byte(" "), 4<<20)
	copy(big, `{"name":"mal.x","data":{}}`)
	bodies := clientFrom("127.0.0.14", 32)
	defer bodies.CloseIdleConnections()
	r.loop(abuseCtx, on("bodies", 32), func(ctx context.Context, _ int) {
		r.exchange(ctx, "4 MB publish, subscribe-only token", bodies, "POST", "/v1/events", abuseReader, bytes.NewReader(big))
	})

	pages := clientFrom("127.0.0.15", 20)
	defer pages.CloseIdleConnections()
	r.loop(abuseCtx, on("pages", 20), func(ctx context.Context, _ int) {
		r.exchange(ctx, "list page of 1,000 large events", pages, "GET", "/v1/events?after=0&limit=1000", abuseScraper, nil)
	})

	// SSE streams that never read: one identity grabbing slots.
	streams := clientFrom("127.0.0.17", 200)
	defer streams.CloseIdleConnections()
	r.loop(abuseCtx, on("sse", 150), func(ctx context.Context, _ int) {
		resp, err := r.request(ctx, streams, "GET", "/v1/stream?after=0", abuseMallory, nil)
		if ctx.Err() != nil {
			if err == nil {
				resp.Body.Close()
			}
			return
		}
		r.refused.add("SSE stream", status(resp, err))
		if err == nil {
			if resp.StatusCode == 200 {
				<-ctx.Done() // hold it, reading nothing
			}
			resp.Body.Close()
		}
		sleepCtx(ctx, time.Second)
	})

	r.wg.Wait()
}

// attackerEnv, set in the environment of the test binary, makes it the
// attackers of TestAbuse instead of a test run (see runAttackers).
const attackerEnv = "HERALD_TEST_ABUSE_ATTACKERS"

// attackerConfig is what the attackers' process is told.
type attackerConfig struct {
	URL      string        `json:"url"`
	Duration time.Duration `json:"duration"`
	Only     string        `json:"only"`
}

// runAttackers is the whole of the attackers' process: it attacks
// cfg.URL for cfg.Duration and writes what each kind of request got to
// standard output as JSON.
func runAttackers(cfgJSON string) int {
	var cfg attackerConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "attackers' config:", err)
		return 2
	}
	*abuseOnly = cfg.Only
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration)
	defer cancel()
	r := &abuseRun{url: cfg.URL}
	r.attack(ctx)
	if err := json.NewEncoder(os.Stdout).Encode(r.refused.m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// attackers is the attack of one run: a process of its own at the lowest
// CPU priority, so that the attack's own work (which would run on other
// machines) does not stand between the server and the well-behaved
// client on a machine of two cores; or, where nice(1) is missing, the
// test's own goroutines.
type attackers struct {
	r     *abuseRun
	cmd   *exec.Cmd
	out   bytes.Buffer
	done  chan struct{} // closed when an attack in this process ends
	where string
}

func startAttackers(t *testing.T, r *abuseRun, ctx context.Context, d time.Duration) *attackers {
	t.Helper()
	a := &attackers{r: r, done: make(chan struct{})}
	nice, err := exec.LookPath("nice")
	if err != nil {
		a.where = "in the test process"
		go func() {
			defer close(a.done)
			r.attack(ctx)
		}()
		return a
	}
	cfg, _ := json.Marshal(attackerConfig{URL: r.url, Duration: d, Only: *abuseOnly})
	a.cmd = exec.Command(nice, "-n", "19", os.Args[0], "-test.run=^$")
	a.cmd.Env = append(os.Environ(), attackerEnv+"="+string(cfg))
	a.cmd.Stdout = &a.out
	a.cmd.Stderr = os.Stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting the attackers: %v", err)
	}
	a.where = "a process of their own at nice 19"
	return a
}

// wait waits for the attack to end, adds what it counted to r.refused,
// and returns the CPU seconds the attackers' process used (0 when the
// attack ran in this process, which counts it as its own).
func (a *attackers) wait(t *testing.T) float64 {
	t.Helper()
	if a.cmd == nil {
		<-a.done
		return 0
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("the attackers' process: %v", err)
	}
	var m map[string]map[string]int
	if err := json.Unmarshal(a.out.Bytes(), &m); err != nil {
		t.Fatalf("the attackers' counts %q: %v", a.out.String(), err)
	}
	for kind, outcomes := range m {
		for outcome, n := range outcomes {
			for range n {
				a.r.refused.add(kind, outcome)
			}
		}
	}
	st := a.cmd.ProcessState
	return (st.UserTime() + st.SystemTime()).Seconds()
}

// scrapeHeld reads the server's /metrics: the sum of
// herald_subscription_held_bytes, and the Go heap in use.
func scrapeHeld(cl *http.Client, url string) (held, heap int64) {
	resp, err := cl.Get(url + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "herald_subscription_held_bytes{"); ok {
			if _, v, ok := strings.Cut(rest, "} "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			heap = int64(f)
		}
	}
	return int64(sum), heap
}

// dirSize sums the files in dir whose names start with prefix.
func dirSize(dir, prefix string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// outcomes lists counts by outcome, largest first.
func outcomes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func allOutcomes(t *tally) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) == 0 {
		return "none"
	}
	var parts []string
	for k, m := range t.m {
		parts = append(parts, k+" ("+outcomes(m)+")")
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}
