// Command bench measures herald against the systems a user would pick
// instead, scenario by scenario, in one run.
//
// Every measurement runs in a child process (this binary run again with
// -child), so that each system's peak resident memory, garbage-collected
// heap and allocation count are its own. Systems of a scenario alternate,
// round after round, and the report gives the median of the rounds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	quick   bool
	only    *regexp.Regexp
	jsonOut string
	svgOut  string
	rounds  int
	pprof   string
	from    string

	// child mode
	child    bool
	prepare  bool
	scenario string
	system   string
	dir      string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var only string
	fs.BoolVar(&o.quick, "quick", false, "run every scenario small (the whole run takes under 3 minutes)")
	fs.StringVar(&only, "only", "", "run only the scenarios whose name matches this regular expression")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as a JSON array to this file")
	fs.StringVar(&o.svgOut, "svg", "", "write a chart of the ratios herald/anchor to this SVG file")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds per system (default 3, or 1 with -quick)")
	fs.StringVar(&o.from, "from", "", "measure nothing: print the table (and write -svg) from a file written by -json")
	fs.StringVar(&o.pprof, "cpuprofile", "", "write a CPU profile of each measurement's child into this folder (scenario_system_round.pprof), and the heap at the end of the measurement beside it (….heap.pprof)")
	fs.BoolVar(&o.child, "child", false, "internal: run one measurement and print it as JSON")
	fs.BoolVar(&o.prepare, "prepare", false, "internal: with -child, prepare the data a measurement reads")
	fs.StringVar(&o.scenario, "scenario", "", "internal: the child's scenario")
	fs.StringVar(&o.system, "system", "", "internal: the child's system")
	fs.StringVar(&o.dir, "dir", "", "internal: the child's data folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		o.only = re
	}
	if o.rounds <= 0 {
		o.rounds = 3
		if o.quick {
			o.rounds = 1
		}
	}
	if o.child {
		return runChild(ctx, o, stdout)
	}
	return runParent(ctx, o, stdout, stderr)
}

