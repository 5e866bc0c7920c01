package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// size is how much a scenario does in one measurement.
type size struct {
	// events is how many events a run publishes (or reads), at most.
	events int
	// dur, when set, ends publishing early once it has passed.
	dur time.Duration
	// publishers is how many goroutines publish at once.
	publishers int
	// subscribers is how many subscribers receive every event.
	subscribers int
	// batch is how many events go in one request or one append.
	batch int
	// rate, when set, paces publishing at this many events per second.
	rate int
}

// env is what a system's run function gets: its data folder, the
// scenario's size and the meter that times the measured part.
type env struct {
	dir   string
	size  size
	meter *meter
}

// meter times the measured part of a run and counts its allocations, and
// records latencies when the scenario has them.
type meter struct {
	t0, t1   time.Time
	m0, m1   runtime.MemStats
	events   int64
	lat      []int64 // nanoseconds, indexed by sequence
	nlat     atomic.Int64
	note     string
	begun    bool
	finished bool
	// profile, when set, is the file that gets a CPU profile of the
	// measured part.
	profile string
	pf      *os.File
}

func newMeter(sz size) *meter {
	return &meter{}
}

// withLatency makes the meter keep n latency samples.
func (m *meter) withLatency(n int) {
	m.lat = make([]int64, n)
}

// begin starts the measured part: call it after setup.
func (m *meter) begin() {
	runtime.GC()
	runtime.ReadMemStats(&m.m0)
	if m.profile != "" {
		if f, err := os.Create(m.profile); err == nil && pprof.StartCPUProfile(f) == nil {
			m.pf = f
		}
	}
	m.begun = true
	m.t0 = time.Now()
}

// end stops the measured part: events is how many were published,
// delivered or read.
func (m *meter) end(events int64) {
	m.t1 = time.Now()
	runtime.ReadMemStats(&m.m1)
	if m.pf != nil {
		pprof.StopCPUProfile()
		m.pf.Close()
		m.pf = nil
		// The heap as the measured part leaves it, beside the CPU profile:
		// what a reader or a server still holds at the end.
		if f, err := os.Create(strings.TrimSuffix(m.profile, ".pprof") + ".heap.pprof"); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	m.events = events
	m.finished = true
}

// observe records one latency sample.
func (m *meter) observe(d time.Duration) {
	i := m.nlat.Add(1) - 1
	if int(i) < len(m.lat) {
		m.lat[i] = int64(d)
	}
}

func (m *meter) report() childReport {
	r := childReport{Note: m.note}
	if !m.begun || !m.finished {
		r.Error = "the run did not measure anything"
		return r
	}
	r.Events = m.events
	r.Seconds = m.t1.Sub(m.t0).Seconds()
	r.Mallocs = m.m1.Mallocs - m.m0.Mallocs
	if m.lat != nil {
		n := min(int(m.nlat.Load()), len(m.lat))
		if n > 0 {
			l := slices.Clone(m.lat[:n])
			slices.Sort(l)
			r.HasLat = true
			r.P50us = float64(l[n*50/100]) / 1e3
			r.P99us = float64(l[min(n-1, n*99/100)]) / 1e3
		}
	}
	return r
}

// payloadSize is the size of every event's data.
const payloadSize = 200

// makePayload returns a 200-byte JSON object carrying seq and the time it
// was made, in nanoseconds since the Unix epoch: {"seq":N,"t":N,"pad":"xx…"}.
func makePayload(seq int, t int64) []byte {
	b := make([]byte, 0, payloadSize)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"pad":"`...)
	for len(b) < payloadSize-2 {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	return b
}

// payloadTime returns the time a payload made by makePayload carries.
func payloadTime(b []byte) (int64, error) {
	i := indexOf(b, `"t":`)
	if i < 0 {
		return 0, fmt.Errorf("payload has no time: %.40q", b)
	}
	var t int64
	for j := i + 4; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		t = t*10 + int64(b[j]-'0')
	}
	return t, nil
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// latencySince records the latency of a payload made by makePayload.
func (m *meter) latencySince(payload []byte) {
	t, err := payloadTime(payload)
	if err != nil {
		return
	}
	m.observe(time.Duration(time.Now().UnixNano() - t))
}

// pace calls publish(seq) for seq in [0, n) at rate events per second until
// n events or ctx ends, each from one of workers goroutines, and returns
// how many it handed out. Publishing errors end pacing and are returned.
func pace(ctx context.Context, n, rate, workers int, publish func(seq int) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int, 4096)
	errc := make(chan error, workers)
	done := make(chan struct{})
	var running atomic.Int64
	running.Store(int64(workers))
	for range workers {
		go func() {
			defer func() {
				if running.Add(-1) == 0 {
					close(done)
				}
			}()
			for seq := range jobs {
				if err := publish(seq); err != nil {
					errc <- err
					cancel()
					for range jobs {
					}
					return
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	sent := 0
loop:
	for sent < n {
		due := int(time.Since(start)/interval) + 1
		for sent < due && sent < n {
			select {
			case jobs <- sent:
				sent++
			case <-ctx.Done():
				break loop
			}
		}
		if sent < n {
			next := start.Add(time.Duration(sent) * interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break loop
				}
			}
		}
	}
	close(jobs)
	<-done
	select {
	case err := <-errc:
		return sent, err
	default:
	}
	return sent, ctx.Err()
}

// publishLoop runs e.size.publishers goroutines that call publish(seq) for
// seq in [0, e.size.events) until e.size.dur has passed (when set), each
// call timed as a latency sample, and returns how many calls succeeded.
func publishLoop(ctx context.Context, e *env, publish func(seq int) error) (int64, error) {
	n := int64(e.size.events)
	e.meter.withLatency(int(n))
	var next, ok atomic.Int64
	var deadline time.Time
	if e.size.dur > 0 {
		deadline = time.Now().Add(e.size.dur)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(1, e.size.publishers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if seq >= n || (!deadline.IsZero() && seq%64 == 0 && time.Now().After(deadline)) {
					next.Store(n)
					return
				}
				t := time.Now()
				if err := publish(int(seq)); err != nil {
					select {
					case errc <- fmt.Errorf("publish %d: %w", seq, err):
					default:
					}
					cancel()
					return
				}
				e.meter.observe(time.Since(t))
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return ok.Load(), err
	default:
	}
	return ok.Load(), nil
}