// childReport is what a child prints on its last line of standard output.
type childReport struct {
	Events   int64   `json:"events"`
	Seconds  float64 `json:"seconds"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	HasLat   bool    `json:"has_lat"`
	Mallocs  uint64  `json:"mallocs"`
	Note     string  `json:"note,omitempty"`
	Error    string  `json:"error,omitempty"`
	Unusable string  `json:"unusable,omitempty"`
}

func runChild(ctx context.Context, o options, stdout io.Writer) error {
	sc, ok := scenarioByName(o.scenario)
	if !ok {
		return fmt.Errorf("unknown scenario %q", o.scenario)
	}
	sys, ok := sc.system(o.system)
	if !ok {
		return fmt.Errorf("scenario %s has no system %q", o.scenario, o.system)
	}
	size := sc.size(o.quick)
	var rep childReport
	if o.prepare {
		if sys.prepare == nil {
			return nil
		}
		// Preparing is not measured, but it must not eat the run's time.
		budget := 150 * time.Second
		if o.quick {
			budget = 60 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, budget)
		err := sys.prepare(pctx, o.dir, size)
		cancel()
		if err != nil {
			rep.Error = err.Error()
		}
	} else {
		m := newMeter(size)
		if o.pprof != "" {
			m.profile = filepath.Join(o.pprof, fmt.Sprintf("%s_%s_%d.pprof", o.scenario, o.system, time.Now().UnixNano()))
		}
		err := sys.run(ctx, &env{dir: o.dir, size: size, meter: m})
		if err != nil {
			rep.Error = err.Error()
		} else {
			rep = m.report()
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\n%s\n", b)
	return err
}

// result is one row of the JSON output: the medians of a system's rounds.
type result struct {
	Scenario       string   `json:"scenario"`
	System         string   `json:"system"`
	EventsPerSec   *float64 `json:"events_per_sec"`
	P50us          *float64 `json:"p50_us"`
	P99us          *float64 `json:"p99_us"`
	AllocsPerEvent *float64 `json:"allocs_per_event"`
	PeakRSSMB      *float64 `json:"peak_rss_mb"`

	note string // why the system has no figures, or which rounds failed
}

type sample struct {
	rate, p50, p99, allocs, rss float64
	hasLat                      bool
}

func runParent(ctx context.Context, o options, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var selected []*scenario
	for _, sc := range scenarios() {
		if o.only == nil || o.only.MatchString(sc.name) {
			selected = append(selected, sc)
		}
	}
	if len(selected) == 0 {
		return errors.New("-only matches no scenario")
	}
	mode := "full"
	if o.quick {
		mode = "quick"
	}
	if o.from != "" {
		return replot(o, selected, stdout, mode)
	}
	fmt.Fprintf(stdout, "herald bench: %s mode, %d round(s), %d scenario(s), started %s\n",
		mode, o.rounds, len(selected), time.Now().UTC().Format(time.RFC3339))
	start := time.Now()
	var results []result
	for _, sc := range selected {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := runScenario(ctx, o, exe, sc, stderr)
		if err != nil {
			return err
		}
		results = append(results, res...)
	}
	printTable(stdout, selected, results)
	fmt.Fprintf(stdout, "\ntotal time %s\n", time.Since(start).Round(time.Second))
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.svgOut != "" {
		f, err := os.Create(o.svgOut)
		if err != nil {
			return err
		}
		writeSVG(f, selected, results, mode)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// replot prints the table and writes the chart from an earlier -json file.
func replot(o options, selected []*scenario, stdout io.Writer, mode string) error {
	b, err := os.ReadFile(o.from)
	if err != nil {
		return err
	}
	var results []result
	if err := json.Unmarshal(b, &results); err != nil {
		return fmt.Errorf("%s: %w", o.from, err)
	}
	for i := range results {
		if results[i].EventsPerSec == nil {
			results[i].note = "no figures"
		}
	}
	printTable(stdout, selected, results)
	if o.svgOut == "" {
		return nil
	}
	f, err := os.Create(o.svgOut)
	if err != nil {
		return err
	}
	writeSVG(f, selected, results, mode)
	return f.Close()
}

func runScenario(ctx context.Context, o options, exe string, sc *scenario, stderr io.Writer) ([]result, error) {
	fmt.Fprintf(stderr, "== %s\n", sc.name)
	type state struct {
		sys     *system
		dir     string
		samples []sample
		failure string   // why the system did not run at all
		failed  []string // the errors of the rounds that failed
	}
	var states []*state
	defer func() {
		for _, st := range states {
			if st.dir != "" {
				os.RemoveAll(st.dir)
			}
		}
	}()
	for _, sys := range sc.systems {
		st := &state{sys: sys}
		states = append(states, st)
		if sys.run == nil {
			st.failure = "not available: " + sys.missing
			fmt.Fprintf(stderr, "   %-26s %s\n", sys.name, st.failure)
			continue
		}
		dir, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return nil, err
		}
		st.dir = dir
	}
	// Preparing is not measured: the systems prepare their data at the same
	// time, which overlaps the waiting on disks and servers.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, st := range states {
		if st.failure != "" || st.sys.prepare == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			rep, _, err := runChildProc(ctx, o, exe, sc, st.sys, st.dir, true)
			if err == nil && rep.Error != "" {
				err = errors.New(rep.Error)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.failure = "prepare failed: " + err.Error()
				fmt.Fprintf(stderr, "   %-26s %s\n", st.sys.name, st.failure)
				return
			}
			fmt.Fprintf(stderr, "   %-26s prepared in %s\n", st.sys.name, time.Since(t0).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	var err error
	for r := 0; r < o.rounds; r++ {
		for _, st := range states {
			if st.failure != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			// A system that reads prepared data reuses it; every other one
			// starts each round on an empty folder, so that nothing a round
			// left behind (a bigger file, unacknowledged messages) carries
			// over into the next.
			// A scenario whose runs change their prepared data (consuming
			// records state) gets a fresh copy of it each round.
			dir := st.dir
			switch {
			case st.sys.prepare == nil:
				if dir, err = os.MkdirTemp(st.dir, "round-"); err != nil {
					return nil, err
				}
			case sc.copyPrepared:
				if dir, err = os.MkdirTemp("", "herald-bench-round-"); err != nil {
					return nil, err
				}
				if err = os.CopyFS(dir, os.DirFS(st.dir)); err != nil {
					os.RemoveAll(dir)
					return nil, fmt.Errorf("copying %s's data: %w", st.sys.name, err)
				}
			}
			t0 := time.Now()
			rep, rss, err := runChildProc(ctx, o, exe, sc, st.sys, dir, false)
			if dir != st.dir {
				os.RemoveAll(dir)
			}
			if err == nil && rep.Error != "" {
				err = errors.New(rep.Error)
			}
			if err != nil {
				// The other rounds still run; the report says how many failed.
				st.failed = append(st.failed, err.Error())
				fmt.Fprintf(stderr, "   %-26s round %d failed: %s\n", st.sys.name, r+1, err)
				continue
			}
			s := sample{rss: rss, hasLat: rep.HasLat, p50: rep.P50us, p99: rep.P99us}
			if rep.Seconds > 0 {
				s.rate = float64(rep.Events) / rep.Seconds
			}
			if rep.Events > 0 {
				s.allocs = float64(rep.Mallocs) / float64(rep.Events)
			}
			st.samples = append(st.samples, s)
			line := fmt.Sprintf("   %-26s round %d: %12.0f ev/s", st.sys.name, r+1, s.rate)
			if s.hasLat {
				line += fmt.Sprintf("  p50 %8.0f µs  p99 %8.0f µs", s.p50, s.p99)
			}
			line += fmt.Sprintf("  %7.1f allocs/ev  %6.0f MB", s.allocs, s.rss)
			line += fmt.Sprintf("  [%s]", time.Since(t0).Round(100*time.Millisecond))
			if rep.Note != "" {
				line += "  (" + rep.Note + ")"
			}
			fmt.Fprintln(stderr, line)
		}
	}
	var out []result
	for _, st := range states {
		res := result{Scenario: sc.name, System: st.sys.name, note: st.failure}
		if len(st.failed) > 0 {
			res.note = fmt.Sprintf("%d of %d rounds failed, first: %s", len(st.failed), o.rounds, st.failed[0])
		}
		if len(st.samples) > 0 && st.failure == "" {
			res.EventsPerSec = median(st.samples, func(s sample) float64 { return s.rate })
			if st.samples[0].hasLat {
				res.P50us = median(st.samples, func(s sample) float64 { return s.p50 })
				res.P99us = median(st.samples, func(s sample) float64 { return s.p99 })
			}
			res.AllocsPerEvent = median(st.samples, func(s sample) float64 { return s.allocs })
			res.PeakRSSMB = median(st.samples, func(s sample) float64 { return s.rss })
		}
		out = append(out, res)
	}
	return out, nil
}

func median(ss []sample, f func(sample) float64) *float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	var m float64
	if n := len(v); n%2 == 1 {
		m = v[n/2]
	} else {
		m = (v[n/2-1] + v[n/2]) / 2
	}
	return &m
}

// runChildProc runs one child and returns its report and its peak RSS in MB.
func runChildProc(ctx context.Context, o options, exe string, sc *scenario, sys *system, dir string, prepare bool) (childReport, float64, error) {
	args := []string{"-child", "-scenario", sc.name, "-system", sys.name, "-dir", dir}
	if o.quick {
		args = append(args, "-quick")
	}
	if prepare {
		args = append(args, "-prepare")
	} else if o.pprof != "" {
		args = append(args, "-cpuprofile", o.pprof)
	}
	limit := 5 * time.Minute
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, args...)
	var out, errb strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var rep childReport
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 600 {
			msg = "…" + msg[len(msg)-600:]
		}
		return rep, 0, fmt.Errorf("%v: %s", err, msg)
	}
	if prepare && last == "" {
		return rep, 0, nil
	}
	if jerr := json.Unmarshal([]byte(last), &rep); jerr != nil {
		return rep, 0, fmt.Errorf("child printed no report: %v", jerr)
	}
	var rss float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		rss = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return rep, rss, nil
}
